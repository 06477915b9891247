"""Helpers for testing code that uses gcfkit (see "Testing your code" in docs/observability.md).

    from gcfkit.testing import reset, log_lines
    def test_checkout(monkeypatch, capsys):
        reset({"K_SERVICE": "api", "GOOGLE_CLOUD_PROJECT": "demo-test"})
        client = functions_framework.create_app("api", "main.py").test_client()
        client.get("/checkout")
        lines = log_lines(capsys.readouterr().out)
"""

from __future__ import annotations

import json
import os


def reset(environ: dict[str, str] | None = None, keep_env: bool = True) -> None:
    """Forget gcfkit's process state: settings (re-read from os.environ, updated with `environ`), the
    instance (the next invocation is a cold start again), metrics, error counts. Loggers, Metrics and
    HealthChecks created before keep their settings: create them after calling this."""
    from gcfkit import context, errors, metrics, settings

    if environ:
        os.environ.update(environ)
    settings.reload(dict(os.environ) if keep_env else dict(environ or {}))
    context.reset_instance()
    metrics.reset()
    errors.reset()


def log_lines(output: str) -> list[dict]:
    """Parse captured stdout: every non-empty line must be one JSON object (AssertionError otherwise)."""
    entries = []
    for number, line in enumerate(output.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line, parse_constant=_reject_constant)
        except ValueError as exc:
            raise AssertionError(f"line {number} of the output is not JSON ({exc}): {line[:300]!r}") from None
        if not isinstance(entry, dict):
            raise AssertionError(f"line {number} of the output is JSON but not an object: {line[:300]!r}")
        entries.append(entry)
    return entries


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON (Cloud Logging would not read this line as structured)")


def metric_points(entries: list[dict], name: str) -> list[dict]:
    """Every point of metric `name` in parsed log lines (log export)."""
    return [entry["gcfkit_metrics"][name] for entry in entries if name in entry.get("gcfkit_metrics", {})]
