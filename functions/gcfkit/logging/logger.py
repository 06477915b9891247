"""Logger: one JSON object per line on stdout, in Cloud Logging's structured format.

    from gcfkit.logging import Logger
    logger = Logger()
    logger.info("order %s paid", order_id, amount=12.5, customer={"id": 7, "password": "..."})

gives (one line; `password` redacted at any depth; trace, labels and sourceLocation filled in):

    {"severity":"INFO","message":"order 42 paid","time":"2026-05-09T07:35:25.123456Z",
     "logging.googleapis.com/sourceLocation":{"file":"/workspace/main.py","line":"12","function":"pay"},
     "logging.googleapis.com/labels":{"function":"api","revision":"api-00007","execution_id":"fx1k.."},
     "logging.googleapis.com/trace":"projects/acme/traces/4bf9...","logging.googleapis.com/spanId":"00f0...",
     "logging.googleapis.com/trace_sampled":true,"cold_start":false,"amount":12.5,"customer":{...}}

Inside an invocation (see `gcfkit.monitoring.with_monitoring`) the invocation's fields are serialized
once and reused by every line; keys appended with `append_keys` during an invocation are dropped when
it ends, keys appended outside any invocation (at import) stay on every line of this logger.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import os
import sys
import time
from collections import deque

from gcfkit import context as _context
from gcfkit import settings as _settings
from gcfkit.logging import render
from gcfkit.logging.ratelimit import LogRateLimiter

# Cloud Logging LogSeverity, with the stdlib's numeric levels where they exist.
LEVELS = {"DEBUG": 10, "INFO": 20, "NOTICE": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50, "ALERT": 60,
          "EMERGENCY": 70}
_BY_NUMBER = {number: name for name, number in LEVELS.items()}
_HEADS = {name: '{"severity":"' + name + '","message":' for name in LEVELS}
_TRACE_PREFIX = "logging.googleapis.com/trace"
_WRITE_LOCK = _thread.allocate_lock()
_lock, _unlock, _write = _WRITE_LOCK.acquire, _WRITE_LOCK.release, os.write


def severity_name(level: int | str) -> str:
    """'warning', 'WARN', 30 -> 'WARNING' (stdlib numbers round down to the nearest LogSeverity)."""
    if isinstance(level, str):
        name = level.upper()
        name = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(name, name)
        if name in LEVELS:
            return name
        raise ValueError(f"unknown log level {level!r}; allowed: {', '.join(LEVELS)}")
    if level in _BY_NUMBER:
        return _BY_NUMBER[level]
    below = [number for number in LEVELS.values() if number <= level]
    return _BY_NUMBER[max(below)] if below else "DEBUG"


def _unwrap(stream):
    """functions-framework's LOG_EXECUTION_ID wrapper re-parses each line and overwrites spanId with the
    decimal span of X-Cloud-Trace-Context; our lines already carry both fields correctly, so write past it."""
    while type(stream).__name__ == "LoggingHandlerAddExecutionId" and hasattr(stream, "stream"):
        stream = stream.stream
    return stream


class Logger:
    """Structured logger. Arguments override the `LOG_LEVEL` / `GCFKIT_LOG_*` environment defaults."""

    def __init__(self, service: str | None = None, level: str | int | None = None, *, stream=None,
                 redact_keys: frozenset[str] | set[str] | None = None, buffer_size: int | None = None,
                 rate_limiter: LogRateLimiter | bool | None = True, **keys):
        config = _settings.current()
        self.service = service or config.service
        self.level = LEVELS[severity_name(level if level is not None else config.log_level)]
        self.buffer_size = config.log_buffer_size if buffer_size is None else buffer_size
        self.redactor = render.Redactor(frozenset(redact_keys) if redact_keys is not None else config.redact_keys)
        if rate_limiter is True:
            rate_limiter = (LogRateLimiter(config.rate_limit_per_second, config.rate_limit_burst,
                                           config.rate_limit_keys, config.rate_limit_window_seconds)
                            if config.rate_limit_per_second > 0 else None)
        self.rate_limiter = rate_limiter if isinstance(rate_limiter, LogRateLimiter) else None
        self._stream = stream
        self._flush = True
        self._fd = None
        self._raw_stdout = None
        self._out = None
        self._clock = render.Clock()
        self._sources: dict = {}
        # ',"logging.googleapis.com/trace":"projects/PROJECT/traces/' (the escaped string, left open)
        self._trace_head = f',"{_TRACE_PREFIX}":' + render.escape(
            f"projects/{config.project}/traces/" if config.project else "")[:-1]
        instance = _context.instance()
        self._static_labels = '"function":' + render.escape(instance.service) + (
            ',"revision":' + render.escape(instance.revision) if instance.revision else "")
        self._idle_fragment = ',"logging.googleapis.com/labels":{' + self._static_labels + "}"
        self._persistent: dict = {}
        self._static = ""  # serialized persistent keys (and service, when it differs from the function's name)
        if self.service != instance.service:
            self._persistent["service"] = self.service
        self._persistent.update(keys)  # constructor keys are on every line, whenever the logger is created
        self._rebuild_static()

    # --- keys -------------------------------------------------------------------------------------------
    def append_keys(self, **keys) -> None:
        """Add keys to every following line: until the invocation ends, or for good outside an invocation."""
        invocation = _context.current()
        if invocation is None:
            self._persistent.update(keys)
            self._rebuild_static()
        else:
            if invocation.keys is None:
                invocation.keys = {}
            invocation.keys.update(keys)
            invocation.fragment = None

    def remove_keys(self, *names: str) -> None:
        """The mirror of append_keys: inside an invocation it removes keys appended during the invocation
        (the logger's persistent keys belong to every concurrent request and are left alone); outside one
        it removes persistent keys."""
        invocation = _context.current()
        if invocation is None:
            for name in names:
                self._persistent.pop(name, None)
            self._rebuild_static()
            return
        for name in names:
            if invocation.keys and invocation.keys.pop(name, None) is not None:
                invocation.fragment = None

    def get_current_keys(self) -> dict:
        invocation = _context.current()
        return {**self._persistent, **((invocation.keys or {}) if invocation else {})}

    def set_correlation_id(self, value: str | None) -> None:
        invocation = _context.current()
        if invocation is not None:
            invocation.correlation_id = value
            invocation.fragment = None
        else:
            self._persistent["correlation_id"] = value
            self._rebuild_static()

    def get_correlation_id(self) -> str | None:
        invocation = _context.current()
        return invocation.correlation_id if invocation is not None else self._persistent.get("correlation_id")

    def _rebuild_static(self) -> None:
        self._static = self._keys_json(self._persistent)

    def _keys_json(self, keys: dict) -> str:
        return self.redactor.fields(keys) if keys else ""

    # --- levels -----------------------------------------------------------------------------------------
    def set_level(self, level: str | int) -> None:
        self.level = LEVELS[severity_name(level)]

    def enabled_for(self, level: str | int) -> bool:
        invocation = _context.current()
        number = LEVELS[severity_name(level)]
        return number >= self.level or (invocation is not None and invocation.debug)

    def debug(self, msg: object, *args, **extra) -> None:
        self._log("DEBUG", 10, msg, args, extra, None)

    def info(self, msg: object, *args, **extra) -> None:
        self._log("INFO", 20, msg, args, extra, None)

    def notice(self, msg: object, *args, **extra) -> None:
        self._log("NOTICE", 25, msg, args, extra, None)

    def warning(self, msg: object, *args, exc_info=None, **extra) -> None:
        self._log("WARNING", 30, msg, args, extra, exc_info)

    def error(self, msg: object, *args, exc_info=None, **extra) -> None:
        self._log("ERROR", 40, msg, args, extra, exc_info)

    def exception(self, msg: object, *args, exc_info=True, **extra) -> None:
        """ERROR with the current exception's stack trace, as an Error Reporting event."""
        self._log("ERROR", 40, msg, args, extra, exc_info)

    def critical(self, msg: object, *args, exc_info=None, **extra) -> None:
        self._log("CRITICAL", 50, msg, args, extra, exc_info)

    def log(self, level: str | int, msg: object, *args, exc_info=None, **extra) -> None:
        try:
            name = severity_name(level)
            number = LEVELS[name]
        except Exception as exc:  # an unknown level: the line is written anyway, with what went wrong
            self._last_resort("DEFAULT", msg, exc)
            return
        self._log(name, number, msg, args, extra, exc_info)

    # --- rendering --------------------------------------------------------------------------------------
    def _log(self, severity: str, number: int, msg, args, extra, exc_info, depth: int = 2) -> None:
        try:
            invocation = _context.current()
            if number < self.level and not (invocation is not None and invocation.debug):
                if invocation is not None and self.buffer_size and number >= 10:
                    self._buffer(invocation, severity, msg, args, extra, sys._getframe(depth))
                return
            if self.rate_limiter is not None and not self.rate_limiter.allow(
                    severity, msg if type(msg) is str else str(msg)):
                self.summarize_suppressed()
                return
            frame = sys._getframe(depth)
            self.write(self.render(severity, msg, args, extra, exc_info, invocation, frame.f_code, frame.f_lineno))
        except Exception as exc:  # the logger never raises into the application
            self._last_resort(severity, msg, exc)

    def emit(self, severity: str, message: str, raw: str = "", invocation=None, exc_info=None,
             error_id: str | None = None, status: int | None = None) -> None:
        """A line of gcfkit's own (invocation start and end, metrics, error events). `raw` is already-serialized
        JSON members (',"k":v,...') written as given: no redaction, no renaming, no rate limit. Never raises."""
        try:
            if exc_info is None:  # the per-request path: no frame, no extra data, pre-serialized fields
                fragment = self._idle_fragment if invocation is None else \
                    invocation.fragment or self._fragment(invocation)
                self.write(f'{_HEADS[severity]}{render.escape(message)},"time":"{self._clock.now()}"'
                           f"{self._static}{fragment}{raw}}}\n")
            else:
                self.write(self.render(severity, message, None, None, exc_info, invocation, raw=raw,
                                       error_id=error_id, status=status))
        except Exception as exc:
            self._last_resort(severity, message, exc)

    def render(self, severity: str, msg, args, extra, exc_info, invocation, code=None, line: int = 0,
               now: float | None = None, raw: str = "", error_id: str | None = None,
               status: int | None = None) -> str:
        if args:
            try:
                text = str(msg) % args
            except Exception:
                text = f"{msg} {args!r}"
        else:
            text = msg if type(msg) is str else str(msg)
        if exc_info:
            from gcfkit import errors  # only when an exception is logged

            report = errors.report(exc_info, invocation, self, error_id=error_id, status=status)
            if report is not None:
                text = f"{text}\n{report.stack_trace}" if text else report.stack_trace
                raw = "," + render.encode(report.fields)[1:-1] + raw
        source = ""
        if code is not None:
            cached = self._sources.get((id(code), line))
            if cached is None or cached[0] is not code:  # ids of collected code objects get reused
                if len(self._sources) > 10_000:  # code generated at run time: keep the cache bounded
                    self._sources.clear()
                cached = self._sources[(id(code), line)] = (code, "," + render.source_location(code, line))
            source = cached[1]
        static = self._static
        fragment = self._idle_fragment if invocation is None else invocation.fragment or self._fragment(invocation)
        if extra and (self._persistent or (invocation is not None and invocation.keys)):
            keys = {**self._persistent, **((invocation.keys or {}) if invocation is not None else {})}
            if not keys.keys().isdisjoint(extra):  # a key given twice: one JSON key, the call's value wins
                extra = {**keys, **extra}
                static = ""
                fragment = self._idle_fragment if invocation is None else self._invocation_fragment(invocation, False)
        if extra and (exc_info or (invocation is not None and invocation.correlation_id)):
            extra = _renamed_clashes(extra, exc_info, invocation)
        fields = self.redactor.fields(extra) if extra else ""
        stamp = self._clock.now() if now is None else self._clock.stamp(now)
        return (f'{_HEADS[severity]}{render.escape(text)},"time":"{stamp}"'
                f"{source}{static}{fragment}{raw}{fields}}}\n")

    def _fragment(self, invocation) -> str:
        if invocation is None:
            return self._idle_fragment
        fragment = invocation.fragment
        if fragment is None:
            fragment = invocation.fragment = self._invocation_fragment(invocation)
        return fragment

    def _invocation_fragment(self, inv, with_keys: bool = True) -> str:
        execution = ',"execution_id":' + render.escape(inv.execution_id) if inv.execution_id else ""
        fragment = f',"logging.googleapis.com/labels":{{{self._static_labels}{execution}}}'
        if inv.trace_id:  # trace and span ids were checked to be hex by gcfkit.tracecontext
            fragment += (f'{self._trace_head}{inv.trace_id}","{_TRACE_PREFIX}_sampled":'
                         f'{"true" if inv.sampled else "false"}'
                         + (f',"logging.googleapis.com/spanId":"{inv.span_id}"' if inv.span_id else ""))
        fragment += ',"cold_start":true' if inv.start_kind == _context.COLD else ',"cold_start":false'
        if inv.debug:
            fragment += ',"debug_sampled":true'
        if inv.correlation_id:
            fragment += ',"correlation_id":' + render.escape(str(inv.correlation_id))
        if inv.keys and with_keys:
            fragment += self._keys_json(inv.keys)
        return fragment

    def write(self, line: str) -> None:
        """One line, written and flushed at once: lines of concurrent requests never interleave, and a crash or
        an instance frozen between requests loses nothing. To the real stdout it is one os.write (a third of
        the cost of TextIOWrapper.write + flush); to anything else (pytest's capsys, a StringIO) a write."""
        if self._stream is None and sys.stdout is not self._raw_stdout:
            self._use(sys.stdout)
        fd = self._fd
        try:
            if fd is not None:
                data = line.encode()
                _lock()  # a line above PIPE_BUF (4 KiB) is not atomic on a pipe: one writer at a time
                try:
                    written = _write(fd, data)
                    while written < len(data):
                        written += _write(fd, data[written:])
                finally:
                    _unlock()
            else:
                stream = self._stream or self._out
                stream.write(line)
                if self._flush:
                    stream.flush()
        except (OSError, ValueError):  # closed or broken stdout: nowhere left to report it
            pass

    def _use(self, stdout) -> None:
        out = _unwrap(stdout)
        self._raw_stdout, self._out, self._fd = stdout, out, None
        self._flush = not (getattr(out, "line_buffering", False) or getattr(out, "write_through", False))
        try:
            fd = out.fileno()
            out.flush()  # what was buffered before goes first
        except (AttributeError, OSError, ValueError):  # no file descriptor (capsys, StringIO): write to it
            return
        self._fd = fd

    # --- the debug buffer -------------------------------------------------------------------------------
    def _buffer(self, invocation, severity, msg, args, extra, frame) -> None:
        buffer = invocation.debug_buffer
        if buffer is None:
            buffer = invocation.debug_buffer = deque(maxlen=self.buffer_size)
        buffer.append((self, time.time(), severity, msg, args, dict(extra) if extra else None, frame.f_code,
                       frame.f_lineno))

    def summarize_suppressed(self) -> None:
        summary = self.rate_limiter.summary_due() if self.rate_limiter is not None else None
        if summary is not None:
            frame = sys._getframe(0)
            self.write(self.render("WARNING", "log lines suppressed by the rate limiter: %d in %.0f s",
                                   (summary["suppressed"], summary["window_seconds"]), {"rate_limit": summary},
                                   None, _context.current(), frame.f_code, frame.f_lineno))

    def _last_resort(self, severity: str, msg, exc: Exception) -> None:
        try:
            text, error = repr(msg), f"{type(exc).__name__}: {exc}"
        except Exception:  # a broken __repr__ / __str__
            text, error = "<unprintable message>", type(exc).__name__
        self.write('{"severity":"' + severity + '","message":' + render.escape(text) + ',"gcfkit_log_error":'
                   + render.escape(error) + "}\n")


def _renamed_clashes(extra: dict, exc_info, invocation) -> dict:
    """`error` and `correlation_id` are ordinary keys, except on the lines where gcfkit writes its own (an
    error event's `error`, the invocation's `correlation_id`): there the caller's is renamed `error_` /
    `correlation_id_`, so no line has a key twice (a JSON parser would keep one and lose the other)."""
    taken = []
    if exc_info and "error" in extra:
        taken.append("error")
    if invocation is not None and invocation.correlation_id and "correlation_id" in extra:
        taken.append("correlation_id")
    if not taken:
        return extra
    return {(key + "_" if key in taken else key): value for key, value in extra.items()}


def flush_debug_buffer(invocation) -> int:
    """Write the debug lines an invocation buffered (it failed). Returns how many were written."""
    buffer = invocation.debug_buffer
    if not buffer:
        return 0
    invocation.debug_buffer = None
    for logger, when, severity, msg, args, extra, code, line in buffer:
        extra = {**(extra or {}), "debug_buffered": True}
        try:  # written while a failure is being reported: never a second failure
            logger.write(logger.render(severity, msg, args, extra, None, invocation, code, line, now=when))
        except Exception as exc:
            logger._last_resort(severity, msg, exc)
    return len(buffer)
