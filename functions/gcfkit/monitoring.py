"""with_monitoring: the decorator that makes a functions-framework function observable.

    @functions_framework.http
    @with_monitoring(health=health)
    def api(request): ...

    @functions_framework.cloud_event
    @with_monitoring
    def on_upload(cloud_event): ...

Per invocation it: sets the trace context (`traceparent` or `X-Cloud-Trace-Context`), execution id and
cold-start kind for every log line; logs the start and the end (status, duration, `httpRequest`, the
slowest timed segments, the invocation's metric points); counts `invocations` {status, start} and
records `invocation_latency_ms` {status}; turns an unexpected exception into an Error Reporting event
and, for HTTP, a JSON 500 carrying the error id (a werkzeug HTTPException such as a 400 from
`request.get_json()` becomes a JSON response with its own status); writes the buffered DEBUG lines
only when the invocation failed; answers `GET /health` from the health checks; and exports metrics
when a Cloud Monitoring window is due. For CloudEvents, a failure is re-raised as a 500 so Eventarc /
Pub/Sub retry it (the body carries the error id, never the exception text). Applied while
functions-framework builds its app, it also makes the errors the framework answers by itself (404, 405,
a body that is not a CloudEvent, an exception escaping the function) JSON: see `gcfkit.framework`.

Cold starts: the first invocation of an instance is `cold` when it arrives within
`GCFKIT_COLD_START_WINDOW_SECONDS` (10 s) of the function module finishing its import, and `prewarmed`
when it arrives later (an instance kept by min-instances, or started ahead by the autoscaler): the
`invocations` counter's `start` label shows how many requests min-instances spared a cold start.

This is the per-request path, so it reads the WSGI environ directly and writes pre-serialized JSON.
"""

from __future__ import annotations

import functools
import sys
import time

from gcfkit import context as _context
from gcfkit import errors as _errors
from gcfkit import settings as _settings
from gcfkit.http import NO_STORE, http_exception_response, request_json, status_and_size
from gcfkit.logging.logger import Logger, flush_debug_buffer
from gcfkit.logging.render import encode
from gcfkit.metrics import Metrics, exporter
from gcfkit.metrics.logexport import FIELD, render_points
from gcfkit.metrics.registry import MAX_INVOCATION_POINTS
from gcfkit.tracecontext import from_headers

INVOCATIONS = "invocations"
LATENCY = "invocation_latency_ms"
_FIELD_KEY = f',"{FIELD}":'


def with_monitoring(fn=None, *, logger: Logger | None = None, metrics: Metrics | None = None, health=None,
                    health_path: str = "/health", kind: str | None = None, log_event: bool | None = None,
                    correlation_id_header: str | None = None, sample_rate: float | None = None):
    """Decorate an HTTP (flask Request) or CloudEvent function; `kind="http"|"cloudevent"` skips detection.

    HTTP functions always answer `GET <health_path>`: with `health.run()` when `health` (a HealthChecks)
    is given, else with a plain healthy status."""
    if kind not in (None, "http", "cloudevent"):
        raise ValueError(f"with_monitoring(kind={kind!r}): allowed: 'http', 'cloudevent' (or None to detect)")

    def decorate(function):
        monitor = _Monitor(function, logger, metrics, health, health_path.rstrip("/") or "/", kind, log_event,
                           correlation_id_header, sample_rate)

        @functools.wraps(function)
        def monitored(*args, **kwargs):
            if monitor.kind == "http":  # known after the first call; one call level less per request
                return monitor.http(args[0], args, kwargs)
            return monitor(args, kwargs)

        monitored.monitor = monitor  # tests and tools reach the logger, metrics and health from here
        _install_json_errors(monitor.logger)
        _context.instance().mark_ready()
        return monitored

    return decorate(fn) if fn is not None else decorate


