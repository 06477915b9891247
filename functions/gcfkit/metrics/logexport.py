"""Metric points as structured log fields, shaped for Cloud Logging log-based metrics.

With `GCFKIT_METRICS_EXPORT=log` (the default) the points recorded during an invocation ride on the
invocation's last log line, under one top-level key:

    "gcfkit_metrics": {
      "orders_created": {"kind": "counter", "value": 2, "unit": "1", "labels": {"plan": "pro"}},
      "payment_ms":     {"kind": "histogram", "value": 41.7, "unit": "ms", "labels": {"provider": "stripe"}}
    }

so a log-based metric is defined by a filter and field paths that never change shape:
filter `jsonPayload.gcfkit_metrics.orders_created.kind="counter"`, value
`EXTRACT(jsonPayload.gcfkit_metrics.orders_created.value)`, label
`EXTRACT(jsonPayload.gcfkit_metrics.orders_created.labels.plan)`. A line holds at most one point per
metric: a counter's increments for one label set are summed over the invocation, a gauge keeps its last
value, and every further point (a second label set, a second histogram observation) goes on an extra
line with message "metrics" and the same shape. docs/observability.md documents this contract.
"""

from __future__ import annotations

from gcfkit.logging.render import encode, escape

FIELD = "gcfkit_metrics"


def _head(series) -> str:
    """`"name":{"kind":..,"unit":..,"labels":{..},"value":` for a series, built once and kept on it."""
    metric = series.metric
    head = escape(metric.name) + ':{"kind":"' + metric.kind + '","unit":' + escape(metric.unit)
    if series.labels:
        head += ',"labels":' + encode(series.labels)
    series.log_head = head = head + ',"value":'
    return head


def render_points(points: list) -> list[str]:
    """[(series, value), ...] -> JSON objects `{name: entry, ...}`, each holding at most one point per metric:
    a counter's values for one series are summed, a gauge keeps its last value, histogram observations and
    further series of the same metric go to the next object. (Values were checked finite when recorded.)"""
    seen = set()
    members = []
    for series, value in points:  # the usual case: one point per metric, one object
        name = series.metric.name
        if name in seen:
            return _grouped(points)
        seen.add(name)
        members.append(f"{series.log_head or _head(series)}{value!r}}}")
    return ["{" + ",".join(members) + "}"]


def _grouped(points: list) -> list[str]:
    objects: list[list] = []
    depth: dict[str, int] = {}  # metric name -> how many objects already hold a point of it
    merged: dict = {}           # series -> its slot, for counters and gauges
    for series, value in points:
        kind = series.metric.kind
        if kind != "histogram":
            slot = merged.get(series)
            if slot is not None:
                slot[1] = slot[1] + value if kind == "counter" else value
                continue
        name = series.metric.name
        index = depth.get(name, 0)
        depth[name] = index + 1
        if index == len(objects):
            objects.append([])
        slot = [series, value]
        objects[index].append(slot)
        if kind != "histogram":
            merged[series] = slot
    return ["{" + ",".join([(s.log_head or _head(s)) + repr(v) + "}" for s, v in members]) + "}"
            for members in objects]
