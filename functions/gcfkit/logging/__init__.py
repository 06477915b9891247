"""Structured logging for Cloud Logging: `Logger`, the log rate limiter, and a bridge for stdlib logging.

    from gcfkit.logging import Logger
    logger = Logger()                       # level from LOG_LEVEL, service from K_SERVICE
    logger.info("order %s paid", order_id, amount=12.5)
"""

from __future__ import annotations

from gcfkit.logging.logger import LEVELS, Logger, flush_debug_buffer, severity_name
from gcfkit.logging.ratelimit import LogRateLimiter

__all__ = ["LEVELS", "LogRateLimiter", "Logger", "capture_stdlib", "flush_debug_buffer", "severity_name"]


def capture_stdlib(logger: Logger | None = None, level: str | int = "INFO", names: tuple[str, ...] = ("",)):
    """Route records of the stdlib `logging` loggers `names` (root by default) through `logger`, so library
    logs get the same JSON, trace and labels. Returns the handler (remove it with `removeHandler`)."""
    from gcfkit.logging.stdlib import install

    return install(logger or Logger(), level, names)
