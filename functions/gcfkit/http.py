"""The HTTP side of an invocation: Cloud Logging's `httpRequest` fields, the status of a flask view's return
value, and the JSON answers for errors. Read straight from the WSGI environ: werkzeug's properties
(`request.url`, `request.headers`) cost microseconds each, on every request.
"""

from __future__ import annotations

import sys

from gcfkit.logging.render import SENSITIVE, escape

NO_STORE = {"Cache-Control": "no-store"}


def request_url(environ: dict, path: str, redactor) -> str:
    get = environ.get
    url = f"{get('HTTP_X_FORWARDED_PROTO') or get('wsgi.url_scheme', 'http')}://" \
          f"{get('HTTP_HOST') or get('SERVER_NAME', '')}{get('SCRIPT_NAME', '')}{path}"
    query = get("QUERY_STRING")
    return f"{url}?{_redact_query(query, redactor)}" if query else url


def remote_ip(environ: dict) -> str:
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")  # Google's front end puts the client first
    return forwarded.split(",", 1)[0].strip() if forwarded else environ.get("REMOTE_ADDR", "")


def request_json(environ: dict, method: str, path: str, redactor) -> str:
    """The request's `httpRequest` members as an unclosed JSON object; status, latency and response size are
    appended when the response is known. Sensitive query parameters (?token=...) are redacted in the URL."""
    get = environ.get
    head = (f'{{"requestMethod":{escape(method)},"requestUrl":{escape(request_url(environ, path, redactor))},'
            f'"remoteIp":{escape(remote_ip(environ))},"protocol":{escape(get("SERVER_PROTOCOL", ""))}')
    agent = get("HTTP_USER_AGENT")
    if agent:
        head += ',"userAgent":' + escape(agent)
    referer = get("HTTP_REFERER")
    if referer:
        head += ',"referer":' + escape(referer)
    length = get("CONTENT_LENGTH")
    if length and length.isdigit():
        head += ',"requestSize":"' + length + '"'
    return head


def error_context(environ: dict, status: int | None, redactor) -> dict:
    """Error Reporting's `context.httpRequest` (HttpRequestContext) for a failed request."""
    get = environ.get
    context = {"method": get("REQUEST_METHOD", "GET"),
               "url": request_url(environ, get("PATH_INFO") or "/", redactor),
               "userAgent": get("HTTP_USER_AGENT"), "referrer": get("HTTP_REFERER"), "remoteIp": remote_ip(environ),
               "responseStatusCode": status}
    return {key: value for key, value in context.items() if value}


def _redact_query(query: str, redactor) -> str:
    verdicts = redactor.verdicts  # parameter names seen before: a dict lookup each
    if "&" not in query:  # one parameter, the usual case
        key, eq, _ = query.partition("=")
        sensitive = verdicts.get(key)
        if sensitive is None:
            sensitive = redactor.classify(key)
        return key + "=%5BREDACTED%5D" if eq and sensitive == SENSITIVE else query
    parts = query.split("&")
    for i, part in enumerate(parts):
        key, eq, _ = part.partition("=")
        if eq and redactor.sensitive(key):
            parts[i] = key + "=%5BREDACTED%5D"
    return "&".join(parts)


def status_and_size(result) -> tuple[int, int | None]:
    """The HTTP status and body size of whatever a flask view may return, without building the response."""
    if type(result) is dict or type(result) is list:  # the usual JSON answer (getattr misses cost microseconds)
        return 200, None
    if result is None:  # flask refuses it (TypeError): the client gets functions-framework's 500
        return 500, None
    status = 200
    body = result
    if type(result) is tuple:
        body = result[0] if result else None
        if len(result) >= 2:
            second = result[1]
            if type(second) is int:
                status = second
            elif type(second) is str and second[:3].isdigit():
                status = int(second[:3])
    else:
        code = getattr(result, "status_code", None)  # a flask / werkzeug Response
        if type(code) is int:
            status = code
    if type(body) is str:
        return status, len(body) if body.isascii() else len(body.encode())
    if type(body) is bytes:
        return status, len(body)
    if type(body) is dict or type(body) is list or body is None:
        return status, None
    length = getattr(body, "content_length", None)
    return status, length if type(length) is int else None


def http_exception_response(exc: Exception) -> tuple | None:
    """A werkzeug HTTPException raised on purpose (abort(404), the 400 of `request.get_json()` on bad JSON)
    as (response, status): JSON with its status for errors, its own response for redirects. None otherwise.
    The message is the description's first line: functions-framework appends the request's headers and
    body to the description of its 400s, and an error answer does not echo them (or their credentials)."""
    exceptions = sys.modules.get("werkzeug.exceptions")  # loaded whenever one can have been raised
    if exceptions is None or not isinstance(exc, exceptions.HTTPException):
        return None
    if exc.response is not None:  # abort(make_response(...)): the response the code built, as it is
        return exc.response, exc.response.status_code
    code = exc.code
    if type(code) is not int:  # a subclass that names no status: not an answer anybody chose
        return None
    if code < 400:
        return exc.get_response(), code
    name = type(exc).__name__
    description = getattr(exc, "description", None)
    body = {"error": "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_"),
            "message": str(description).split("\n", 1)[0].strip()[:500] if description else name}
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")]
    return (body, code, headers), code
