"""JSON for the errors functions-framework answers by itself, without (or after) running the function.

The flask app functions-framework builds answers some requests on its own, as flask HTML pages:
404 for `/robots.txt` and `/favicon.ico`, 405 for a method a CloudEvent function does not take, 400 / 415
for a body that is neither a CloudEvent nor a background event, and, through its crash handler,
`str(exception)` with a 500 for an exception that escaped the function. `install(app)` makes each of
them a JSON answer of the same shape as with_monitoring's:

    {"error": "method_not_allowed", "message": "The method is not allowed for the requested URL."}
    {"error": "internal", "message": "An unexpected error occurred; ...", "error_id": "6f1c..."}

with the status, the exception's own headers (`Allow` on a 405) and, on a 500, functions-framework's
`X-Google-Status: crash` header. The message is the first line of the description only: functions-framework
appends the request's headers and body to its 400s, and they are not echoed back. Each answer is logged as
one structured line (WARNING for 4xx, ERROR for 5xx) with `httpRequest` and the trace; an exception that
escaped becomes an Error Reporting event carrying the error id, in place of flask's unstructured traceback.

with_monitoring calls `install` by itself: functions-framework's `create_app` executes the function's
module inside the app's context, where the decorator finds `flask.current_app`. The handlers run only on
these errors, so a request that reaches the function pays nothing for them.
"""

from __future__ import annotations

from gcfkit import context as _context
from gcfkit import errors as _errors
from gcfkit.http import NO_STORE, http_exception_response, request_json
from gcfkit.logging.logger import Logger
from gcfkit.tracecontext import from_headers

EXTENSION = "gcfkit.json_errors"  # the key in app.extensions: install() is idempotent per app
CRASH_HEADER = ("X-Google-Status", "crash")  # what functions-framework's own 500 handler sets


def install(app, logger: Logger | None = None) -> None:
    """Answer every HTTP error `app` (a flask app) produces by itself as JSON, and log it with `logger`.

    Idempotent (the first call's logger stays). Error handlers the application registered itself are kept:
    only functions-framework's own 500 handler is replaced."""
    if EXTENSION in app.extensions:
        return
    from werkzeug.exceptions import HTTPException, InternalServerError

    answers = _JsonErrors(logger or Logger())
    handlers = app.error_handler_spec[None]  # code (None: by class only) -> exception class -> handler
    # By class: every 4xx and 5xx. By code 500: flask looks handlers up by code before class, and hands
    # any non-HTTP exception to the 500 handler as an InternalServerError.
    if HTTPException not in handlers[None]:
        app.register_error_handler(HTTPException, answers.http_error)
    current = handlers[500].get(InternalServerError)
    if current is None or getattr(current, "__module__", None) == "functions_framework":  # its crash handler
        app.register_error_handler(500, answers.http_error)
        # This handler logs the exception as an Error Reporting event; flask's own log line would be a
        # second, unstructured copy of the same traceback on stderr.
        app.log_exception = _not_logged_twice
    app.extensions[EXTENSION] = answers


def _not_logged_twice(exc_info) -> None:
    """Stands in for Flask.log_exception (see install)."""


class _JsonErrors:
    def __init__(self, logger: Logger):
        self.logger = logger

    def http_error(self, exc):
        try:
            return self._answer(exc)
        except Exception as failure:  # an error handler that raises gets flask's HTML page: never
            self.logger.emit("ERROR", f"gcfkit could not answer an HTTP error as JSON: {failure!r}")
            return {"error": "internal", "message": "An unexpected error occurred."}, 500, NO_STORE

    def _answer(self, exc):
        import flask  # served by functions-framework: flask is loaded and this runs in a request context

        code = exc.code if isinstance(exc.code, int) else 500
        if exc.response is not None or code < 400:  # abort(make_response(...)) or a redirect: its own response
            return exc
        environ = flask.request.environ
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/"
        invocation = self._invocation(environ)
        http = f',"httpRequest":{request_json(environ, method, path, self.logger.redactor)},"status":{code}}}'
        response = http_exception_response(exc) if code != 500 else None
        if response is None:  # a 500, or not a werkzeug HTTPException: reported as the 500 it becomes
            return self._server_error(exc, invocation, f"{method} {path} -> 500", http)
        (body, status, headers), _ = response
        self.logger.emit("ERROR" if code >= 500 else "WARNING", f"{method} {path} -> {code}: {body['message']}",
                         http, invocation)
        return body, status, headers

    def _server_error(self, exc, invocation, name: str, http: str):
        error_id = getattr(exc, "error_id", None)
        if error_id is None:  # not a failure with_monitoring already reported: report it now
            cause = getattr(exc, "original_exception", None) or exc
            error_id = invocation.error_id = _errors.new_error_id()
            self.logger.emit("ERROR", f"{name}: unhandled {type(cause).__name__}: {cause}", http, invocation,
                             exc_info=(type(cause), cause, cause.__traceback__), error_id=error_id, status=500)
        return _errors.error_body(error_id), 500, {**NO_STORE, CRASH_HEADER[0]: CRASH_HEADER[1]}

    @staticmethod
    def _invocation(environ: dict) -> _context.Invocation:
        """Trace and execution id for the log line (the request is not an invocation: no cold start claimed)."""
        trace = from_headers(environ.get("HTTP_TRACEPARENT"), environ.get("HTTP_X_CLOUD_TRACE_CONTEXT"))
        invocation = _context.Invocation(*(trace or (None, None, False)),
                                         execution_id=environ.get("HTTP_FUNCTION_EXECUTION_ID"))
        invocation.environ = environ
        return invocation
