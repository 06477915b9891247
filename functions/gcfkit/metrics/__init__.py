"""Metrics: counters, gauges, histograms and timers with labels, exported to logs or Cloud Monitoring.

    from gcfkit.metrics import Metrics
    metrics = Metrics()
    metrics.increment("orders_created", plan="pro")
    metrics.observe("payment_ms", 41.7, provider="stripe")
    with metrics.timer("firestore_read_ms"):
        ...

Where the numbers go is chosen by `GCFKIT_METRICS_EXPORT`: `log` (default; structured log fields that
log-based metrics read, see `logexport`), `monitoring` (Cloud Monitoring custom metrics, see
`cloud_monitoring`) or `off`. All `Metrics` objects of a process share one registry, as all Powertools
`Metrics` instances share their metric set.
"""

from __future__ import annotations

import _thread  # the C lock: `threading` costs ~2 ms of import on a cold start

from gcfkit import settings as _settings
from gcfkit.metrics.registry import Counter, Gauge, Histogram, Registry, Timer

__all__ = ["Counter", "Gauge", "Histogram", "Metrics", "Registry", "Timer", "exporter", "registry"]

_lock = _thread.RLock()  # exporter() creates the registry while holding it
_registry: Registry | None = None
_exporter = None


def registry() -> Registry:
    """The process-wide registry (created from the settings on first use)."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                config = _settings.current()
                _registry = Registry(max_series=config.metrics_max_series, keep_points=config.metrics_export == "log")
    return _registry


def exporter():
    """The Cloud Monitoring exporter when GCFKIT_METRICS_EXPORT=monitoring, else None."""
    global _exporter
    if _exporter is None and _settings.current().metrics_export == "monitoring":
        from gcfkit.metrics.cloud_monitoring import CloudMonitoringExporter

        with _lock:
            if _exporter is None:
                _exporter = CloudMonitoringExporter(registry())
    return _exporter


def reset() -> None:
    """Forget every metric and the exporter (tests; the settings are read again on next use)."""
    global _registry, _exporter
    with _lock:
        _registry = None
        _exporter = None


class Metrics:
    """The metrics API. `Metrics(team="payments")` also sets default labels for every recording."""

    def __init__(self, registry_: Registry | None = None, **default_labels: str):
        self._registry = registry_
        self._shortcuts: dict = {}  # name -> metric, for increment() / observe() on the request path
        if default_labels:
            self.set_default_labels(**default_labels)

    @property
    def registry(self) -> Registry:
        return self._registry or _registry or registry()

    def counter(self, name: str, unit: str = "1", description: str = "", max_series: int | None = None) -> Counter:
        return self.registry.counter(name, unit, description, max_series)

    def gauge(self, name: str, unit: str = "1", description: str = "", max_series: int | None = None) -> Gauge:
        return self.registry.gauge(name, unit, description, max_series)

    def histogram(self, name: str, unit: str = "ms", description: str = "",
                  max_series: int | None = None) -> Histogram:
        return self.registry.histogram(name, unit, description, max_series)

    def increment(self, name: str, value: int = 1, **labels: str) -> None:
        metric = self._shortcuts.get(name)
        # `self._registry or _registry` is the registry property without its call (this runs per recording).
        if metric is None or metric.registry is not (self._registry or _registry) or type(metric) is not Counter:
            metric = self._shortcuts[name] = self.registry.counter(name)
        metric.inc_series(metric.series_for(labels), value)

    def set_gauge(self, name: str, value: float, **labels: str) -> None:
        self.registry.gauge(name).set(value, **labels)

    def observe(self, name: str, value: float, unit: str = "ms", **labels: str) -> None:
        metric = self._shortcuts.get(name)
        if metric is None or metric.registry is not (self._registry or _registry) or type(metric) is not Histogram:
            metric = self._shortcuts[name] = self.registry.histogram(name, unit)
        metric.observe_series(metric.series_for(labels), value)

    def timer(self, name: str, **labels: str) -> Timer:
        """`with metrics.timer("db_read_ms"):` or `@metrics.timer("db_read_ms")`: milliseconds to a histogram."""
        return self.registry.histogram(name, "ms").time(**labels)

    def percentiles(self, name: str, **labels: str) -> dict:
        """count, sum, min, max, p50, p95, p99 of a histogram's series (since the instance started)."""
        metric = self.registry.metrics.get(name)
        if not isinstance(metric, Histogram):
            raise KeyError(f"no histogram named {name!r} has been recorded")
        wanted = {**self.registry.default_labels, **labels}
        for series in list(metric.series.values()):
            if series.labels == {k: str(v) for k, v in wanted.items()}:
                return series.sketch.summary()
        return {"count": 0}

    def set_default_labels(self, **labels: str) -> None:
        self.registry.set_default_labels(**labels)

    def clear_default_labels(self) -> None:
        self.registry.clear_default_labels()

    def snapshot(self) -> dict:
        """Every metric's series and values, e.g. for a test or a debug endpoint."""
        return {name: {"kind": m.kind, "unit": m.unit, "folded": m.folded, "series": m.snapshot()}
                for name, m in list(self.registry.metrics.items())}

    def flush(self, logger=None) -> None:
        """Write points recorded outside any invocation (log export) and export if a window is due
        (Cloud Monitoring). with_monitoring does this at the end of each invocation."""
        from gcfkit.metrics.logexport import FIELD, render_points

        points = self.registry.take_pending()
        if points:
            if logger is None:
                from gcfkit.logging import Logger

                logger = Logger(rate_limiter=False)
            for members in render_points(points):
                logger.emit("INFO", "metrics", f',"{FIELD}":{members}')
        active = exporter()
        if active is not None:
            active.maybe_export()
