"""Assertions shared by the observability tests (imported by them; not a test module)."""

from __future__ import annotations

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
BASE_ENV = {"K_SERVICE": "orders", "K_REVISION": "orders-00007-abc", "GOOGLE_CLOUD_PROJECT": "demo-obs"}


SEVERITIES = {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}


def check_entry(entry: dict, *, invocation: bool = True, trace_id: str | None = None) -> dict:
    """Assert that a parsed line is a well-formed Cloud Logging structured entry (returns it)."""
    import re

    assert entry["severity"] in SEVERITIES, entry
    assert isinstance(entry["message"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["time"]), entry["time"]
    labels = entry["logging.googleapis.com/labels"]
    assert all(isinstance(v, str) for v in labels.values()), labels
    assert labels["function"] == "orders" and labels["revision"] == "orders-00007-abc", labels
    if invocation:
        assert labels["execution_id"], labels
        assert isinstance(entry["cold_start"], bool)
    if trace_id:
        assert entry["logging.googleapis.com/trace"] == f"projects/demo-obs/traces/{trace_id}"
        assert re.fullmatch(r"[0-9a-f]{16}", entry["logging.googleapis.com/spanId"])
        assert isinstance(entry["logging.googleapis.com/trace_sampled"], bool)
    source = entry.get("logging.googleapis.com/sourceLocation")
    if source is not None:
        assert source["file"] and source["function"] and source["line"].isdigit(), source
    return entry
