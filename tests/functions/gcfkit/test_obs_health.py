"""Health checks: concurrent, per-check timeouts, aggregation, caching; served at GET /health."""

from __future__ import annotations

import threading

import pytest
from gcfkit.health import HealthChecks, config_check, firestore_check


def test_checks_run_concurrently():
    # Each check waits for the other: they pass only if both run at the same time.
    barrier = threading.Barrier(2, timeout=5)
    health = HealthChecks(cache_seconds=0, timeout=5)
    health.register("a", lambda: barrier.wait() is not None)
    health.register("b", lambda: barrier.wait() is not None)
    body, status = health.run()
    assert status == 200 and body["status"] == "healthy"
    assert {name: c["status"] for name, c in body["checks"].items()} == {"a": "pass", "b": "pass"}


def test_aggregation_and_status_codes():
    release = threading.Event()
    health = HealthChecks(cache_seconds=0)
    health.register("fine", lambda: {"version": 3})
    health.register("cache", lambda: False, critical=False)
    body, status = health.run()
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["fine"] == {"status": "pass", "details": {"version": 3}, "critical": True,
                                      "duration_ms": body["checks"]["fine"]["duration_ms"]}
    assert body["checks"]["cache"]["status"] == "fail" and body["checks"]["cache"]["critical"] is False

    @health.register("database", timeout=0.2)
    def hung():
        release.wait(10)

    health.register("broken", lambda: 1 / 0)
    body, status = health.run()
    assert (status, body["status"]) == (503, "unhealthy")
    assert body["checks"]["database"]["status"] == "timeout"
    assert body["checks"]["database"]["error"] == "no answer within 0.2 s"
    assert body["checks"]["broken"]["error"] == "ZeroDivisionError: division by zero"
    assert body["service"] and body["instance_id"] and body["uptime_seconds"] >= 0
    release.set()


def test_a_probe_storm_costs_one_round_and_a_hung_check_is_not_started_twice(obs_env):
    calls = []
    release = threading.Event()
    health = HealthChecks(cache_seconds=60)

    def slow():
        calls.append(1)
        release.wait(10)

    health.register("slow", slow, timeout=0.1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(health.run())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert health.runs == 1 and len(calls) == 1
    assert sum(1 for body, _ in results if body["cached"]) == 7
    health._cached = None  # the cache expired; the check from the first round is still hanging
    health.run()
    assert len(calls) == 1, "the hung check was waited on again, not started a second time"
    release.set()


def test_the_cache_lasts_from_when_the_result_is_known_even_when_checks_are_slower_than_it():
    import time

    health = HealthChecks(cache_seconds=0.3, timeout=2)
    health.register("slow", lambda: time.sleep(0.4) or True)
    first, _ = health.run()
    second, _ = health.run()
    assert (first["cached"], second["cached"], health.runs) == (False, True, 1)


def test_duplicate_names_are_refused():
    health = HealthChecks()
    health.register("x", lambda: None)
    with pytest.raises(ValueError, match="health check 'x' is registered twice"):
        health.register("x", lambda: None)


def test_config_check_names_what_is_missing(obs_env, monkeypatch):
    assert config_check()()["project"] == "demo-obs"
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    with pytest.raises(RuntimeError, match="environment variable\\(s\\) not set: GOOGLE_CLOUD_PROJECT"):
        config_check()()
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-obs")
    monkeypatch.setenv("GCFKIT_METRICS_EXPORT", "logs")
    with pytest.raises(ValueError, match="GCFKIT_METRICS_EXPORT: got 'logs'; allowed: log, monitoring, off"):
        config_check()()


@pytest.mark.firestore
def test_firestore_check_reads_through_the_emulator(firestore, firestore_emulator, obs_env, monkeypatch):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.address)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-gcf-kit-test")
    obs_env()
    assert firestore_check(client=firestore)() == {"emulator": firestore_emulator.address}
    assert firestore_check()() == {"emulator": firestore_emulator.address}, "a client of its own, on first use"


@pytest.mark.firestore
def test_firestore_check_fails_when_firestore_is_unreachable(obs_env, monkeypatch):
    from kit.emulator import free_port

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-gcf-kit-test")
    obs_env()
    health = HealthChecks(cache_seconds=0)
    health.register("firestore", firestore_check(timeout=0.5), timeout=3)
    body, status = health.run()
    assert status == 503 and body["checks"]["firestore"]["status"] in ("fail", "timeout")


def test_health_is_served_by_with_monitoring(served, lines):
    client = served("obs_health_app.py", "probed", LOG_LEVEL="DEBUG")
    import sys

    health = sys.modules["obs_health_app"].health
    health.register("ok", lambda: None)
    health.register("optional", lambda: False, critical=False)
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "degraded"
    assert client.get("/health/").get_json()["cached"] is True
    (line, _) = lines()
    assert line["severity"] == "DEBUG" and line["health"]["status"] == "degraded"
    assert client.post("/health").status_code == 200, "only GET and HEAD are probes; a POST is the function's"
