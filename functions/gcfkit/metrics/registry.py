"""Counters, gauges and histograms with labels, and the cap on how many label sets each metric may have.

Every metric keeps, per label set (a *series*), its value since the instance started: a counter's total,
a gauge's last value, a histogram's QuantileSketch (so p50/p95/p99 come from bounded memory). The Cloud
Monitoring exporter reads those. With log export, each recording is also remembered as a *point* of the
current invocation, which with_monitoring writes on the invocation's last line (see `logexport`).

Cardinality: a metric accepts `max_series` label sets; recordings with further label sets are folded into
one series whose label values are all "other", and counted in the `metric_series_folded` counter, so a
label fed with user ids cannot blow up memory or the monitoring bill.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start
import time
from abc import ABC, abstractmethod  # abc is loaded at interpreter start: free

from gcfkit import context as _context
from gcfkit.metrics.sketch import QuantileSketch

OTHER = "other"
FOLDED_METRIC = "metric_series_folded"
# Log-export points kept for the log: each takes a line beyond the first of each metric, so an invocation
# keeps at most MAX_INVOCATION_POINTS (a timer in a loop of 10,000 reads would write 10,000 lines); the
# rest still count in the in-process totals and percentiles. Outside invocations, until flushed.
MAX_INVOCATION_POINTS = 100
MAX_PENDING_POINTS = 10_000
_MAX_LABEL_VALUE = 256


def _number(kind: str, name: str, value) -> float:
    if type(value) is bool or not isinstance(value, (int, float)) or value - value != 0:  # NaN and infinities
        raise ValueError(f"{kind} {name!r}: value must be a finite number, got {value!r}")
    if type(value) is int or type(value) is float:
        return value
    # A subclass (numpy.float64, an IntEnum) becomes the plain number: its repr is not JSON.
    return int(value) if isinstance(value, int) else float(value)


def _check_name(kind: str, name: str) -> str:
    # Lower-case snake case: the same name is a log-based metric field path and a Cloud Monitoring type.
    if not (isinstance(name, str) and 0 < len(name) <= 63 and name[0].isalpha() and name.isascii()
            and name.replace("_", "a").isalnum() and name.islower()):
        raise ValueError(f"{kind} name {name!r}: use lower-case letters, digits and '_', starting with a letter "
                         "(at most 63 characters), e.g. 'orders_created'")
    return name


class Series:
    __slots__ = ("dirty", "exported_at", "labels", "log_head", "metric", "sketch", "started", "value")

    def __init__(self, metric: Metric, labels: dict, sketch: QuantileSketch | None):
        self.metric = metric
        self.labels = labels
        self.value = 0
        self.sketch = sketch
        self.started = time.time()  # fixed start of the cumulative interval in Cloud Monitoring
        self.dirty = False          # recorded since the last export
        self.exported_at: float | None = None  # end time of the last point sent to Cloud Monitoring
        self.log_head: str | None = None       # this series' log-export JSON up to the value (logexport)


class Metric(ABC):
    kind = ""

    def __init__(self, registry: Registry, name: str, unit: str, description: str, max_series: int):
        self.registry = registry
        self.name = _check_name(self.kind, name)
        self.unit = unit
        self.description = description
        self.max_series = max_series
        self.series: dict[tuple, Series] = {}
        self._fast: dict[tuple, Series] = {}  # labels exactly as passed (order kept, values raw) -> series
        self.folded = 0
        self._lock = _thread.allocate_lock()

    def series_for(self, labels: dict) -> Series:
        """The series of a label set (default labels added; folded into "other" past the cap)."""
        try:
            key = tuple(labels.items()) if labels else ()
            series = self._fast.get(key)
        except TypeError:  # an unhashable label value: the slow path turns it into a string
            key, series = None, None
        if series is not None:
            return series
        series, folded = self._resolve(labels)
        if folded:
            self.folded += 1
            if self.name != FOLDED_METRIC:
                self.registry.counter(FOLDED_METRIC, description="recordings folded into the 'other' series "
                                      "because the metric hit its label-set cap").inc(metric=self.name)
        elif key is not None and len(self._fast) < 4 * self.max_series:
            self._fast[key] = series
        return series

    def _resolve(self, labels: dict) -> tuple[Series, bool]:
        defaults = self.registry.default_labels
        if defaults:
            labels = {**defaults, **labels}
        clean = {}
        for name, value in labels.items():
            _check_name("label", name)
            clean[name] = value if type(value) is str and len(value) <= _MAX_LABEL_VALUE else \
                str(value)[:_MAX_LABEL_VALUE]
        key = tuple(sorted(clean.items()))
        with self._lock:
            series = self.series.get(key)
            if series is not None:
                return series, False
            folded = len(self.series) >= self.max_series
            if folded:
                key = tuple((name, OTHER) for name, _ in key)
                series = self.series.get(key)
            if series is None:
                series = self.series[key] = Series(self, dict(key), self._new_sketch())
        return series, folded

    def forget_fast_paths(self) -> None:
        self._fast = {}

    def _new_sketch(self) -> QuantileSketch | None:
        return None

    def _point(self, series: Series, value: float) -> None:
        if self.registry.keep_points:
            invocation = _context.current()
            if invocation is None:
                points, limit = self.registry.pending, MAX_PENDING_POINTS
            else:
                points, limit = invocation.metric_points, MAX_INVOCATION_POINTS
                if points is None:
                    points = invocation.metric_points = []
            if len(points) < limit:
                points.append((series, value))
            else:
                self.registry.dropped_points += 1

    @abstractmethod
    def snapshot(self) -> list[dict]:
        """Every series of this metric as export records (each kind knows its own shape)."""


class Counter(Metric):
    """Counts events. `inc()` takes whole numbers >= 0; use a histogram for amounts."""

    kind = "counter"

    def inc(self, value: int = 1, **labels) -> None:
        self.inc_series(self.series_for(labels), value)

    def inc_series(self, series: Series, value: int = 1, point: bool = True) -> None:
        if type(value) is not int or value < 0:
            raise ValueError(f"counter {self.name!r}: increment must be an int >= 0, got {value!r} "
                             "(counters count events; observe amounts with a histogram)")
        with self._lock:
            series.value += value
            series.dirty = True
        if point:
            self._point(series, value)

    def snapshot(self) -> list[dict]:
        return [{"labels": s.labels, "value": s.value} for s in list(self.series.values())]


class Gauge(Metric):
    """A value that goes up and down (queue depth, cache size); the last `set()` wins."""

    kind = "gauge"

    def set(self, value: float, **labels) -> None:
        self.set_series(self.series_for(labels), value)

    def set_series(self, series: Series, value: float) -> None:
        series.value = value = _number(self.kind, self.name, value)
        series.dirty = True
        self._point(series, value)

    def snapshot(self) -> list[dict]:
        return [{"labels": s.labels, "value": s.value} for s in list(self.series.values())]


class Histogram(Metric):
    """A distribution of values (latency, sizes), with p50/p95/p99 within 1 % relative error."""

    kind = "histogram"

    def _new_sketch(self) -> QuantileSketch:
        return QuantileSketch(self.registry.relative_accuracy)

    def observe(self, value: float, **labels) -> None:
        self.observe_series(self.series_for(labels), value)

    def observe_series(self, series: Series, value: float, point: bool = True) -> None:
        if (type(value) is not float and type(value) is not int) or value - value != 0:
            value = _number(self.kind, self.name, value)  # raises unless a finite int/float (subclass)
        with self._lock:
            series.sketch.add(value)
            series.dirty = True
        if point:
            self._point(series, value)

    def time(self, **labels) -> Timer:
        """Context manager / decorator observing the elapsed milliseconds of a block or call."""
        return Timer(self, labels)

    def snapshot(self) -> list[dict]:
        return [{"labels": s.labels, **s.sketch.summary()} for s in list(self.series.values())]


class Timer:
    """Times a block (`with`) or every call of a function (decorator), in milliseconds.

    The duration goes to the histogram and, inside an invocation, to its segments: the invocation's last
    log line names the slowest ones."""

    __slots__ = ("histogram", "labels", "started")

    def __init__(self, histogram: Histogram, labels: dict):
        self.histogram = histogram
        self.labels = labels
        self.started = 0.0

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        record_segment(self.histogram, round((time.perf_counter() - self.started) * 1000.0, 3), self.labels)

    def __call__(self, fn):
        import functools

        histogram, labels = self.histogram, self.labels

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                record_segment(histogram, round((time.perf_counter() - started) * 1000.0, 3), labels)

        return timed


def record_segment(histogram: Histogram, elapsed_ms: float, labels: dict) -> None:
    histogram.observe(elapsed_ms, **labels)
    invocation = _context.current()
    if invocation is not None:
        segments = invocation.segments
        if segments is None:
            segments = invocation.segments = {}
        total = segments.get(histogram.name)
        if total is None:
            segments[histogram.name] = [elapsed_ms, 1]
        else:
            total[0] += elapsed_ms
            total[1] += 1


class Registry:
    """All metrics of the process, by name. One per process (`gcfkit.metrics.REGISTRY`); tests make their own."""

    def __init__(self, max_series: int = 100, keep_points: bool = True, relative_accuracy: float = 0.01):
        self.max_series = max_series
        self.keep_points = keep_points  # log export: remember each recording for the invocation's log line
        self.relative_accuracy = relative_accuracy
        self.metrics: dict[str, Metric] = {}
        self.default_labels: dict = {}
        self.pending: list = []  # points recorded outside any invocation, written by Metrics.flush()
        self.dropped_points = 0
        self._lock = _thread.allocate_lock()

    def _get(self, cls: type[Metric], name: str, unit: str, description: str, max_series: int | None) -> Metric:
        metric = self.metrics.get(name)
        if metric is None:
            with self._lock:
                metric = self.metrics.get(name)
                if metric is None:
                    metric = self.metrics[name] = cls(self, name, unit, description, max_series or self.max_series)
        if type(metric) is not cls:
            raise ValueError(f"metric {name!r} is already a {metric.kind}; it cannot also be a {cls.kind} "
                             "(pick another name)")
        return metric

    def counter(self, name: str, unit: str = "1", description: str = "", max_series: int | None = None) -> Counter:
        return self._get(Counter, name, unit, description, max_series)  # type: ignore[return-value]

    def gauge(self, name: str, unit: str = "1", description: str = "", max_series: int | None = None) -> Gauge:
        return self._get(Gauge, name, unit, description, max_series)  # type: ignore[return-value]

    def histogram(self, name: str, unit: str = "ms", description: str = "",
                  max_series: int | None = None) -> Histogram:
        return self._get(Histogram, name, unit, description, max_series)  # type: ignore[return-value]

    def set_default_labels(self, **labels) -> None:
        self.default_labels.update({k: str(v) for k, v in labels.items()})
        for metric in list(self.metrics.values()):
            metric.forget_fast_paths()

    def clear_default_labels(self) -> None:
        self.default_labels.clear()
        for metric in list(self.metrics.values()):
            metric.forget_fast_paths()

    def take_pending(self) -> list:
        points, self.pending = self.pending, []
        return points
