"""Export to Cloud Monitoring custom metrics with `MetricServiceClient.create_time_series`.

Selected by `GCFKIT_METRICS_EXPORT=monitoring`. The rules of the API, and how they are honoured:

* at most 200 time series per request -> series are sent in chunks of 200;
* at most one point per time series every 10 s -> exports happen once per window
  (`GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS`, default 60, never below 10), only for series recorded since
  their last export, and never within 10 s of that series' previous point;
* cumulative metrics keep a fixed start time -> counters (INT64) and histograms (DISTRIBUTION) are
  CUMULATIVE from the moment their series was created; gauges are GAUGE (DOUBLE);
* instances must not write the same series -> every series carries the monitored resource `generic_task`
  with `task_id` = this instance's random id (`GCFKIT_INSTANCE_ID` to override), `job` = the function.

A request pays for an export only when a window is due (`maybe_export` is a clock comparison otherwise),
and only one thread exports at a time. Failures never reach the invocation: transient errors are retried
up to `GCFKIT_METRICS_EXPORT_ATTEMPTS` calls in all (each `GCFKIT_METRICS_EXPORT_TIMEOUT_SECONDS` at
most), then the points are dropped, logged and counted (`metrics_export_failures`,
`metrics_export_dropped_points`) and the chunks left wait for the next window; a cumulative series' next
point carries its total anyway. `google.cloud.monitoring_v3` (~0.7 s to import) is imported on the first export.
"""

from __future__ import annotations

import math
import threading
import time

from gcfkit import context as _context
from gcfkit import settings as _settings

MAX_SERIES_PER_REQUEST = 200
MIN_SECONDS_BETWEEN_POINTS = 10.0
# Distribution buckets: exponential, aligned on the sketch's buckets (growth = gamma**8, ~17 % wide),
# from 0.001 to ~1e10 of the histogram's unit; values below go to the underflow bucket.
BUCKET_SCALE = 0.001
BUCKET_SKETCH_STEPS = 8
BUCKET_COUNT = 180
_RETRYABLE = ("ServiceUnavailable", "DeadlineExceeded", "InternalServerError", "TooManyRequests",
              "ResourceExhausted", "Aborted", "Unknown", "RetryError")


def _timestamp(seconds: float) -> dict:
    whole = math.floor(seconds)
    return {"seconds": whole, "nanos": int((seconds - whole) * 1e9)}


