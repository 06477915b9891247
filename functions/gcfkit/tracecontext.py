"""Trace context from the two headers Google's front ends send: W3C `traceparent` and `X-Cloud-Trace-Context`.

Both carry a 32-hex trace id; the span id is 16 hex in `traceparent` but *decimal* in
`X-Cloud-Trace-Context` (`TRACE/SPAN;o=1`), and Cloud Logging's `spanId` wants 16 hex, so it is converted.
A malformed header is ignored (the invocation simply has no trace), never an error: headers come from
clients. `from_headers` is the one place that decides which header wins (with_monitoring and the
framework's error answers call it). The regular expressions are compiled on first use (this module is
imported on cold starts).
"""

from __future__ import annotations

_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_MAX_SPAN = (1 << 64) - 1
_patterns = None


def _compiled():
    global _patterns
    if _patterns is None:
        import re

        _patterns = (
            # version-trace-span-flags; versions after 00 may append "-..." fields (W3C Trace Context §3.2).
            re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?").fullmatch,
            re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?").fullmatch,
        )
    return _patterns


def parse_traceparent(header: str | None) -> tuple[str, str, bool] | None:
    """`00-<trace 32 hex>-<span 16 hex>-<flags 2 hex>` -> (trace_id, span_id, sampled), or None if malformed."""
    if not header:
        return None
    match = (_patterns or _compiled())[0](header.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    # Version ff is forbidden; version 00 has exactly four fields; all-zero ids are invalid.
    if version == "ff" or (rest and version == "00") or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags[1] in "13579bdf"  # the low bit of the flags: sampled


def parse_cloud_trace_context(header: str | None) -> tuple[str, str | None, bool] | None:
    """`TRACE_ID[/SPAN_ID][;o=OPTIONS]` -> (trace_id, span_id as 16 hex or None, sampled), or None if malformed."""
    if not header:
        return None
    match = (_patterns or _compiled())[1](header.strip())
    if match is None:
        return None
    trace_id, span, options = match.groups()
    trace_id = trace_id.lower()
    if trace_id == _ZERO_TRACE:
        return None
    span_id = None
    if span is not None:
        number = int(span)
        if number > _MAX_SPAN:
            return None
        span_id = f"{number:016x}" if number else None  # span 0 means "no span"
    return trace_id, span_id, options == "1"


def from_headers(traceparent: str | None, cloud_trace_context: str | None) -> tuple[str, str | None, bool] | None:
    """The trace of a request: the W3C header wins when valid (it is the standard one); a missing or malformed
    one falls back to Google's. (trace_id, span_id or None, sampled), or None when neither is usable."""
    return parse_traceparent(traceparent) or parse_cloud_trace_context(cloud_trace_context)
