"""Cloud Monitoring export with the real google-cloud-monitoring client.

The client (`MetricServiceClient`, its gRPC transport and proto-plus types) talks to a local MetricService
on 127.0.0.1: a gRPC server built from the client's own `CreateTimeSeriesRequest` type, which records each
request and, like the real API, rejects requests that break its rules (more than 200 series, a series
twice, more than one point, an empty or moving cumulative interval, a point closer than 10 s to the last).
"""

from __future__ import annotations

import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from gcfkit import context
from gcfkit.metrics import Metrics, Registry
from gcfkit.metrics.cloud_monitoring import CloudMonitoringExporter
from gcfkit.settings import Settings
from gcfkit.testing import log_lines
from google.api.metric_pb2 import MetricDescriptor
from google.cloud.monitoring_v3.types import CreateTimeSeriesRequest
from google.protobuf import empty_pb2

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"


class LocalMetricService:
    """A MetricService.CreateTimeSeries endpoint that records requests and enforces the API's rules."""

    def __init__(self):
        self.requests: list[CreateTimeSeriesRequest] = []
        self.failures: list[grpc.StatusCode] = []  # status codes to answer the next calls with
        self.last_end: dict[tuple, float] = {}
        self.starts: dict[tuple, float] = {}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(
            self._create, request_deserializer=CreateTimeSeriesRequest.deserialize,
            response_serializer=empty_pb2.Empty.SerializeToString)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "google.monitoring.v3.MetricService", {"CreateTimeSeries": handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _create(self, request: CreateTimeSeriesRequest, grpc_context) -> empty_pb2.Empty:
        self.requests.append(request)
        if self.failures:
            grpc_context.abort(self.failures.pop(0), "injected failure")
        problems = self.violations(request)
        if problems:
            grpc_context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))
        return empty_pb2.Empty()

    def violations(self, request: CreateTimeSeriesRequest) -> list[str]:
        problems = []
        if len(request.time_series) > 200:
            problems.append(f"{len(request.time_series)} time series in one request (at most 200)")
        seen = set()
        for series in request.time_series:
            key = identity(series)
            if key in seen:
                problems.append(f"{key} twice in one request")
            seen.add(key)
            if len(series.points) != 1:
                problems.append(f"{key}: {len(series.points)} points (exactly one)")
                continue
            interval = series.points[0].interval
            end = interval.end_time.timestamp()
            if series.metric_kind == MetricDescriptor.CUMULATIVE:
                start = interval.start_time.timestamp()
                if not start < end:
                    problems.append(f"{key}: empty cumulative interval")
                if self.starts.setdefault(key, start) != start:
                    problems.append(f"{key}: the start of a cumulative series moved")
            if key in self.last_end and end - self.last_end[key] < 10:
                problems.append(f"{key}: a point {end - self.last_end[key]:.1f} s after the previous one")
            self.last_end[key] = end
        return problems

    def series(self) -> list:
        return [series for request in self.requests for series in request.time_series]


def kind(series) -> str:
    return MetricDescriptor.MetricKind.Name(series.metric_kind)


def value_type(series) -> str:
    return MetricDescriptor.ValueType.Name(series.value_type)


def identity(series) -> tuple:
    return (series.metric.type, tuple(sorted(series.metric.labels.items())),
            tuple(sorted(series.resource.labels.items())))


@pytest.fixture
def service():
    local = LocalMetricService()
    yield local
    local.server.stop(None)


@pytest.fixture
def exporter_for(obs_env, service):
    def make(registry: Registry, **environ: str) -> CloudMonitoringExporter:
        obs_env(GCFKIT_METRICS_EXPORT="monitoring", GCFKIT_MONITORING_ENDPOINT=service.address,
                GCFKIT_REGION="europe-west1", GCFKIT_INSTANCE_ID="instance-a", **environ)
        return CloudMonitoringExporter(registry, Settings.from_env(), clock=lambda: 1_000_000.0,
                                       sleep=lambda seconds: None)

    return make


