"""Cloud Functions entry points. Keep them thin: routing lives in the application, tools in gcfkit."""

from __future__ import annotations

import os
import time

import functions_framework
from flask import Request, jsonify

STARTED = time.time()


@functions_framework.http
def api(request: Request):
    if request.path.rstrip("/") == "/health":
        return jsonify(status="healthy", service=os.environ.get("K_SERVICE", "api"),
                       uptime_seconds=round(time.time() - STARTED, 3))
    return jsonify(error="not_found", message=f"no route for {request.method} {request.path}"), 404
