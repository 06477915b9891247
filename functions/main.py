"""Cloud Functions entry points. Keep them thin: routing lives in the application, tools in gcfkit.

`api` is wrapped by gcfkit's `with_monitoring`: structured request logs with trace context, invocation
metrics, JSON errors with an error id, and `GET /health` answered from the checks registered below.
Applied while functions-framework builds its app, with_monitoring also makes the errors the framework
answers by itself (404 for /robots.txt and /favicon.ico, 500 for a view that returns nothing) JSON.
"""

from __future__ import annotations

import functions_framework
from gcfkit.health import HealthChecks, config_check, firestore_check
from gcfkit.logging import Logger
from gcfkit.metrics import Metrics
from gcfkit.monitoring import with_monitoring

logger = Logger()
metrics = Metrics()

health = HealthChecks()
# The project id is what links every log line to its trace; the deploy sets it for every function.
health.register("config", config_check(required_env=("GOOGLE_CLOUD_PROJECT", "K_SERVICE")))
# Honours FIRESTORE_EMULATOR_HOST (set by `make deploy` locally). Critical: without it the API can do nothing.
health.register("firestore", firestore_check(timeout=1.5), timeout=1.8)


@functions_framework.http
@with_monitoring(logger=logger, metrics=metrics, health=health)
def api(request):
    return {"error": "not_found", "message": f"no route for {request.method} {request.path}"}, 404