def test_an_export_honours_the_api_rules(exporter_for, service):
    registry = Registry(max_series=1000, keep_points=False)
    metrics = Metrics(registry)
    for customer in range(450):
        metrics.increment("orders", customer=f"c{customer}")
    metrics.set_gauge("queue_depth", 4)
    for value in (1.5, 2.5, 300.0, 0.0):
        metrics.observe("payment_ms", value, provider="stripe")
    exporter = exporter_for(registry)
    started = registry.metrics["orders"].series[(("customer", "c0"),)].started
    now = started + 60

    assert exporter.export(now) == 452
    assert [len(r.time_series) for r in service.requests] == [200, 200, 52]
    assert {r.name for r in service.requests} == {"projects/demo-obs"}
    by_type = {}
    for series in service.series():
        assert series.resource.type == "generic_task"
        assert dict(series.resource.labels) == {"project_id": "demo-obs", "location": "europe-west1",
                                                "namespace": "cloud-functions", "job": "orders",
                                                "task_id": "instance-a"}
        by_type.setdefault(series.metric.type, []).append(series)
    assert len(by_type["custom.googleapis.com/gcfkit/orders"]) == 450
    order = by_type["custom.googleapis.com/gcfkit/orders"][0]
    assert (kind(order), value_type(order)) == ("CUMULATIVE", "INT64")
    assert order.points[0].value.int64_value == 1 and dict(order.metric.labels)["customer"].startswith("c")
    assert order.points[0].interval.start_time.timestamp() == pytest.approx(started, abs=1e-3)
    assert order.points[0].interval.end_time.timestamp() == pytest.approx(now, abs=1e-3)
    (gauge,) = by_type["custom.googleapis.com/gcfkit/queue_depth"]
    assert kind(gauge) == "GAUGE" and gauge.points[0].value.double_value == 4.0
    (payment,) = by_type["custom.googleapis.com/gcfkit/payment_ms"]
    distribution = payment.points[0].value.distribution_value
    assert value_type(payment) == "DISTRIBUTION" and payment.unit == "ms"
    assert distribution.count == 4 == sum(distribution.bucket_counts)
    assert distribution.mean == pytest.approx(76.0)
    assert distribution.bucket_options.exponential_buckets.num_finite_buckets <= 200


def test_only_recorded_series_are_sent_and_never_twice_within_ten_seconds(exporter_for, service):
    registry = Registry(keep_points=False)
    metrics = Metrics(registry)
    metrics.increment("orders", plan="pro")
    metrics.increment("refunds")
    exporter = exporter_for(registry)
    start = registry.metrics["orders"].series[(("plan", "pro"),)].started
    assert exporter.export(start + 30) == 2
    metrics.increment("orders", plan="pro")
    assert exporter.export(start + 35) == 0, "5 s after its last point: not yet"
    assert exporter.export(start + 41) == 1, "only the series recorded since"
    (again,) = service.requests[-1].time_series
    assert again.points[0].value.int64_value == 2, "cumulative: the total since the fixed start"
    assert again.points[0].interval.start_time.timestamp() == pytest.approx(start, abs=1e-3)
    assert exporter.export(start + 100) == 0, "nothing recorded, nothing sent"


def test_a_series_exported_the_moment_it_was_created_keeps_its_start_for_later_points(exporter_for, service):
    """with_monitoring creates the error series microseconds before an export that may be due: the first
    point's interval must not be empty, and every later point must keep that same start."""
    registry = Registry(keep_points=False)
    metrics = Metrics(registry)
    metrics.increment("orders")
    exporter = exporter_for(registry)
    created = registry.metrics["orders"].series[()].started
    assert exporter.export(created) == 1
    metrics.increment("orders")
    assert exporter.export(created + 60) == 1, "the service rejected the second point"
    starts = {s.points[0].interval.start_time.timestamp() for s in service.series()}
    assert len(starts) == 1 and starts.pop() < created


def test_after_a_transient_failure_the_chunks_left_wait_for_the_next_window(exporter_for, service):
    registry = Registry(max_series=1000, keep_points=False)
    metrics = Metrics(registry)
    for customer in range(450):
        metrics.increment("orders", customer=f"c{customer}")
    exporter = exporter_for(registry, GCFKIT_METRICS_EXPORT_ATTEMPTS="2")
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 2
    started = registry.metrics["orders"].series[(("customer", "c0"),)].started
    assert exporter.export(started + 60) == 0
    assert len(service.requests) == 2, "the first chunk's two attempts, and nothing more in this export"
    assert exporter.export(started + 120) == 452  # the 450, and the two failure metrics
    assert [len(r.time_series) for r in service.requests[2:]] == [200, 200, 52]


def test_a_window_is_paid_only_when_due(exporter_for, service):
    registry = Registry(keep_points=False)
    Metrics(registry).increment("orders")
    exporter = exporter_for(registry, GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS="30")
    first_due = exporter.next_due
    assert exporter.maybe_export(first_due - 1) is False and service.requests == []
    assert exporter.maybe_export(first_due) is True and len(service.requests) == 1
    assert exporter.next_due == first_due + 30


