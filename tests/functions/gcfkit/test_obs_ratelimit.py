"""The log rate limiter: token bucket per (severity, template), LRU-bounded memory."""

from __future__ import annotations

import tracemalloc

from gcfkit.logging import LogRateLimiter


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    limiter = LogRateLimiter(per_second=2, burst=3, clock=clock)
    assert [limiter.allow("INFO", "t") for _ in range(5)] == [True, True, True, False, False]
    clock.now += 0.5  # one token back
    assert [limiter.allow("INFO", "t") for _ in range(2)] == [True, False]
    clock.now += 100  # never more than the burst
    assert [limiter.allow("INFO", "t") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("ERROR", "t") and limiter.allow("INFO", "other"), "keys are (severity, template)"


def test_one_summary_per_window_with_the_noisiest_templates_first():
    clock = Clock()
    limiter = LogRateLimiter(per_second=0.001, burst=1, window_seconds=60, clock=clock)
    for template, n in (("a %s", 3), ("b %s", 6)):
        for _ in range(n):
            limiter.allow("WARNING", template)
    assert limiter.summary_due() is None, "the window has not passed"
    clock.now = 61
    summary = limiter.summary_due()
    assert summary["suppressed"] == 2 + 5 and summary["templates_total"] == 2
    assert [t["template"] for t in summary["templates"]] == ["b %s", "a %s"]
    assert limiter.summary_due() is None, "counts start again after a summary"


def test_a_million_distinct_keys_stay_within_max_keys_and_bounded_memory():
    clock = Clock()
    limiter = LogRateLimiter(per_second=0.001, burst=1, max_keys=10_000, clock=clock)

    def feed(first: int, last: int) -> None:
        for i in range(first, last):  # every key twice: the second is suppressed and counted
            limiter.allow("INFO", f"user {i // 2} logged in")  # f-string messages: each user a new template

    feed(0, 1_800_000)  # 900,000 distinct keys: long past the bound
    tracemalloc.start()
    try:
        feed(1_800_000, 1_900_000)
        first, _ = tracemalloc.get_traced_memory()  # what the structures hold after 50,000 more keys...
        feed(1_900_000, 2_000_000)  # ...and after the last 50,000 of the million: the same
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(limiter) == 10_000 and len(limiter._suppressed) == 10_000
    assert abs(second - first) < 256 * 1024, f"memory grew by {(second - first) / 1e6:.1f} MB at steady state"
    assert limiter.suppressed_total == 1_000_000, "every suppressed line is counted, tracked key or not"
    assert limiter.allow("INFO", "user 999999 logged in") is False, "a recent key is still tracked"
    assert limiter.allow("INFO", "user 0 logged in") is True, "the least recently used key was evicted"
    clock.now += 60  # the window has passed: one summary of it, its template list bounded too
    summary = limiter.summary_due()
    assert summary["suppressed"] == 1_000_001 and summary["templates_total"] == 10_000
    assert len(summary["templates"]) == 20 and summary["keys_tracked"] == 10_000
    assert summary["keys_evicted"] > 990_000
