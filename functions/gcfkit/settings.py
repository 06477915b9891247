"""Runtime settings of gcfkit, read once from environment variables into one typed object.

Every knob has a default that suits a deployed function; `GCFKIT_*` variables override them (the
names follow AWS Lambda Powertools' `POWERTOOLS_*` variables where one exists). A bad value stops the
function at import with a message naming the variable, what it got and what is allowed, so a typo in
`environments/<env>.yaml` fails the deploy's health check instead of silently logging at the wrong level.

Stdlib only and no dataclasses: this module is imported on every cold start.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` itself costs milliseconds on a cold start
import os

LOG_LEVELS = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
EXPORT_MODES = ("log", "monitoring", "off")
# Matched against extra-data keys lower-cased with '-' as '_': a key equal to one of these, or ending in
# '_' + one of these (access_token, stripe_secret, x_api_key), has its value replaced by "[REDACTED]".
DEFAULT_REDACT_KEYS = frozenset({
    "authorization", "proxy_authorization", "cookie", "set_cookie", "password", "passwd", "pwd", "token",
    "secret", "api_key", "apikey", "private_key", "credentials", "client_secret", "session", "sessionid",
    "x_api_key", "x_goog_iap_jwt_assertion", "ssn", "card_number", "cvv",
})
MIN_EXPORT_INTERVAL_SECONDS = 10.0  # Cloud Monitoring: at most one point per time series every 10 s


class SettingsError(ValueError):
    """An environment variable has a value gcfkit cannot use."""


class Settings:
    """What gcfkit reads from the environment. Build with `Settings.from_env()`; never mutated after."""

    __slots__ = (
        "cold_start_window_seconds", "correlation_id_header", "health_cache_seconds", "health_timeout_seconds",
        "instance_id", "log_buffer_size", "log_event", "log_level", "log_sample_rate", "metrics_export",
        "metrics_export_attempts", "metrics_export_timeout_seconds", "metrics_interval_seconds",
        "metrics_max_series", "metrics_namespace", "monitoring_endpoint", "project", "rate_limit_burst",
        "rate_limit_keys", "rate_limit_per_second", "rate_limit_window_seconds", "redact_keys", "region",
        "revision", "service",
    )

    def __init__(self, **values: object):
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are read once from the environment; build new ones with Settings.from_env()")

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        extra_redact = {k.strip().lower().replace("-", "_") for k in env.get("GCFKIT_LOG_REDACT_KEYS", "").split(",")}
        return cls(
            service=env.get("GCFKIT_SERVICE_NAME") or env.get("K_SERVICE") or env.get("FUNCTION_TARGET") or "local",
            revision=env.get("K_REVISION", ""),
            project=(env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT") or env.get("GCLOUD_PROJECT")
                     or None),
            region=env.get("GCFKIT_REGION") or env.get("FUNCTION_REGION") or None,
            instance_id=env.get("GCFKIT_INSTANCE_ID") or os.urandom(8).hex(),
            log_level=read.choice(("GCFKIT_LOG_LEVEL", "LOG_LEVEL"), LOG_LEVELS, "INFO",
                                  aliases={"WARN": "WARNING", "FATAL": "CRITICAL"}),
            log_sample_rate=read.number("GCFKIT_LOG_SAMPLE_RATE", 0.0, low=0.0, high=1.0),
            log_buffer_size=int(read.number("GCFKIT_LOG_BUFFER_SIZE", 100, low=0, high=10_000, integer=True)),
            log_event=read.flag("GCFKIT_LOG_EVENT", False),
            redact_keys=DEFAULT_REDACT_KEYS | (extra_redact - {""}),
            rate_limit_per_second=read.number("GCFKIT_LOG_RATE_LIMIT_PER_SECOND", 100.0, low=0.0),
            rate_limit_burst=int(read.number("GCFKIT_LOG_RATE_LIMIT_BURST", 500, low=1, integer=True)),
            rate_limit_keys=int(read.number("GCFKIT_LOG_RATE_LIMIT_KEYS", 10_000, low=1, integer=True)),
            rate_limit_window_seconds=read.number("GCFKIT_LOG_RATE_LIMIT_WINDOW_SECONDS", 60.0, low=1.0),
            metrics_export=read.choice(("GCFKIT_METRICS_EXPORT",), EXPORT_MODES, "log"),
            metrics_namespace=read.identifier("GCFKIT_METRICS_NAMESPACE", "gcfkit"),
            metrics_interval_seconds=read.number("GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS", 60.0,
                                                 low=MIN_EXPORT_INTERVAL_SECONDS),
            metrics_max_series=int(read.number("GCFKIT_METRICS_MAX_SERIES", 100, low=1, high=10_000, integer=True)),
            metrics_export_timeout_seconds=read.number("GCFKIT_METRICS_EXPORT_TIMEOUT_SECONDS", 5.0, low=0.1,
                                                       high=60.0),
            metrics_export_attempts=int(read.number("GCFKIT_METRICS_EXPORT_ATTEMPTS", 2, low=1, high=5,
                                                    integer=True)),
            monitoring_endpoint=read.loopback("GCFKIT_MONITORING_ENDPOINT"),
            cold_start_window_seconds=read.number("GCFKIT_COLD_START_WINDOW_SECONDS", 10.0, low=0.0),
            health_cache_seconds=read.number("GCFKIT_HEALTH_CACHE_SECONDS", 5.0, low=0.0),
            health_timeout_seconds=read.number("GCFKIT_HEALTH_TIMEOUT_SECONDS", 2.0, low=0.01, high=60.0),
            correlation_id_header=env.get("GCFKIT_CORRELATION_ID_HEADER", "X-Correlation-Id").strip(),
        )


class _Reader:
    def __init__(self, env):
        self.env = env

    def _fail(self, name: str, value: str, allowed: str) -> SettingsError:
        return SettingsError(f"environment variable {name}={value!r}: {allowed} (set it in the function's env: "
                             "section of environments/<env>.yaml, or unset it for the default)")

    def choice(self, names: tuple[str, ...], allowed: tuple[str, ...], default: str, aliases=None) -> str:
        for name in names:
            raw = self.env.get(name)
            if raw is None or not raw.strip():
                continue
            value = raw.strip().upper() if allowed is LOG_LEVELS else raw.strip().lower()
            value = (aliases or {}).get(value, value)
            if value not in allowed:
                raise self._fail(name, raw, f"allowed: {', '.join(allowed)}")
            return value
        return default

    def number(self, name: str, default: float, low: float | None = None, high: float | None = None,
               integer: bool = False) -> float:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            raise self._fail(name, raw, "expected " + ("an integer" if integer else "a number")) from None
        if value != value or (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low if low is not None else '-inf'} <= value <= {high if high is not None else 'inf'}"
            raise self._fail(name, raw, f"allowed: {bounds}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise self._fail(name, raw, "allowed: true, false (or 1, 0, yes, no, on, off)")

    def identifier(self, name: str, default: str) -> str:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return default
        value = raw.strip()
        if not (value[:1].isalpha() and value.isascii() and value.replace("_", "a").isalnum() and value.islower()):
            raise self._fail(name, raw, "allowed: lower-case letters, digits and '_', starting with a letter")
        return value

    def loopback(self, name: str) -> str | None:
        """host:port of a local MetricService (tests, local development). Loopback only, like the emulators."""
        raw = (self.env.get(name) or "").strip()
        if not raw:
            return None
        host, _, port = raw.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "[::1]") or not port.isdigit():
            raise self._fail(name, raw, "expected 127.0.0.1:PORT or localhost:PORT (a local MetricService; "
                                        "unset it to export to Cloud Monitoring)")
        return raw


_lock = _thread.allocate_lock()
_current: Settings | None = None


def current() -> Settings:
    """The settings of this process, read from os.environ on first use."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Settings.from_env()
    return _current


def reload(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings again (tests change the environment; a deployed function never needs this)."""
    global _current
    with _lock:
        _current = Settings.from_env(environ)
    return _current
