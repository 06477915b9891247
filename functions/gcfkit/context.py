"""Who is running (the instance) and what it is doing right now (the invocation).

The instance: service, revision, a random instance id, when it started and whether its first request
has come yet, which is what cold-start detection needs. The invocation: trace context, execution id,
appended log keys, the debug buffer, timed segments and pending metric points of one request or
event. The current invocation lives in a ContextVar, so the threads of functions-framework's pool
never see each other's state and a thread started without a copied context sees none at all.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import contextvars
import time

from gcfkit import settings as _settings

# How the first invocation of an instance relates to the instance's start:
COLD = "cold"            # the request waited for this instance to start (a real cold start)
PREWARMED = "prewarmed"  # first request, but the instance was started long before (min-instances paid off)
WARM = "warm"            # any later request

# This module is imported while the function's module loads, i.e. while the instance starts.
PROCESS_STARTED = time.time()


class Instance:
    """Facts about this process, shared by every invocation it serves."""

    def __init__(self, started: float | None = None):
        config = _settings.current()
        self.service = config.service
        self.revision = config.revision
        self.project = config.project
        self.cold_start_window = config.cold_start_window_seconds
        self.started = PROCESS_STARTED if started is None else started
        # The module defining the function finishes importing when it applies with_monitoring; the gap
        # between "ready" and the first request is what tells a cold start from a pre-warmed instance.
        self.ready = self.started
        self.first_claimed = False
        self._lock = _thread.allocate_lock()

    @property
    def instance_id(self) -> str:
        """Read from the settings each time: a worker forked after this instance was created (gunicorn, with
        functions-framework's WORKERS > 1) gets its own id there (settings._new_instance_after_fork)."""
        return _settings.current().instance_id

    def mark_ready(self, when: float | None = None) -> None:
        self.ready = max(self.ready, time.time() if when is None else when)

    def claim_start_kind(self, now: float) -> str:
        """COLD / PREWARMED for the first invocation of the instance (exactly one caller), WARM after."""
        if self.first_claimed:
            return WARM
        with self._lock:
            if self.first_claimed:
                return WARM
            self.first_claimed = True
        return COLD if now - self.ready <= self.cold_start_window else PREWARMED


class Invocation:
    """Per-request state. Created by with_monitoring (or `begin()`), read by the logger, metrics and errors."""

    __slots__ = (
        "correlation_id", "debug", "debug_buffer", "environ", "error_id", "execution_id", "fragment", "keys",
        "metric_points", "sampled", "segments", "span_id", "start_kind", "started", "trace_id",
    )

    def __init__(self, trace_id: str | None = None, span_id: str | None = None, sampled: bool = False,
                 execution_id: str | None = None, start_kind: str = WARM, debug: bool = False):
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled
        self.execution_id = execution_id
        self.start_kind = start_kind
        self.debug = debug                  # this invocation was sampled to log at DEBUG
        self.keys: dict | None = None       # log keys appended during the invocation
        self.fragment: str | None = None    # the serialized invocation fields, rebuilt when keys change
        self.debug_buffer = None            # DEBUG lines kept until the end: written only if the invocation fails
        self.segments: dict | None = None   # timer name -> [total ms, count] for the slowest-segments summary
        self.metric_points: list | None = None  # points recorded during the invocation (log export)
        self.correlation_id: str | None = None
        self.environ: dict | None = None    # the WSGI environ of an HTTP invocation (errors describe the request)
        self.error_id: str | None = None
        self.started = time.perf_counter()

    @property
    def cold_start(self) -> bool:
        return self.start_kind == COLD


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("gcfkit_invocation", default=None)
current = _current.get


# begin(invocation) -> token makes it the current invocation (of this thread / context); end(token) restores
# the previous one. The ContextVar's own methods: no Python frame on the per-request path.
begin = _current.set
end = _current.reset


_instance: Instance | None = None


def instance() -> Instance:
    global _instance
    if _instance is None:
        _instance = Instance()
    return _instance


def reset_instance(started: float | None = None) -> Instance:
    """A fresh instance (tests: the next invocation is a cold start again)."""
    global _instance
    _instance = Instance(started=time.time() if started is None else started)
    return _instance