class CloudMonitoringExporter:
    def __init__(self, registry, config: _settings.Settings | None = None, client=None, clock=time.time,
                 sleep=time.sleep):
        config = config or _settings.current()
        self.registry = registry
        self.project = config.project
        self.namespace = config.metrics_namespace
        self.interval = max(config.metrics_interval_seconds, MIN_SECONDS_BETWEEN_POINTS)
        self.timeout = config.metrics_export_timeout_seconds
        self.attempts = config.metrics_export_attempts
        self.endpoint = config.monitoring_endpoint
        instance = _context.instance()
        self.resource = {"type": "generic_task", "labels": {
            "project_id": config.project or "", "location": config.region or "global",
            "namespace": "cloud-functions", "job": instance.service, "task_id": instance.instance_id}}
        self.clock = clock
        self.sleep = sleep
        self.next_due = clock() + self.interval
        self._client = client
        self._busy = threading.Lock()
        self.requests = 0
        self.failures = 0
        self._log = None

    # --- scheduling -------------------------------------------------------------------------------------
    def maybe_export(self, now: float | None = None) -> bool:
        """Export if a window is due. Cheap otherwise. Returns whether an export ran."""
        now = self.clock() if now is None else now
        if now < self.next_due or not self._busy.acquire(blocking=False):
            return False
        try:
            self.next_due = now + self.interval
            self.export(now)
        except Exception as exc:  # an exporter bug must not fail the invocation either
            self._failed("internal", f"{type(exc).__name__}: {exc}", 0)
        finally:
            self._busy.release()
        return True

    # --- building time series ---------------------------------------------------------------------------
    def collect(self, now: float) -> list[tuple]:
        """(metric, series, time series dict) for every series due for a point."""
        due = []
        for metric in list(self.registry.metrics.values()):
            for series in list(metric.series.values()):
                last = series.exported_at
                if not series.dirty or (last is not None and now - last < MIN_SECONDS_BETWEEN_POINTS):
                    continue
                with metric._lock:
                    point = self._point(metric, series, now)
                    series.dirty = False
                due.append((metric, series, point))
        return due

    def _point(self, metric, series, now: float) -> dict:
        end = _timestamp(now)
        if metric.kind == "gauge":
            kind, value_type, value = "GAUGE", "DOUBLE", {"double_value": float(series.value)}
            interval = {"end_time": end}
        else:
            # A cumulative interval must not be empty, and its start never moves once sent: a series created
            # within the last millisecond starts a millisecond earlier, for this point and every later one.
            if series.started > now - 0.001:
                series.started = now - 0.001
            start = series.started
            interval = {"start_time": _timestamp(start), "end_time": end}
            if metric.kind == "counter":
                kind, value_type, value = "CUMULATIVE", "INT64", {"int64_value": series.value}
            else:
                kind, value_type, value = "CUMULATIVE", "DISTRIBUTION", {"distribution_value":
                                                                          distribution(series.sketch)}
        return {"metric": {"type": f"custom.googleapis.com/{self.namespace}/{metric.name}",
                           "labels": dict(series.labels)},
                "resource": self.resource, "metric_kind": kind, "value_type": value_type, "unit": metric.unit,
                "points": [{"interval": interval, "value": value}]}

    # --- sending ----------------------------------------------------------------------------------------
    def export(self, now: float | None = None) -> int:
        """Send every due series now (chunks of 200). Returns how many series were written."""
        now = self.clock() if now is None else now
        due = self.collect(now)
        if not due:
            return 0
        self.resource["labels"]["task_id"] = _context.instance().instance_id  # a forked worker's own id
        if not self.project:
            self._failed("no_project", "no project id: set GOOGLE_CLOUD_PROJECT in the function's environment",
                         len(due))
            return 0
        try:
            client = self.client()
            from google.cloud import monitoring_v3
        except Exception as exc:
            self._failed("client", f"{type(exc).__name__}: {exc}", len(due))
            return 0
        written = 0
        for first in range(0, len(due), MAX_SERIES_PER_REQUEST):
            chunk = due[first:first + MAX_SERIES_PER_REQUEST]
            series = [monitoring_v3.TimeSeries(point) for _, _, point in chunk]
            outcome = self._send(client, series)
            if outcome is None:
                written += len(chunk)
                for _, s, _ in chunk:
                    s.exported_at = now
            elif outcome == "retryable":
                # The service is unwell: the chunks left are not tried now (an export costs one request at
                # most ATTEMPTS x TIMEOUT); the next window sends their newest cumulative values instead.
                for _, s, _ in due[first:]:
                    s.dirty = True
                break
        return written

    def _send(self, client, series: list) -> str | None:
        for attempt in range(1, self.attempts + 1):
            self.requests += 1
            try:
                client.create_time_series(name=f"projects/{self.project}", time_series=series,
                                          timeout=self.timeout, retry=None)
                return None
            except Exception as exc:
                retryable = type(exc).__name__ in _RETRYABLE
                if retryable and attempt < self.attempts:
                    self.sleep(min(0.25 * attempt, 1.0))
                    continue
                reason = getattr(getattr(exc, "grpc_status_code", None), "name", None) or type(exc).__name__
                self._failed(reason, str(exc)[:500], len(series))
                return "retryable" if retryable else "dropped"
        return "retryable"  # not reached: the loop returns on its last attempt

    def client(self):
        if self._client is None:
            from google.cloud.monitoring_v3 import MetricServiceClient

            if self.endpoint:  # a local MetricService (tests, local development), like FIRESTORE_EMULATOR_HOST
                import grpc
                from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

                self._client = MetricServiceClient(
                    transport=MetricServiceGrpcTransport(channel=grpc.insecure_channel(self.endpoint)))
            else:
                self._client = MetricServiceClient()
        return self._client

    def _failed(self, reason: str, detail: str, points: int) -> None:
        self.failures += 1
        self.registry.counter("metrics_export_failures", description="failed Cloud Monitoring exports").inc(
            reason=reason)
        if points:
            self.registry.counter("metrics_export_dropped_points").inc(points)
        if self._log is None:
            from gcfkit.logging import Logger

            self._log = Logger(rate_limiter=False)
        self._log.warning("metrics export to Cloud Monitoring failed (%s): %d points dropped", reason, points,
                          export_error=detail, project=self.project)


def distribution(sketch) -> dict:
    """A Cloud Monitoring Distribution from a QuantileSketch (cumulative since the series started)."""
    growth = sketch.gamma ** BUCKET_SKETCH_STEPS
    log_growth = math.log(growth)
    counts = [0] * (BUCKET_COUNT + 2)  # underflow, BUCKET_COUNT finite buckets, overflow
    counts[0] = sketch.zeros + sum(sketch.negative.values())
    for key, n in sketch.positive.items():
        value = sketch.value(key)
        index = 0 if value < BUCKET_SCALE else min(int(math.log(value / BUCKET_SCALE) / log_growth) + 1,
                                                   BUCKET_COUNT + 1)
        counts[index] += n
    while len(counts) > 1 and counts[-1] == 0:  # trailing empty buckets may be omitted
        counts.pop()
    return {"count": sketch.count, "mean": sketch.mean, "sum_of_squared_deviation": sketch.squared_deviation,
            "bucket_options": {"exponential_buckets": {"num_finite_buckets": BUCKET_COUNT, "growth_factor": growth,
                                                       "scale": BUCKET_SCALE}},
            "bucket_counts": counts}