def test_transient_failures_are_retried_a_bounded_number_of_times_then_dropped_logged_and_counted(
        exporter_for, service, capsys):
    registry = Registry(keep_points=False)
    metrics = Metrics(registry)
    metrics.increment("orders")
    exporter = exporter_for(registry, GCFKIT_METRICS_EXPORT_ATTEMPTS="2")
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 3
    started = registry.metrics["orders"].series[()].started
    assert exporter.export(started + 60) == 0
    assert len(service.requests) == 2, "two attempts, then the points are dropped"
    (warning,) = log_lines(capsys.readouterr().out)
    assert warning["severity"] == "WARNING" and "UNAVAILABLE" in warning["message"]
    assert "1 points dropped" in warning["message"] and warning["project"] == "demo-obs"
    failures = metrics.snapshot()["metrics_export_failures"]["series"]
    assert failures == [{"labels": {"reason": "UNAVAILABLE"}, "value": 1}]
    # The series stays due: the next window sends its newest total (and the failure counter).
    assert exporter.export(started + 120) == 3
    sent = {s.metric.type.rsplit("/", 1)[1] for s in service.requests[-1].time_series}
    assert sent == {"orders", "metrics_export_failures", "metrics_export_dropped_points"}


def test_a_rejected_request_is_not_retried(exporter_for, service, capsys):
    registry = Registry(keep_points=False)
    Metrics(registry).increment("orders")
    exporter = exporter_for(registry)
    service.failures = [grpc.StatusCode.INVALID_ARGUMENT]
    started = registry.metrics["orders"].series[()].started
    exporter.export(started + 60)
    assert len(service.requests) == 1
    assert "INVALID_ARGUMENT" in log_lines(capsys.readouterr().out)[0]["message"]


def test_with_monitoring_exports_when_the_window_is_due_and_a_dead_endpoint_never_fails_a_request(
        served, service, lines):
    client = served("obs_http_app.py", "orders", GCFKIT_METRICS_EXPORT="monitoring",
                    GCFKIT_MONITORING_ENDPOINT=service.address, GCFKIT_INSTANCE_ID="instance-b")
    from gcfkit.metrics import exporter

    active = exporter()
    assert client.get("/orders?plan=pro").status_code == 200
    assert service.requests == [], "the first window is not due yet"
    active.next_due = 0  # the window has passed
    assert client.get("/orders?plan=pro").status_code == 200
    sent = {s.metric.type.rsplit("/", 1)[1]: s for s in service.series()}
    assert {"invocations", "invocation_latency_ms", "orders_created", "payment_ms"} <= set(sent)
    assert dict(sent["invocations"].metric.labels) in ({"status": "success", "start": "cold"},
                                                       {"status": "success", "start": "warm"})
    assert not [e for e in lines() if "gcfkit_metrics" in e], "monitoring export writes no metric log fields"

    service.server.stop(None)  # the endpoint goes away
    active.next_due = 0
    active.timeout = 0.5
    response = client.get("/orders")
    assert response.status_code == 200
    warnings = [e for e in lines() if e["severity"] == "WARNING"]
    assert warnings and "metrics export to Cloud Monitoring failed" in warnings[0]["message"]


def test_the_client_library_is_imported_only_when_an_export_runs(tmp_path):
    script = """
import sys
from gcfkit.metrics import Metrics, exporter
from gcfkit.monitoring import with_monitoring
Metrics().increment("orders")
active = exporter()
active.maybe_export()  # not due: a clock comparison
print("before", "google.cloud.monitoring_v3" in sys.modules, "grpc" in sys.modules)
active.export()
print("after", "google.cloud.monitoring_v3" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=FUNCTIONS, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "GCFKIT_METRICS_EXPORT": "monitoring",
                                             "GOOGLE_CLOUD_PROJECT": "demo-obs",
                                             "GCFKIT_MONITORING_ENDPOINT": "127.0.0.1:9",
                                             "GCFKIT_METRICS_EXPORT_TIMEOUT_SECONDS": "0.2",
                                             "GCFKIT_METRICS_EXPORT_ATTEMPTS": "1"})
    assert result.returncode == 0, result.stderr
    assert "before False False" in result.stdout and "after True" in result.stdout


def test_no_project_is_a_logged_failure_not_an_exception(obs_env, capsys):
    obs_env(GCFKIT_METRICS_EXPORT="monitoring", GOOGLE_CLOUD_PROJECT="")
    registry = Registry(keep_points=False)
    Metrics(registry).increment("orders")
    exporter = CloudMonitoringExporter(registry, Settings.from_env(), clock=lambda: 0.0)
    assert exporter.export(1e9) == 0
    assert "set GOOGLE_CLOUD_PROJECT" in log_lines(capsys.readouterr().out)[0]["export_error"]
    assert context.current() is None
