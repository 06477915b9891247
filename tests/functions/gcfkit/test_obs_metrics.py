"""Counters, gauges, histograms, timers: labels, the cardinality cap, and the log-export shape."""

from __future__ import annotations

import json

import pytest
from gcfkit import context
from gcfkit.metrics import Metrics, Registry
from gcfkit.metrics.logexport import render_points
from gcfkit.metrics.registry import FOLDED_METRIC


@pytest.fixture
def metrics(obs_env):
    return Metrics(Registry(max_series=3))


def invocation_points(fn) -> list:
    invocation = context.Invocation(execution_id="e")
    token = context.begin(invocation)
    try:
        fn()
    finally:
        context.end(token)
    return invocation.metric_points or []


def test_counters_gauges_histograms_keep_totals_per_label_set(metrics):
    metrics.increment("orders", plan="pro")
    metrics.increment("orders", 2, plan="pro")
    metrics.increment("orders", plan="free")
    metrics.set_gauge("queue_depth", 7)
    metrics.set_gauge("queue_depth", 3.5)
    for value in (10, 20, 30, 40):
        metrics.observe("payment_ms", value, provider="stripe")
    snapshot = metrics.snapshot()
    assert sorted((s["labels"]["plan"], s["value"]) for s in snapshot["orders"]["series"]) == [("free", 1), ("pro", 3)]
    assert snapshot["queue_depth"]["series"] == [{"labels": {}, "value": 3.5}]
    payment = metrics.percentiles("payment_ms", provider="stripe")
    assert payment["count"] == 4 and payment["min"] == 10 and payment["max"] == 40
    # nearest rank below: p50 of 10, 20, 30, 40 is 20 and p99 is 30 (within 1 %)
    assert abs(payment["p50"] - 20) <= 0.2 and abs(payment["p99"] - 30) <= 0.3


def test_label_sets_past_the_cap_fold_into_other_and_are_counted(metrics):
    for user in range(10):
        metrics.increment("logins", user=f"u{user}")
    series = {s["labels"]["user"]: s["value"] for s in metrics.snapshot()["logins"]["series"]}
    assert series == {"u0": 1, "u1": 1, "u2": 1, "other": 7}
    assert metrics.snapshot()["logins"]["folded"] == 7
    folded = metrics.snapshot()[FOLDED_METRIC]["series"]
    assert folded == [{"labels": {"metric": "logins"}, "value": 7}]


def test_default_labels_apply_to_every_recording(metrics):
    metrics.set_default_labels(team="payments")
    metrics.increment("refunds")
    assert metrics.snapshot()["refunds"]["series"] == [{"labels": {"team": "payments"}, "value": 1}]
    metrics.clear_default_labels()
    metrics.increment("refunds")
    assert len(metrics.snapshot()["refunds"]["series"]) == 2


def test_mistakes_are_clear_errors(metrics):
    with pytest.raises(ValueError, match=r"counter name 'Orders-Created': use lower-case letters"):
        metrics.increment("Orders-Created")
    with pytest.raises(ValueError, match=r"label name 'Plan'"):
        metrics.increment("orders", Plan="pro")
    with pytest.raises(ValueError, match=r"counter 'orders': increment must be an int >= 0, got 1.5"):
        metrics.increment("orders", 1.5)
    with pytest.raises(ValueError, match=r"histogram 'latency_ms': value must be a finite number, got nan"):
        metrics.observe("latency_ms", float("nan"))
    metrics.increment("orders")
    with pytest.raises(ValueError, match=r"metric 'orders' is already a counter; it cannot also be a histogram"):
        metrics.observe("orders", 1.0)


def test_timers_record_milliseconds_and_the_invocations_slowest_segments(metrics):
    @metrics.timer("pricing_ms")
    def price():
        return 42

    def work():
        with metrics.timer("firestore_read_ms", collection="orders"):
            pass
        assert price() == 42
        price()

    invocation = context.Invocation(execution_id="e")
    token = context.begin(invocation)
    work()
    context.end(token)
    assert set(invocation.segments) == {"firestore_read_ms", "pricing_ms"}
    assert invocation.segments["pricing_ms"][1] == 2
    assert metrics.percentiles("pricing_ms")["count"] == 2
    assert metrics.percentiles("firestore_read_ms", collection="orders")["count"] == 1


def test_log_export_puts_at_most_one_point_per_metric_on_a_line(metrics):
    def work():
        metrics.increment("orders", plan="pro")
        metrics.increment("orders", plan="pro")  # summed: one point
        metrics.increment("orders", plan="free")  # another series: next line
        metrics.set_gauge("queue_depth", 1)
        metrics.set_gauge("queue_depth", 2)  # the last value
        metrics.observe("payment_ms", 10.5)
        metrics.observe("payment_ms", 11.5)  # each observation is a point

    objects = [json.loads(text) for text in render_points(invocation_points(work))]
    assert objects == [
        {"orders": {"kind": "counter", "unit": "1", "labels": {"plan": "pro"}, "value": 2},
         "queue_depth": {"kind": "gauge", "unit": "1", "value": 2},
         "payment_ms": {"kind": "histogram", "unit": "ms", "value": 10.5}},
        {"orders": {"kind": "counter", "unit": "1", "labels": {"plan": "free"}, "value": 1},
         "payment_ms": {"kind": "histogram", "unit": "ms", "value": 11.5}},
    ]


def test_number_subclasses_are_written_as_plain_json_numbers(metrics):
    import enum

    class Price(float):  # numpy.float64 is a float subclass whose repr is "np.float64(1.5)"
        def __repr__(self):
            return f"Price({float(self)})"

    class Size(enum.IntEnum):
        LARGE = 3

    def work():
        metrics.observe("payment_ms", Price(1.5))
        metrics.set_gauge("queue_depth", Price(2.5))
        metrics.set_gauge("batch_size", Size.LARGE)

    objects = [json.loads(text) for text in render_points(invocation_points(work))]
    assert [{name: point["value"] for name, point in line.items()} for line in objects] == [
        {"payment_ms": 1.5, "queue_depth": 2.5, "batch_size": 3}]
    assert metrics.snapshot()["queue_depth"]["series"][0]["value"] == 2.5


def test_an_invocation_keeps_at_most_a_hundred_points_for_the_log(metrics):
    from gcfkit.metrics.registry import MAX_INVOCATION_POINTS

    def work():
        for _ in range(1000):
            metrics.observe("read_ms", 1.0)

    assert len(invocation_points(work)) == MAX_INVOCATION_POINTS == 100
    assert metrics.snapshot()["read_ms"]["series"][0]["count"] == 1000, "the totals keep every recording"


def test_points_outside_an_invocation_are_written_by_flush(obs_env, capsys):
    from gcfkit.testing import log_lines, metric_points

    metrics = Metrics()
    metrics.increment("jobs_started")
    metrics.flush()
    (entry,) = log_lines(capsys.readouterr().out)
    assert entry["message"] == "metrics" and metric_points([entry], "jobs_started") == [
        {"kind": "counter", "unit": "1", "value": 1}]
    metrics.flush()
    assert capsys.readouterr().out == "", "nothing pending, nothing written"


def test_export_mode_off_and_monitoring_keep_no_points(obs_env):
    obs_env(GCFKIT_METRICS_EXPORT="off")
    from gcfkit.metrics import registry

    assert registry().keep_points is False
    assert invocation_points(lambda: Metrics().increment("orders")) == []
    assert Metrics().snapshot()["orders"]["series"][0]["value"] == 1, "totals are kept whatever the export"
