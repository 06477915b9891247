"""Trace context headers: W3C traceparent and Google's X-Cloud-Trace-Context (decimal span -> 16 hex)."""

from __future__ import annotations

import pytest
from gcfkit.tracecontext import from_headers, parse_cloud_trace_context, parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_traceparent():
    assert parse_traceparent(f"00-{TRACE}-00f067aa0ba902b7-01") == (TRACE, "00f067aa0ba902b7", True)
    assert parse_traceparent(f"00-{TRACE}-00f067aa0ba902b7-00") == (TRACE, "00f067aa0ba902b7", False)
    assert parse_traceparent(f"00-{TRACE}-00f067aa0ba902b7-03") == (TRACE, "00f067aa0ba902b7", True)
    # A later version may append fields; version 00 may not.
    assert parse_traceparent(f"01-{TRACE}-00f067aa0ba902b7-01-future") == (TRACE, "00f067aa0ba902b7", True)
    assert parse_traceparent(f" 00-{TRACE}-00f067aa0ba902b7-01\t") == (TRACE, "00f067aa0ba902b7", True)


@pytest.mark.parametrize("header", [
    None, "", "garbage", f"00-{TRACE}-00f067aa0ba902b7", f"00-{TRACE.upper()}-00f067aa0ba902b7-01",
    f"ff-{TRACE}-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"00-{TRACE}-{'0' * 16}-01",
    f"00-{TRACE}-00f067aa0ba902b7-01-extra", f"00-{TRACE[:-1]}g-00f067aa0ba902b7-01",
    f"00-{TRACE}-00f067aa0ba902b-01", f"00_{TRACE}-00f067aa0ba902b7-01", f"00-{TRACE}-00f067aa0ba902b7-0x",
    f"01-{TRACE}-00f067aa0ba902b7-01x", f"01-{TRACE}-00f067aa0ba902b7-01-a b", f"00-{TRACE}-00f067aa0ba902b7-011",
])
def test_malformed_traceparent_is_ignored(header):
    assert parse_traceparent(header) is None


def test_cloud_trace_context_span_is_decimal_and_becomes_16_hex():
    assert parse_cloud_trace_context(f"{TRACE}/123;o=1") == (TRACE, "000000000000007b", True)
    assert parse_cloud_trace_context(f"{TRACE}/18446744073709551615;o=0") == (TRACE, "ffffffffffffffff", False)
    assert parse_cloud_trace_context(f"{TRACE}/1") == (TRACE, "0000000000000001", False)
    assert parse_cloud_trace_context(TRACE) == (TRACE, None, False)
    assert parse_cloud_trace_context(TRACE.upper() + "/0;o=1") == (TRACE, None, True), "span 0 means no span"


@pytest.mark.parametrize("header", [
    None, "", "nope", f"{TRACE}/abc;o=1", f"{TRACE}/-5", f"{TRACE}/18446744073709551616",
    f"{TRACE}/1;o=2", f"{TRACE}/1;x=1", f"{'0' * 32}/1;o=1", TRACE[:-1], f"{TRACE}/1 ;o=1", f"{TRACE}/١٢٣",
])
def test_malformed_cloud_trace_context_is_ignored(header):
    assert parse_cloud_trace_context(header) is None


def test_traceparent_wins_and_a_bad_one_falls_back():
    other = "a" * 32
    assert from_headers(f"00-{TRACE}-00f067aa0ba902b7-01", f"{other}/5;o=1")[0] == TRACE
    assert from_headers("00-broken", f"{other}/5;o=1") == (other, "0000000000000005", True)
    assert from_headers(None, None) is None