class _Monitor:
    def __init__(self, function, logger, metrics, health, health_path, kind, log_event, correlation_id_header,
                 sample_rate):
        config = _settings.current()
        self.function = function
        self.logger = logger or Logger()
        self.metrics = metrics or Metrics()
        self.health = health
        self.health_paths = {health_path, health_path + "/"}
        self.kind = kind
        self.log_event = config.log_event if log_event is None else log_event
        header = correlation_id_header if correlation_id_header is not None else config.correlation_id_header
        self.correlation_key = "HTTP_" + header.upper().replace("-", "_") if header else None
        self.sample_rate = config.log_sample_rate if sample_rate is None else sample_rate
        self.instance = _context.instance()
        self.exporter = exporter()
        self.registry = self.metrics.registry
        self._series: dict[tuple, tuple] = {}  # (outcome, start kind) -> (invocations series, latency series)

    def __call__(self, args, kwargs):
        kind = self.kind
        if kind is None:  # detected on the first call: a flask Request has an environ
            first = args[0] if args else None
            kind = self.kind = "http" if hasattr(first, "environ") and hasattr(first, "method") else "cloudevent"
        if kind == "http":
            return self.http(args[0], args, kwargs)
        return self._event(args[0] if args else None, args, kwargs)

    def _begin(self, traceparent: str | None, cloud_trace: str | None, execution_id: str | None):
        trace = from_headers(traceparent, cloud_trace)
        instance = self.instance
        start_kind = _context.WARM if instance.first_claimed else instance.claim_start_kind(time.time())
        debug = False
        if self.sample_rate:
            import random

            debug = random.random() < self.sample_rate
        if trace is None:
            return _context.Invocation(None, None, False, execution_id, start_kind, debug)
        return _context.Invocation(trace[0], trace[1], trace[2], execution_id, start_kind, debug)

    # --- HTTP -------------------------------------------------------------------------------------------
    def http(self, request, args, kwargs):
        environ = request.environ
        get = environ.get
        method = get("REQUEST_METHOD", "GET")
        path = get("PATH_INFO") or "/"
        if path in self.health_paths and method in ("GET", "HEAD"):
            return self._answer_health()
        invocation = self._begin(get("HTTP_TRACEPARENT"), get("HTTP_X_CLOUD_TRACE_CONTEXT"),
                                 get("HTTP_FUNCTION_EXECUTION_ID"))
        if self.correlation_key is not None:
            invocation.correlation_id = get(self.correlation_key)
        invocation.environ = environ
        http_json = request_json(environ, method, path, self.logger.redactor)
        token = _context.begin(invocation)
        try:
            name = method + " " + path
            if invocation.start_kind == _context.WARM and not self.log_event:
                self.logger.emit("INFO", name + " started", "", invocation)
            else:
                self._start_line(invocation, name, self._request_event(request) if self.log_event else None)
            error_id = None
            try:
                result = self.function(*args, **kwargs)
                status, size = status_and_size(result)
            except Exception as exc:
                result, status, error_id = self._http_failure(exc, invocation)
                size = None
            elapsed = time.perf_counter() - invocation.started
            size_json = "" if size is None else f',"responseSize":"{size}"'
            http_json = f',"httpRequest":{http_json},"status":{status},"latency":"{elapsed:.6f}s"{size_json}}}'
            self._end(invocation, f"{name} -> {status}", status >= 500, status, elapsed, error_id, http_json)
            return result
        finally:
            _context.end(token)

    def _http_failure(self, exc: Exception, invocation) -> tuple:
        deliberate = http_exception_response(exc)
        if deliberate is not None:
            return deliberate[0], deliberate[1], None
        error_id = invocation.error_id = _errors.new_error_id()
        flush_debug_buffer(invocation)
        self.logger.emit("ERROR", f"unhandled {type(exc).__name__}: {exc}", "", invocation,
                         exc_info=_without_wrapper_frame(exc), error_id=error_id, status=500)
        return (_errors.error_body(error_id), 500, NO_STORE), 500, error_id

    def _answer_health(self):
        if self.health is None:
            instance = self.instance
            return ({"status": "healthy", "service": instance.service, "revision": instance.revision,
                     "instance_id": instance.instance_id, "uptime_seconds": round(time.time() - instance.started, 3),
                     "checks": {}}, 200, NO_STORE)
        body, status = self.health.run()
        if self.logger.level <= 10:
            self.logger.emit("DEBUG", f"health: {body['status']}{' (cached)' if body.get('cached') else ''}",
                             ',"health":' + encode(body))
        return body, status, NO_STORE

    def _request_event(self, request) -> dict:
        headers = dict(request.headers.items())
        return self.logger.redactor.mapping({"headers": headers, "query": request.args.to_dict(flat=False)})

    # --- CloudEvents ------------------------------------------------------------------------------------
    def _event(self, event, args, kwargs):
        environ = _flask_environ()
        get = getattr(event, "get", None)
        attributes = {}
        if callable(get):
            for name in ("id", "type", "source", "subject", "time"):
                value = get(name)
                if value is not None:
                    attributes[name] = str(value)
        invocation = self._begin(environ.get("HTTP_TRACEPARENT") or (get("traceparent") if callable(get) else None),
                                 environ.get("HTTP_X_CLOUD_TRACE_CONTEXT"),
                                 environ.get("HTTP_FUNCTION_EXECUTION_ID") or attributes.get("id"))
        token = _context.begin(invocation)
        name = f"event {attributes.get('type', type(event).__name__)}"
        event_json = ',"event":' + encode(attributes)
        try:
            fields = {"event": attributes}
            if self.log_event:
                fields["event_data"] = self.logger.redactor.value(getattr(event, "data", None))
            self._start_line(invocation, name, None, fields)
            try:
                self.function(*args, **kwargs)
            except Exception as exc:
                error_id = invocation.error_id = _errors.new_error_id()
                flush_debug_buffer(invocation)
                self.logger.emit("ERROR", f"unhandled {type(exc).__name__}: {exc}", event_json, invocation,
                                 exc_info=_without_wrapper_frame(exc), error_id=error_id)
                self._end(invocation, f"{name} -> error", True, None, time.perf_counter() - invocation.started,
                          error_id, event_json)
                raise _retryable_failure(error_id) from None
            self._end(invocation, f"{name} -> ok", False, None, time.perf_counter() - invocation.started, None,
                      event_json)
            return None
        finally:
            _context.end(token)

    # --- shared -----------------------------------------------------------------------------------------
    def _start_line(self, invocation, name: str, request_event: dict | None, fields: dict | None = None) -> None:
        if invocation.start_kind != _context.WARM:
            fields = dict(fields or {})
            fields["instance"] = {"start": invocation.start_kind, "instance_id": self.instance.instance_id,
                                  "seconds_since_ready": round(time.time() - self.instance.ready, 3)}
        if request_event is not None:
            fields = {**(fields or {}), "request": request_event}
        self.logger.emit("INFO", name + " started", "," + encode(fields)[1:-1] if fields else "", invocation)

    def _invocation_series(self, outcome: str, start_kind: str) -> tuple:
        pair = self._series.get((outcome, start_kind))
        if pair is None:
            registry = self.registry
            pair = self._series[(outcome, start_kind)] = (
                registry.counter(INVOCATIONS, description="invocations by outcome and start kind").series_for(
                    {"status": outcome, "start": start_kind}),
                registry.histogram(LATENCY, "ms", "invocation latency").series_for({"status": outcome}))
        return pair

    def _end(self, invocation, name: str, failed: bool, status: int | None, elapsed: float, error_id: str | None,
             raw: str) -> None:
        elapsed_ms = elapsed * 1000.0
        # One float formatting for both the message and the JSON number (round() and repr() cost as much each).
        duration = f"{elapsed_ms:.3f}"
        outcome = "error" if failed else "success"
        start_kind = invocation.start_kind
        # The in-process totals (Cloud Monitoring export, percentiles). No log points: a log-based metric
        # reads the same numbers from this line's "invocation" field.
        counted, timed = self._series.get((outcome, start_kind)) or self._invocation_series(outcome, start_kind)
        counted.metric.inc_series(counted, 1, False)  # point=False, passed positionally: a cheaper call
        timed.metric.observe_series(timed, elapsed_ms, False)
        details = f',"error_id":"{error_id}"' if error_id else ""
        if invocation.segments:
            slowest = sorted(invocation.segments.items(), key=lambda item: -item[1][0])[:3]
            details += ',"slowest":' + encode([{"name": n, "ms": round(ms, 3), "count": c} for n, (ms, c) in slowest])
        points = invocation.metric_points
        objects = render_points(points) if points else ()
        if points and len(points) >= MAX_INVOCATION_POINTS:
            details += f',"metric_points_capped":{MAX_INVOCATION_POINTS}'
        raw = (f'{raw},"invocation":{{"status":"{outcome}","duration_ms":{duration},"start":"{start_kind}"'
               f'{details}}}{_FIELD_KEY + objects[0] if objects else ""}')
        if failed:
            flush_debug_buffer(invocation)
        severity = "ERROR" if failed else "WARNING" if status is not None and status >= 400 else "INFO"
        self.logger.emit(severity, f"{name} in {duration} ms", raw, invocation)
        for more in objects[1:]:
            self.logger.emit("INFO", "metrics", _FIELD_KEY + more, invocation)
        if self.exporter is not None or self.registry.pending:
            self.metrics.flush(self.logger)
        limiter = self.logger.rate_limiter
        if limiter is not None and limiter.suppressed_total:
            self.logger.summarize_suppressed()


