"""Error tracking: exceptions as Error Reporting events, grouped by a stable fingerprint, with an error id.

Cloud Error Reporting picks up any log entry whose JSON has
`@type: type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent` and a stack
trace in `message`; `serviceContext` and `context` (httpRequest, reportLocation) fill in its columns.
`Logger.exception` and `with_monitoring` both go through `report()`.

The fingerprint hashes the exception type and the (file, function) of each frame, not line numbers or
the message (which carry ids and values), so one bug keeps one fingerprint across instances, requests
and unrelated edits; the per-instance occurrence count of each fingerprint goes with every event.
The error id is random and short: the client gets it in the JSON 500 body, support greps for it.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import os
import sys
from collections import OrderedDict

from gcfkit import context as _context

ERROR_EVENT_TYPE = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
MAX_FINGERPRINTS = 1000  # distinct fingerprints counted per instance (least recently seen forgotten)

_counts: OrderedDict[str, int] = OrderedDict()
_lock = _thread.allocate_lock()


class ErrorReport:
    __slots__ = ("error_id", "fields", "fingerprint", "occurrences", "stack_trace")

    def __init__(self, error_id: str, fingerprint: str, occurrences: int, stack_trace: str, fields: dict):
        self.error_id = error_id
        self.fingerprint = fingerprint
        self.occurrences = occurrences
        self.stack_trace = stack_trace
        self.fields = fields


def new_error_id() -> str:
    return os.urandom(8).hex()


def error_body(error_id: str) -> dict:
    """The JSON an HTTP client gets for an unexpected error: no stack trace, no exception text."""
    return {"error": "internal", "message": "An unexpected error occurred; quote error_id when reporting it.",
            "error_id": error_id}


def _exc_triple(exc_info) -> tuple:
    if exc_info is True:
        return sys.exc_info()
    if isinstance(exc_info, BaseException):
        return type(exc_info), exc_info, exc_info.__traceback__
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info
    return None, None, None


def fingerprint(exc_type: type, frames) -> str:
    import hashlib  # first error only

    parts = [f"{exc_type.__module__}.{exc_type.__qualname__}"]
    parts += [f"{os.path.basename(f.filename)}:{f.name}" for f in frames]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def _count(key: str) -> int:
    with _lock:
        count = _counts.pop(key, 0) + 1
        _counts[key] = count
        if len(_counts) > MAX_FINGERPRINTS:
            _counts.popitem(last=False)
    return count


def counts() -> dict[str, int]:
    """Occurrences per fingerprint on this instance."""
    with _lock:
        return dict(_counts)


def report(exc_info, invocation: _context.Invocation | None = None, logger=None, error_id: str | None = None,
           status: int | None = None) -> ErrorReport | None:
    """Describe an exception as Error Reporting fields. None when exc_info holds no exception."""
    import traceback  # first error only

    exc_type, exc, tb = _exc_triple(exc_info)
    if exc is None:
        return None
    frames = traceback.extract_tb(tb) if tb is not None else []
    key = fingerprint(exc_type, frames)
    occurrences = _count(key)
    error_id = error_id or new_error_id()
    stack_trace = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n")
    instance = _context.instance()
    service = {"service": getattr(logger, "service", None) or instance.service}
    if instance.revision:
        service["version"] = instance.revision
    where = frames[-1] if frames else None
    details: dict = {}
    if where is not None:
        details["reportLocation"] = {"filePath": where.filename, "lineNumber": where.lineno,
                                     "functionName": where.name}
    environ = invocation.environ if invocation is not None else None
    if environ:
        from gcfkit.http import error_context
        from gcfkit.logging.render import Redactor

        redactor = getattr(logger, "redactor", None) or Redactor(frozenset())
        details["httpRequest"] = error_context(environ, status, redactor)
    fields = {"@type": ERROR_EVENT_TYPE, "serviceContext": service, "context": details,
              "error": {"id": error_id, "type": f"{exc_type.__module__}.{exc_type.__qualname__}",
                        "fingerprint": key, "occurrences": occurrences}}
    return ErrorReport(error_id, key, occurrences, stack_trace, fields)


def reset() -> None:
    with _lock:
        _counts.clear()
