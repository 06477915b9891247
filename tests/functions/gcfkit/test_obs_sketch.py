"""QuantileSketch: relative error within 1 % at any quantile, bounded memory, exact count/sum/min/max."""

from __future__ import annotations

import math
import random

import pytest
from gcfkit.metrics.sketch import QuantileSketch


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("name, draw", [
    ("lognormal latency", lambda r: r.lognormvariate(3, 1.2)),
    ("uniform", lambda r: r.uniform(0.5, 5000)),
    ("bimodal", lambda r: r.gauss(5, 0.5) if r.random() < 0.9 else r.gauss(900, 50)),
    ("heavy tail", lambda r: r.paretovariate(1.1)),
    ("mixed signs", lambda r: r.gauss(0, 100)),
])
def test_quantiles_are_within_one_percent(name, draw):
    rng = random.Random(7)
    values = [draw(rng) for _ in range(50_000)]
    sketch = QuantileSketch(relative_accuracy=0.01)
    for value in values:
        sketch.add(value)
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999):
        expected = exact(values, q)
        assert abs(sketch.quantile(q) - expected) <= 0.01 * abs(expected) + 1e-9, (name, q)
    assert sketch.count == len(values) and math.isclose(sketch.sum, sum(values), rel_tol=1e-9)
    assert sketch.min == min(values) and sketch.max == max(values)
    mean = sum(values) / len(values)
    assert math.isclose(sketch.squared_deviation, sum((v - mean) ** 2 for v in values), rel_tol=1e-6)


def test_memory_is_bounded_and_the_high_quantiles_keep_their_accuracy():
    sketch = QuantileSketch(relative_accuracy=0.01, max_buckets=512)
    values = [10 ** (i / 1000) for i in range(12_000)]  # 12 decades need ~1,400 buckets at 1 %
    for value in values:
        sketch.add(value)
    assert 500 <= len(sketch.positive) <= 512, "the lowest buckets were merged"
    for q in (0.95, 0.99):
        assert abs(sketch.quantile(q) - exact(values, q)) <= 0.01 * exact(values, q)


def test_zeros_empty_merge_and_bad_arguments():
    empty = QuantileSketch()
    assert empty.quantile(0.5) is None and empty.summary() == {"count": 0}
    a, b = QuantileSketch(), QuantileSketch()
    for value in (0, 0, 1, 2):
        a.add(value)
    for value in (3, 4, float("nan")):
        b.add(value)
    a.merge(b)
    assert a.count == 6 and a.zeros == 2 and a.quantile(0) == 0 and abs(a.quantile(1) - 4) <= 0.04
    with pytest.raises(ValueError, match="quantile must be between 0 and 1"):
        a.quantile(1.5)
    with pytest.raises(ValueError, match="relative_accuracy"):
        QuantileSketch(relative_accuracy=0)
    with pytest.raises(ValueError, match="different relative accuracy"):
        a.merge(QuantileSketch(relative_accuracy=0.05))


@pytest.mark.parametrize("values", [
    [1.0], [5.0, 5.0, 5.0], [-1.0], [1e-12], [-1e-12], [2.0, 2.0001], [-3.0, 1.0], [0.0, 1.0], [-1.0, 0.0],
])
def test_quantiles_stay_within_min_and_max(values):
    # A bucket's representative can lie outside the values in it: one value of 1.0 sits in the bucket
    # represented by 0.99, which made p50 smaller than the minimum.
    sketch = QuantileSketch()
    for value in values:
        sketch.add(value)
    for q in (0, 0.01, 0.5, 0.95, 0.99, 1):
        assert min(values) <= sketch.quantile(q) <= max(values), (values, q, sketch.quantile(q))
    summary = sketch.summary()
    assert summary["min"] <= summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"], summary
    if len(set(values)) == 1:
        assert summary["p50"] == summary["p99"] == values[0]
