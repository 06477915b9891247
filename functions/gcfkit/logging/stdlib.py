"""A stdlib `logging.Handler` that writes records through a gcfkit Logger (imported only when used)."""

from __future__ import annotations

import logging

from gcfkit import context as _context
from gcfkit.logging.logger import LEVELS, Logger, severity_name

# LogRecord attributes that are not user data passed with `extra=`
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class StructuredHandler(logging.Handler):
    def __init__(self, logger: Logger, level: int = logging.NOTSET):
        super().__init__(level)
        self.gcf_logger = logger
        self._codes: dict[tuple, _Code] = {}  # one stand-in code object per (file, function) for the source cache

    def emit(self, record: logging.LogRecord) -> None:
        try:
            severity = severity_name(record.levelno)
            extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")}
            extra["logger"] = record.name
            code = self._codes.get((record.pathname, record.funcName))
            if code is None:
                if len(self._codes) > 10_000:
                    self._codes.clear()
                code = self._codes[(record.pathname, record.funcName)] = _Code(record.pathname, record.funcName)
            line = self.gcf_logger.render(severity, record.msg, record.args or None, extra, record.exc_info,
                                          _context.current(), code, record.lineno, now=record.created)
            self.gcf_logger.write(line)
        except Exception:
            self.handleError(record)


class _Code:
    """What `render` reads from a code object, built from a LogRecord."""

    __slots__ = ("co_filename", "co_name", "co_qualname")

    def __init__(self, filename: str, name: str):
        self.co_filename = filename
        self.co_name = self.co_qualname = name


def install(logger: Logger, level: str | int, names: tuple[str, ...]) -> StructuredHandler:
    handler = StructuredHandler(logger, LEVELS[severity_name(level)])
    for name in names:
        target = logging.getLogger(name or None)
        target.addHandler(handler)
        if target.level == logging.NOTSET or target.level > handler.level:
            target.setLevel(handler.level)
    return handler
