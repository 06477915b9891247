"""functions/main.py as deployed: with_monitoring, health checks on the real Firestore emulator, JSON 404."""

from __future__ import annotations

from pathlib import Path

import pytest
from obs_checks import check_entry

MAIN = Path(__file__).resolve().parents[3] / "functions" / "main.py"


@pytest.fixture
def api(obs_env, monkeypatch, firestore_emulator):
    import functions_framework

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.address)
    monkeypatch.setenv("FUNCTION_TARGET", "api")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
    obs_env(GOOGLE_CLOUD_PROJECT="demo-gcf-kit-test", K_SERVICE="orders")
    return functions_framework.create_app("api", str(MAIN)).test_client()


@pytest.mark.firestore
def test_health_checks_config_and_firestore(api):
    response = api.get("/health")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "healthy" and body["service"] == "orders"
    assert body["checks"]["firestore"]["status"] == "pass" and body["checks"]["config"]["status"] == "pass"
    assert body["checks"]["firestore"]["details"]["emulator"].startswith("127.0.0.1:")


@pytest.mark.firestore
def test_an_unknown_route_is_a_json_404_with_request_logs(api, lines):
    response = api.get("/nope", headers={"Function-Execution-Id": "x1"})
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": "no route for GET /nope"}
    start, end = lines()
    for entry in (start, end):
        assert check_entry(entry)["logging.googleapis.com/labels"]["execution_id"] == "x1"
    assert end["httpRequest"]["status"] == 404 and end["severity"] == "WARNING"


@pytest.mark.firestore
def test_the_frameworks_own_answers_are_json_too(api, lines):
    response = api.get("/robots.txt")
    assert response.status_code == 404 and response.get_json() == {"error": "not_found", "message": "Not Found"}
    (entry,) = lines()
    assert check_entry(entry, invocation=False)["httpRequest"]["status"] == 404