def _without_wrapper_frame(exc: Exception) -> tuple:
    """The stack trace starts at the user's function, not at the line of this module that called it."""
    tb = exc.__traceback__
    return type(exc), exc, (tb.tb_next or tb) if tb is not None else None


def _flask_environ() -> dict:
    flask = sys.modules.get("flask")  # functions-framework serves CloudEvents through flask; never import it
    if flask is not None and flask.has_request_context():
        return flask.request.environ
    return {}


def _retryable_failure(error_id: str) -> Exception:
    """What a failed CloudEvent invocation raises: a 500, so the trigger retries, without Flask logging a
    second, unstructured stack trace. gcfkit.framework answers it as the JSON 500 of `error_id` with
    functions-framework's crash header, and does not report it again."""
    try:
        from werkzeug.exceptions import InternalServerError
    except ImportError:
        return RuntimeError(f"invocation failed; error_id={error_id}")
    failure = InternalServerError(description=f"invocation failed; error_id={error_id}")
    failure.error_id = error_id  # already reported by with_monitoring
    return failure


def _install_json_errors(logger: Logger) -> None:
    """Inside functions-framework's create_app (it runs the function's module in the app's context), make
    the errors the framework answers by itself JSON too (see gcfkit.framework). Once, at decoration."""
    flask = sys.modules.get("flask")  # never import it: without flask loaded there is no app to configure
    if flask is not None and flask.has_app_context():
        from gcfkit.framework import install

        install(flask.current_app._get_current_object(), logger)
