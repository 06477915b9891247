"""Health checks: registered callables run concurrently, each with a timeout, aggregated and cached.

    health = HealthChecks()
    health.register("firestore", firestore_check())          # critical: failing -> unhealthy (503)
    health.register("exchange_rates", rates_ok, critical=False, timeout=0.5)  # failing -> degraded (200)

A check passes by returning (None, True, or a dict of details to show) and fails by raising or returning
False. The result is cached for `GCFKIT_HEALTH_CACHE_SECONDS` (5 s) and computed by one caller at a time,
so a storm of probes costs one round of checks; a check that is still running from an earlier round (a
hung dependency) is waited on again rather than started a second time, so hung checks don't pile up
threads. `with_monitoring` answers `GET /health` with `run()`.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import os
import time

from gcfkit import context as _context
from gcfkit import settings as _settings

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


class Check:
    __slots__ = ("critical", "fn", "name", "timeout")

    def __init__(self, name: str, fn, timeout: float, critical: bool):
        self.name = name
        self.fn = fn
        self.timeout = timeout
        self.critical = critical


class _Run:
    """One execution of a check in its own daemon thread (a hung dependency must not block shutdown)."""

    def __init__(self, check: Check):
        self.check = check
        import threading  # the first health check, not the cold start, pays for the module

        self.done = threading.Event()
        self.outcome: dict = {}
        self.started = time.perf_counter()
        threading.Thread(target=self._run, name=f"health-{check.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            value = self.check.fn()
            if value is False:
                self.outcome = {"status": "fail", "error": "check returned False"}
            else:
                self.outcome = {"status": "pass"}
                if isinstance(value, dict) and value:
                    self.outcome["details"] = value
        except Exception as exc:
            self.outcome = {"status": "fail", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        finally:
            self.outcome["duration_ms"] = round((time.perf_counter() - self.started) * 1000, 3)
            self.done.set()


class HealthChecks:
    def __init__(self, cache_seconds: float | None = None, timeout: float | None = None):
        config = _settings.current()
        self.cache_seconds = config.health_cache_seconds if cache_seconds is None else cache_seconds
        self.default_timeout = config.health_timeout_seconds if timeout is None else timeout
        self.checks: dict[str, Check] = {}
        self._inflight: dict[str, _Run] = {}
        self._cached: tuple[float, dict] | None = None
        self._lock = _thread.allocate_lock()
        self.runs = 0  # rounds of checks actually executed (the cache and single flight keep this low)

    def register(self, name: str, fn=None, *, timeout: float | None = None, critical: bool = True):
        """Add a check; usable as `health.register("name", fn)` or as a decorator `@health.register("name")`."""
        def add(function):
            if name in self.checks:
                raise ValueError(f"health check {name!r} is registered twice")
            self.checks[name] = Check(name, function, timeout or self.default_timeout, critical)
            self._cached = None
            return function

        return add(fn) if fn is not None else add

    def run(self) -> tuple[dict, int]:
        """(JSON body, HTTP status): 200 when healthy or degraded, 503 when unhealthy."""
        cached = self._cached
        if cached is None or time.monotonic() >= cached[0]:
            with self._lock:  # one round at a time; the others wait and get its result
                cached = self._cached
                if cached is None or time.monotonic() >= cached[0]:
                    body = self._run_all()  # the result is kept for cache_seconds from when it is known
                    cached = self._cached = (time.monotonic() + self.cache_seconds, body, time.time())
                    return self._answer(cached, False)
        return self._answer(cached, True)

    def _answer(self, cached: tuple, from_cache: bool) -> tuple[dict, int]:
        _, body, checked = cached
        instance = _context.instance()
        return ({**body, "uptime_seconds": round(time.time() - instance.started, 3), "cached": from_cache,
                 "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(checked))}, _status_code(body))

    def _run_all(self) -> dict:
        self.runs += 1
        runs = {}
        for name, check in self.checks.items():
            run = self._inflight.get(name)
            if run is None or run.done.is_set():
                run = self._inflight[name] = _Run(check)
            runs[name] = run
        results = {}
        for name, run in runs.items():
            remaining = run.check.timeout - (time.perf_counter() - run.started)
            if run.done.wait(max(remaining, 0.0)):
                result = dict(run.outcome)
            else:
                result = {"status": "timeout", "error": f"no answer within {run.check.timeout:g} s",
                          "duration_ms": round((time.perf_counter() - run.started) * 1000, 3)}
            result["critical"] = run.check.critical
            results[name] = result
        failed = [(name, r) for name, r in results.items() if r["status"] != "pass"]
        status = UNHEALTHY if any(r["critical"] for _, r in failed) else DEGRADED if failed else HEALTHY
        instance = _context.instance()
        return {"status": status, "service": instance.service, "revision": instance.revision,
                "instance_id": instance.instance_id, "checks": results}


def _status_code(body: dict) -> int:
    return 503 if body["status"] == UNHEALTHY else 200


def config_check(*loaders, required_env: tuple[str, ...] = ("GOOGLE_CLOUD_PROJECT",)):
    """Passes when gcfkit's settings (and each of your `loaders`, e.g. your app's config parser) load and
    the `required_env` variables are set."""
    def check() -> dict:
        config = _settings.Settings.from_env()  # the environment as it is now, not as it was at import
        missing = [name for name in required_env if not os.environ.get(name)]
        if missing:
            raise RuntimeError(f"environment variable(s) not set: {', '.join(missing)}")
        for load in loaders:
            load()
        return {"project": config.project, "log_level": config.log_level, "metrics_export": config.metrics_export}

    return check


def firestore_check(client=None, collection: str = "_gcfkit_health", timeout: float = 1.5):
    """Passes when Firestore answers a single-document read (of a document that need not exist) in time.

    The client is created on the first check (importing google-cloud-firestore costs a second), with the
    function's project; FIRESTORE_EMULATOR_HOST is honoured by the client itself."""
    holder = {"client": client}

    def check() -> dict:
        if holder["client"] is None:
            from google.cloud import firestore

            holder["client"] = firestore.Client(project=_settings.current().project)
        holder["client"].collection(collection).document("probe").get(timeout=timeout, retry=None)
        emulator = os.environ.get("FIRESTORE_EMULATOR_HOST")
        return {"emulator": emulator} if emulator else {}

    return check
