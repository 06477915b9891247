"""Runtime settings of gcfkit, read once from environment variables into one typed object.

Every knob has a default that suits a deployed function; `GCFKIT_*` variables override them (the
names follow AWS Lambda Powertools' `POWERTOOLS_*` variables where one exists). Bad values are caught
twice, by the same code: `problems_in(env)` lets the kit reject `environments/<env>.yaml` before anything
is deployed, and a function started with a bad value anyway stops at import with a message naming the
variable, what it got and what is allowed, instead of silently logging at the wrong level.

Stdlib only and no dataclasses: this module is imported on every cold start (and by the kit's config loader).
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import os
from collections.abc import Mapping

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `environ` (default: os.environ). SettingsError naming every bad variable if any value is bad."""
        env = os.environ if environ is None else environ
        read = _Reader(env)
        settings = cls._read(env, read)
        if read.problems:
            bad = "; ".join(f"environment variable {name}: {message}" for name, message in read.problems)
            # Where the value came from is unknown here (a deployed function, a test, a shell): say where a
            # deployed function's variables are set, without claiming which file this one came from.
            raise SettingsError(f"{bad} (a deployed function's variables are set in environments/<env>.yaml, "
                                "functions.<name>.env; unset a variable for its default)")
        return settings

    @classmethod
    def _read(cls, env: Mapping[str, str], read: _Reader) -> Settings:
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


def problems_in(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """What gcfkit would refuse in a function's environment variables, without reading os.environ.

    `env` maps variable names to values as the function will see them (strings; e.g. the `env:` of one
    function in environments/<env>.yaml). Returns one (variable name, message) per bad value, in a stable
    order, empty when every value is usable. The message says what was given and what is allowed, in the
    form "got 'bogus'; allowed: log, monitoring, off". Variables gcfkit does not read are ignored, and a
    missing variable is never a problem (each has a default). Checked are LOG_LEVEL / GCFKIT_LOG_LEVEL,
    GCFKIT_METRICS_EXPORT and every other GCFKIT_* knob `Settings` reads; the same checks run at import of
    a deployed function, so what passes here cannot stop the function at start. Never raises for any
    mapping of str to str; cheap to import (stdlib only) and pure (no environment, files or network).
    """
    read = _Reader(env)
    Settings._read(env, read)
    return read.problems


class _Reader:
    """Reads typed values from an environment; a bad value is recorded in `problems` and its default used."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[tuple[str, str]] = []

    def _fail(self, name: str, value: str, allowed: str, default):
        self.problems.append((name, f"got {value!r}; {allowed}"))
        return default

    def choice(self, names: tuple[str, ...], allowed: tuple[str, ...], default: str, aliases=None) -> str:
        """The first of `names` that is set wins; every one that is set is checked."""
        chosen = None
        for name in names:
            raw = self.env.get(name)
            if raw is None or not raw.strip():
                continue
            value = raw.strip().upper() if allowed is LOG_LEVELS else raw.strip().lower()
            value = (aliases or {}).get(value, value)
            if value not in allowed:
                self._fail(name, raw, f"allowed: {', '.join(allowed)}", None)
            elif chosen is None:
                chosen = value
        return default if chosen is None else chosen

    def number(self, name: str, default: float, low: float | None = None, high: float | None = None,
               integer: bool = False) -> float:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            return self._fail(name, raw, "allowed: " + ("an integer" if integer else "a number"), default)
        if value != value or (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low if low is not None else '-inf'} <= value <= {high if high is not None else 'inf'}"
            return self._fail(name, raw, f"allowed: {bounds}", default)
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
        return self._fail(name, raw, "allowed: true, false (or 1, 0, yes, no, on, off)", default)

    def identifier(self, name: str, default: str) -> str:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return default
        value = raw.strip()
        if not (value[:1].isalpha() and value.isascii() and value.replace("_", "a").isalnum() and value.islower()):
            return self._fail(name, raw, "allowed: lower-case letters, digits and '_', starting with a letter",
                              default)
        return value

    def loopback(self, name: str) -> str | None:
        """host:port of a local MetricService (tests, local development). Loopback only, like the emulators."""
        raw = (self.env.get(name) or "").strip()
        if not raw:
            return None
        host, _, port = raw.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "[::1]") or not port.isdigit():
            return self._fail(name, raw, "allowed: 127.0.0.1:PORT or localhost:PORT (a local MetricService; "
                                         "unset it to export to Cloud Monitoring)", None)
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


def _new_instance_after_fork() -> None:
    """functions-framework with WORKERS > 1 runs gunicorn, which forks its workers after the function's
    module was loaded (and these settings read): each worker is an instance of its own, with its own id,
    so two workers never write the same Cloud Monitoring series."""
    global _lock
    _lock = _thread.allocate_lock()
    if _current is not None:
        configured = os.environ.get("GCFKIT_INSTANCE_ID")
        new_id = f"{configured}-{os.getpid()}" if configured else os.urandom(8).hex()
        object.__setattr__(_current, "instance_id", new_id)  # the one change settings ever see


os.register_at_fork(after_in_child=_new_instance_after_fork)
