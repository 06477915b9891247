"""with_monitoring on real functions-framework apps (create_app + Flask test client), parsing every line."""

from __future__ import annotations

import json
import threading

from gcfkit import context, errors
from gcfkit.metrics import registry
from obs_checks import TRACE_ID, TRACEPARENT, check_entry

ERROR_TYPE = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"


def test_an_http_request_writes_start_user_and_end_lines_with_trace_and_request_fields(served, lines):
    client = served("obs_http_app.py", "orders")
    response = client.post("/orders?id=7&plan=pro", data="{}", content_type="application/json",
                           headers={"traceparent": TRACEPARENT, "Function-Execution-Id": "exec-1",
                                    "User-Agent": "pytest", "X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
    assert response.status_code == 200 and response.get_json() == {"ok": True}
    start, user, end = [check_entry(e, trace_id=TRACE_ID) for e in lines()]  # the DEBUG line was dropped

    assert start["message"] == "POST /orders started" and start["severity"] == "INFO"
    for entry in (start, user, end):
        assert entry["logging.googleapis.com/labels"]["execution_id"] == "exec-1"
        assert entry["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
        assert entry["logging.googleapis.com/trace_sampled"] is True
        assert entry["cold_start"] is True  # the first request of this instance
    assert start["instance"]["start"] == "cold"

    assert user["message"] == "processing order" and user["order_id"] == "7"
    assert user["card"] == {"number": "4111", "cvv": "[REDACTED]"}
    assert user["logging.googleapis.com/sourceLocation"]["function"] == "orders"
    assert user["logging.googleapis.com/sourceLocation"]["file"].endswith("obs_http_app.py")

    http = end["httpRequest"]
    assert http["requestMethod"] == "POST" and http["requestUrl"] == "http://localhost/orders?id=7&plan=pro"
    assert http["status"] == 200 and http["userAgent"] == "pytest" and http["remoteIp"] == "203.0.113.9"
    assert http["requestSize"] == "2" and http["protocol"] == "HTTP/1.1"
    assert http["latency"].endswith("s") and float(http["latency"][:-1]) >= 0
    assert end["invocation"]["status"] == "success" and end["invocation"]["start"] == "cold"
    assert end["invocation"]["slowest"][0]["name"] == "firestore_read_ms"
    assert end["gcfkit_metrics"]["orders_created"] == {"kind": "counter", "unit": "1", "value": 1,
                                                       "labels": {"plan": "pro"}}
    assert end["gcfkit_metrics"]["payment_ms"]["value"] == 41.5


def test_x_cloud_trace_context_gives_the_trace_and_a_hex_span(served, lines):
    client = served("obs_http_app.py", "orders")
    client.get("/orders", headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/123;o=1"})
    for entry in lines():
        check_entry(entry, trace_id=TRACE_ID)
        assert entry["logging.googleapis.com/spanId"] == "000000000000007b"


def test_a_valid_traceparent_wins_over_x_cloud_trace_context_and_a_malformed_one_falls_back(served, lines):
    client = served("obs_http_app.py", "orders")
    other = "a" * 32
    client.get("/orders", headers={"traceparent": TRACEPARENT, "X-Cloud-Trace-Context": f"{other}/5;o=0"})
    assert {(e["logging.googleapis.com/trace"], e["logging.googleapis.com/spanId"]) for e in lines()} == {
        (f"projects/demo-obs/traces/{TRACE_ID}", "00f067aa0ba902b7")}
    client.get("/orders", headers={"traceparent": "00-broken", "X-Cloud-Trace-Context": f"{other}/5;o=1"})
    assert {(e["logging.googleapis.com/trace"], e["logging.googleapis.com/spanId"]) for e in lines()} == {
        (f"projects/demo-obs/traces/{other}", "0000000000000005")}


def test_malformed_trace_headers_are_ignored(served, lines):
    client = served("obs_http_app.py", "orders")
    response = client.get("/orders", headers={"traceparent": "00-xyz-abc-01", "X-Cloud-Trace-Context": "nope/1;o=7"})
    assert response.status_code == 200
    for entry in lines():
        check_entry(entry)
        assert "logging.googleapis.com/trace" not in entry and "logging.googleapis.com/spanId" not in entry


def test_an_unexpected_error_is_a_json_500_whose_error_id_is_in_the_error_event(served, lines):
    client = served("obs_http_app.py", "orders")
    response = client.get("/boom?id=9", headers={"traceparent": TRACEPARENT})
    body = response.get_json()
    assert response.status_code == 500 and body["error"] == "internal" and len(body["error_id"]) == 16
    assert "Traceback" not in response.get_data(as_text=True) and "declined" not in response.get_data(as_text=True)

    entries = [check_entry(e, trace_id=TRACE_ID) for e in lines()]
    debug = [e for e in entries if e["severity"] == "DEBUG"]
    event = next(e for e in entries if e.get("@type") == ERROR_TYPE)
    end = entries[-1]
    assert [e["message"] for e in debug] == ["loading order"] and debug[0]["debug_buffered"] is True
    assert entries.index(debug[0]) < entries.index(event), "the buffered DEBUG lines come before the error"
    assert event["severity"] == "ERROR" and event["error"]["id"] == body["error_id"]
    assert event["message"].startswith("unhandled ValueError: card declined for customer 42\nTraceback")
    assert 'obs_http_app.py", line' in event["message"] and "monitoring.py" not in event["message"]
    assert event["serviceContext"] == {"service": "orders", "version": "orders-00007-abc"}
    assert event["context"]["reportLocation"]["functionName"] == "orders"
    assert event["context"]["httpRequest"] == {"method": "GET", "url": "http://localhost/boom?id=9",
                                               "userAgent": event["context"]["httpRequest"]["userAgent"],
                                               "remoteIp": "127.0.0.1", "responseStatusCode": 500}
    assert end["severity"] == "ERROR" and end["invocation"]["status"] == "error"
    assert end["invocation"]["error_id"] == body["error_id"] and end["httpRequest"]["status"] == 500


def test_one_bug_keeps_one_fingerprint_and_is_counted(served, lines):
    client = served("obs_http_app.py", "orders")
    client.get("/boom")
    client.get("/boom")
    events = [e["error"] for e in lines() if e.get("@type") == ERROR_TYPE]
    assert events[0]["fingerprint"] == events[1]["fingerprint"] and events[0]["id"] != events[1]["id"]
    assert [e["occurrences"] for e in events] == [1, 2]
    assert errors.counts()[events[0]["fingerprint"]] == 2


def test_bad_json_is_a_json_400_and_abort_keeps_its_status(served, lines):
    client = served("obs_http_app.py", "orders")
    bad = client.post("/json", data="{not json", content_type="application/json")
    missing = client.get("/missing")
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_request"
    assert missing.status_code == 404 and missing.get_json() == {"error": "not_found", "message": "no such order"}
    entries = lines()
    assert not [e for e in entries if e.get("@type")], "a client error is not an error event"
    ends = [e for e in entries if "httpRequest" in e]
    assert [(e["severity"], e["httpRequest"]["status"], e["invocation"]["status"]) for e in ends] == [
        ("WARNING", 400, "success"), ("WARNING", 404, "success")]


def test_an_aborted_response_and_an_applications_own_http_error_keep_their_status(served, lines):
    client = served("obs_http_app.py", "orders")
    forbidden, expired = client.get("/forbidden"), client.get("/expired")
    assert forbidden.status_code == 403 and forbidden.get_json() == {"error": "forbidden", "message": "not your order"}
    assert expired.status_code == 402 and expired.get_json() == {"error": "payment_required",
                                                                 "message": "the plan has expired"}
    entries = lines()
    assert not [e for e in entries if e.get("@type")], "a deliberate 4xx is not an error event"
    assert [e["httpRequest"]["status"] for e in entries if "httpRequest" in e] == [403, 402]


def test_a_recording_loop_writes_at_most_a_hundred_points_and_says_so(served, lines):
    client = served("obs_http_app.py", "orders")
    assert client.get("/loop").status_code == 200
    entries = lines()
    points = [e["gcfkit_metrics"] for e in entries if "gcfkit_metrics" in e]
    assert sum(len(p) for p in points) == 100 and len(entries) < 110
    (end,) = [e for e in entries if "invocation" in e]
    assert end["invocation"]["metric_points_capped"] == 100


def test_a_returned_5xx_fails_the_invocation_and_writes_the_debug_buffer(served, lines):
    client = served("obs_http_app.py", "orders")
    assert client.get("/unavailable").status_code == 503
    entries = lines()
    assert [e["message"] for e in entries if e["severity"] == "DEBUG"] == ["loading order"]
    assert entries[-1]["severity"] == "ERROR" and entries[-1]["invocation"]["status"] == "error"


def test_only_the_first_invocation_is_a_cold_start(served, lines):
    client = served("obs_http_app.py", "orders")
    client.get("/orders")
    client.get("/orders")
    entries = lines()
    first, second = entries[:3], entries[3:]
    assert all(e["cold_start"] for e in first) and not any(e["cold_start"] for e in second)
    assert second[-1]["invocation"]["start"] == "warm" and "instance" not in second[0]
    counts = {tuple(sorted(s["labels"].items())): s["value"]
              for s in registry().metrics["invocations"].snapshot()}
    assert counts == {(("start", "cold"), ("status", "success")): 1, (("start", "warm"), ("status", "success")): 1}


def test_a_first_request_long_after_the_instance_was_ready_counts_as_prewarmed(served, lines):
    # A zero-second window: any first request arriving after the module finished loading is "late", as the
    # first request to an instance kept idle by min-instances is.
    client = served("obs_http_app.py", "orders", GCFKIT_COLD_START_WINDOW_SECONDS="0")
    client.get("/orders")
    start, *_, end = lines()
    assert start["cold_start"] is False and start["instance"]["start"] == "prewarmed"
    assert start["instance"]["seconds_since_ready"] > 0
    assert end["invocation"]["start"] == "prewarmed"
    assert context.instance().first_claimed


def test_concurrent_requests_keep_their_own_keys_and_keys_end_with_the_invocation(served, lines):
    client = served("obs_http_app.py", "orders")
    results = {}

    def call(tenant: str) -> None:
        results[tenant] = client.get(f"/keys?tenant={tenant}", headers={"Function-Execution-Id": f"exec-{tenant}"})

    threads = [threading.Thread(target=call, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert {t: r.status_code for t, r in results.items()} == {"a": 200, "b": 200}
    tenant_lines = [e for e in lines() if e["message"] == "tenant line"]
    assert sorted((e["tenant"], e["logging.googleapis.com/labels"]["execution_id"]) for e in tenant_lines) == [
        ("a", "exec-a"), ("b", "exec-b")]
    client.get("/orders")
    assert not [e for e in lines() if "tenant" in e], "appended keys ended with their invocation"


def test_functions_frameworks_execution_id_wrapper_does_not_rewrite_our_lines(served, lines):
    # LOG_EXECUTION_ID=true (set by the kit and by Cloud Functions) makes functions-framework re-parse stdout
    # lines and overwrite spanId with the decimal span of X-Cloud-Trace-Context; gcfkit writes past it.
    client = served("obs_http_app.py", "orders", LOG_EXECUTION_ID="true")
    client.get("/orders", headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/123;o=1", "Function-Execution-Id": "e-9"})
    entries = lines()
    assert len(entries) == 3
    for entry in entries:
        check_entry(entry, trace_id=TRACE_ID)
        assert entry["logging.googleapis.com/spanId"] == "000000000000007b"
        assert entry["logging.googleapis.com/labels"]["execution_id"] == "e-9"


def test_debug_sampling_logs_a_whole_invocation_at_debug(served, lines):
    client = served("obs_http_app.py", "orders", GCFKIT_LOG_SAMPLE_RATE="1")
    client.get("/orders?id=3")
    debug = [e for e in lines() if e["severity"] == "DEBUG"]
    assert [e["message"] for e in debug] == ["loading order"] and debug[0]["debug_sampled"] is True


def test_log_level_debug_writes_debug_lines_directly(served, lines):
    client = served("obs_http_app.py", "orders", LOG_LEVEL="DEBUG")
    client.get("/orders?id=3")
    debug = [e for e in lines() if e["severity"] == "DEBUG"]
    assert [e["message"] for e in debug] == ["loading order"] and "debug_buffered" not in debug[0]


def test_metrics_export_off_writes_no_metric_fields(served, lines):
    client = served("obs_http_app.py", "orders", GCFKIT_METRICS_EXPORT="off")
    client.get("/orders")
    assert not [e for e in lines() if "gcfkit_metrics" in e]


def test_health_is_answered_without_a_health_registry(served, lines):
    client = served("obs_http_app.py", "orders")
    response = client.get("/health")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "healthy" and body["service"] == "orders" and body["revision"] == "orders-00007-abc"
    assert lines() == [], "health probes are not invocations"


def _cloud_event(name: str, **extensions: str) -> str:
    return json.dumps({"specversion": "1.0", "type": "google.cloud.storage.object.v1.finalized",
                       "source": "//storage.googleapis.com/projects/_/buckets/uploads", "id": f"evt-{name}",
                       "subject": f"objects/{name}", "data": {"name": name}, **extensions})


def test_a_cloud_event_is_logged_with_its_attributes_and_trace(served, lines):
    client = served("obs_event_app.py", "on_upload", signature_type="cloudevent")
    response = client.post("/", data=_cloud_event("a.csv", traceparent=TRACEPARENT),
                           content_type="application/cloudevents+json")
    assert response.status_code == 200
    start, user, end = [check_entry(e, trace_id=TRACE_ID) for e in lines()]
    assert start["message"] == "event google.cloud.storage.object.v1.finalized started"
    assert start["event"]["id"] == "evt-a.csv" and start["event"]["subject"] == "objects/a.csv"
    assert user["name"] == "a.csv" and start["logging.googleapis.com/labels"]["execution_id"]
    assert end["invocation"]["status"] == "success" and end["event"]["type"].endswith("finalized")


def test_a_failed_cloud_event_is_a_500_so_the_trigger_retries(served, lines):
    client = served("obs_event_app.py", "on_upload", signature_type="cloudevent")
    response = client.post("/", data=_cloud_event("poison.csv"), content_type="application/cloudevents+json")
    text = response.get_data(as_text=True)
    assert response.status_code == 500 and "poison" not in text and "Traceback" not in text
    entries = [check_entry(e) for e in lines()]
    event = next(e for e in entries if e.get("@type") == ERROR_TYPE)
    assert event["error"]["id"] in text and "RuntimeError: cannot parse poison.csv" in event["message"]
    assert entries[-1]["invocation"]["status"] == "error" and entries[-1]["event"]["id"] == "evt-poison.csv"


def test_log_event_puts_the_redacted_request_or_event_on_the_start_line(served, lines):
    client = served("obs_http_app.py", "orders", GCFKIT_LOG_EVENT="true")
    client.get("/orders?id=5&api_key=k", headers={"Authorization": "Bearer secret", "X-Request-Source": "cli"})
    start = lines()[0]
    headers = start["request"]["headers"]
    assert headers["Authorization"] == "[REDACTED]" and headers["X-Request-Source"] == "cli"
    assert start["request"]["query"] == {"id": ["5"], "api_key": "[REDACTED]"}
    assert "Bearer" not in json.dumps(start)

    events = served("obs_event_app.py", "on_upload", signature_type="cloudevent", GCFKIT_LOG_EVENT="true")
    events.post("/", data=json.dumps({"specversion": "1.0", "type": "t", "source": "s", "id": "e1",
                                      "data": {"name": "a.csv", "token": "t0k3n"}}),
                content_type="application/cloudevents+json")
    start = lines()[0]
    assert start["event_data"] == {"name": "a.csv", "token": "[REDACTED]"}
