"""Log rate limiting: a token bucket per (level, message template), bounded by LRU eviction.

A line is keyed by its severity and its *template* (the format string before `%` arguments), so
`logger.warning("retrying %s", url)` in a hot loop is one key however many URLs it sees. Each key may
emit `burst` lines at once and `per_second` on average after that. Suppressed lines are counted, and
one summary line per window reports how many were dropped and for which templates. At most
`max_keys` buckets are kept; the least recently used is evicted (so a flood of distinct templates,
e.g. messages formatted with f-strings, costs bounded memory — a forgotten key merely starts with a
full bucket again).
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import time
from collections import OrderedDict

_TOP_TEMPLATES = 20  # templates named in a summary line


class LogRateLimiter:
    def __init__(self, per_second: float, burst: int, max_keys: int = 10_000, window_seconds: float = 60.0,
                 clock=time.monotonic):
        self.per_second = float(per_second)
        self.burst = float(burst)
        self.max_keys = max_keys
        self.window_seconds = window_seconds
        self.clock = clock
        self._buckets: OrderedDict[tuple, list] = OrderedDict()  # key -> [tokens, last refill]
        self._suppressed: dict[tuple, int] = {}
        self.suppressed_total = 0  # since the last summary; a summary is due once the window has passed
        self._evicted = 0
        self._window_started = clock()
        self._lock = _thread.allocate_lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, severity: str, template: str) -> bool:
        # No lock on the hot path: each OrderedDict operation is atomic under the GIL, and two threads
        # racing on one bucket can at worst let one extra line through.
        key = (severity, template)
        now = self.clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            with self._lock:  # eviction + insertion together, so the size bound holds under threads
                while len(buckets) >= self.max_keys:
                    buckets.popitem(last=False)
                    self._evicted += 1
                buckets[key] = [self.burst - 1.0, now]
            return True
        try:  # noqa: SIM105 - cheaper than contextlib.suppress on this hot path
            buckets.move_to_end(key)
        except KeyError:  # evicted by another thread a moment ago
            pass
        tokens = bucket[0] + (now - bucket[1]) * self.per_second
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        with self._lock:
            self.suppressed_total += 1
            if key in self._suppressed or len(self._suppressed) < self.max_keys:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
        return False

    def summary_due(self) -> dict | None:
        """When a window has passed and lines were suppressed in it: the summary's fields (and a new window)."""
        now = self.clock()
        if now - self._window_started < self.window_seconds or not self.suppressed_total:
            return None
        with self._lock:
            if not self.suppressed_total:
                return None
            top = sorted(self._suppressed.items(), key=lambda item: -item[1])[:_TOP_TEMPLATES]
            summary = {
                "suppressed": self.suppressed_total,
                "window_seconds": round(now - self._window_started, 3),
                "templates": [{"severity": s, "template": t, "suppressed": n} for (s, t), n in top],
                "templates_total": len(self._suppressed),
                "keys_tracked": len(self._buckets),
                "keys_evicted": self._evicted,
            }
            self._suppressed = {}
            self.suppressed_total = 0
            self._window_started = now
        return summary
