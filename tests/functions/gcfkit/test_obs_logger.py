"""Logger outside with_monitoring: format, levels, redaction, serialization fallbacks, keys, never raising."""

from __future__ import annotations

import dataclasses
import datetime
import io
import logging
import threading

import pytest
from gcfkit import context
from gcfkit.logging import Logger, LogRateLimiter, capture_stdlib, flush_debug_buffer
from gcfkit.settings import SettingsError
from gcfkit.testing import log_lines


def make(**kwargs) -> tuple[Logger, io.StringIO]:
    out = io.StringIO()
    return Logger(stream=out, **kwargs), out


def entries(out: io.StringIO) -> list[dict]:
    return log_lines(out.getvalue())


def test_a_line_is_one_structured_entry(obs_env):
    logger, out = make()
    logger.warning("disk at %d%%", 93, volume="/data")
    (entry,) = entries(out)
    assert entry["severity"] == "WARNING" and entry["message"] == "disk at 93%" and entry["volume"] == "/data"
    assert entry["logging.googleapis.com/labels"] == {"function": "orders", "revision": "orders-00007-abc"}
    source = entry["logging.googleapis.com/sourceLocation"]
    assert source["file"] == __file__ and source["function"] == "test_a_line_is_one_structured_entry"
    assert int(source["line"]) > 0
    assert "cold_start" not in entry, "outside an invocation there is no invocation field"


def test_levels_come_from_log_level_and_gcfkit_log_level_wins(obs_env):
    obs_env(LOG_LEVEL="warning")
    logger, out = make()
    logger.info("hidden")
    logger.error("shown")
    assert [e["message"] for e in entries(out)] == ["shown"]
    obs_env(LOG_LEVEL="ERROR", GCFKIT_LOG_LEVEL="debug")
    logger, out = make()
    logger.debug("visible")
    logger.notice("also")
    logger.log(50, "critical by number")
    assert [(e["severity"], e["message"]) for e in entries(out)] == [
        ("DEBUG", "visible"), ("NOTICE", "also"), ("CRITICAL", "critical by number")]


def test_a_bad_log_level_names_the_variable(obs_env):
    with pytest.raises(SettingsError, match=r"LOG_LEVEL: got 'LOUD'; allowed: DEBUG, INFO"):
        obs_env(LOG_LEVEL="LOUD")


def test_sensitive_keys_are_redacted_at_any_depth_and_reserved_keys_renamed(obs_env):
    obs_env(GCFKIT_LOG_REDACT_KEYS="iban, X-Internal")
    logger, out = make()
    logger.info("signup", password="p", user={"name": "ann", "api_key": "k", "cards": [{"cvv": "1", "last4": "42"}]},
                headers={"Authorization": "Bearer x", "Set-Cookie": "s=1", "Accept": "json"}, iban="DE00",
                x_internal="1", access_token="t", token_count=3, message="mine", severity="mine too")
    (entry,) = entries(out)
    assert entry["message"] == "signup" and entry["severity"] == "INFO"
    assert entry["message_"] == "mine" and entry["severity_"] == "mine too"
    assert entry["password"] == entry["iban"] == entry["x_internal"] == entry["access_token"] == "[REDACTED]"
    assert entry["user"] == {"name": "ann", "api_key": "[REDACTED]", "cards": [{"cvv": "[REDACTED]", "last4": "42"}]}
    assert entry["headers"] == {"Authorization": "[REDACTED]", "Set-Cookie": "[REDACTED]", "Accept": "json"}
    assert entry["token_count"] == 3


def test_keys_named_like_gcfkits_own_fields_are_renamed_so_no_line_has_a_key_twice(obs_env):
    logger, out = make()
    token = context.begin(context.Invocation(execution_id="e1", debug=True))
    logger.set_correlation_id("corr-1")
    try:
        raise ValueError("declined")
    except ValueError:
        logger.exception("payment failed", error="declined", correlation_id="mine", debug_sampled="mine")
    context.end(token)
    line = out.getvalue().splitlines()[0]
    assert all(line.count(f'"{key}":') == 1 for key in ("error", "correlation_id", "debug_sampled"))
    (entry,) = entries(out)
    assert entry["error"]["fingerprint"] and entry["error_"] == "declined"
    assert entry["correlation_id"] == "corr-1" and entry["correlation_id_"] == "mine"


@dataclasses.dataclass
class Order:
    id: int
    secret: str


class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")


def test_any_value_is_written_and_the_logger_never_raises(obs_env):
    logger, out = make()
    cycle: dict = {}
    cycle["self"] = cycle
    logger.info("values", when=datetime.datetime(2026, 5, 9, 7, 35), tags={"b", "a"} and ["x"], raw=b"\xffbytes",
                order=Order(1, "s"), weird=Unprintable(), ratio=float("nan"), big=float("inf"), cycle=cycle,
                error=ValueError("bad"))
    logger.info("%d items", "not a number")
    logger.info(Unprintable())
    logger.error("%s", Unprintable())
    logger.log("VERBOSE", "an unknown level")
    lines = entries(out)  # strict JSON: NaN / Infinity would fail here
    assert len(lines) == 5
    assert lines[4]["severity"] == "DEFAULT" and "unknown log level 'VERBOSE'" in lines[4]["gcfkit_log_error"]
    values = lines[0]
    assert values["when"] == "2026-05-09T07:35:00" and values["raw"] == "\\xffbytes"
    assert values["order"] == {"id": 1, "secret": "[REDACTED]"}
    assert "broken __repr__" in values["weird"] and values["ratio"] == "nan" and values["big"] == "inf"
    assert "unserializable" in values["cycle"] and values["error"] == "ValueError: bad"
    assert lines[1]["message"] == "%d items ('not a number',)"
    assert "gcfkit_log_error" in lines[2] and "gcfkit_log_error" in lines[3]


def test_a_buffered_line_that_cannot_be_rendered_does_not_fail_the_flush(obs_env):
    from gcfkit.logging.logger import flush_debug_buffer

    logger, out = make()
    invocation = context.Invocation(execution_id="e1")
    token = context.begin(invocation)
    logger.debug(Unprintable())  # kept in the debug buffer: the level is INFO
    logger.debug("kept too")
    context.end(token)
    assert flush_debug_buffer(invocation) == 2
    broken, kept = entries(out)
    assert "gcfkit_log_error" in broken and kept["message"] == "kept too" and kept["debug_buffered"] is True


def test_a_broken_stream_is_not_the_applications_problem(obs_env):
    class Broken(io.StringIO):
        def write(self, text):
            raise OSError("stdout closed")

    Logger(stream=Broken()).info("lost, quietly")


def test_exception_logs_carry_the_stack_trace_as_an_error_event(obs_env):
    logger, out = make()
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed", key="missing")
    (entry,) = entries(out)
    assert entry["message"].startswith("lookup failed\nTraceback (most recent call last):")
    assert entry["message"].endswith("KeyError: 'missing'") and entry["key"] == "missing"
    assert entry["@type"].endswith("ReportedErrorEvent") and entry["error"]["type"] == "builtins.KeyError"
    location = entry["context"]["reportLocation"]
    assert location["functionName"] == "test_exception_logs_carry_the_stack_trace_as_an_error_event"


def test_keys_appended_outside_an_invocation_stay_inside_one_end_with_it(obs_env):
    logger, out = make(component="billing")
    logger.append_keys(region="eu")
    token = context.begin(context.Invocation(execution_id="e1"))
    logger.append_keys(order_id=7)
    logger.set_correlation_id("corr-1")
    logger.info("inside", region="us")  # the call's value wins, and the key appears once
    assert logger.get_current_keys() == {"component": "billing", "region": "eu", "order_id": 7}
    assert logger.get_correlation_id() == "corr-1"
    logger.remove_keys("order_id", "component")  # in an invocation: its own keys only
    assert logger.get_current_keys() == {"component": "billing", "region": "eu"}
    logger.append_keys(order_id=7)
    context.end(token)
    assert logger.get_current_keys() == {"component": "billing", "region": "eu"}, "the next request's keys"
    logger.remove_keys("region")
    logger.info("after")
    inside, after = entries(out)
    assert out.getvalue().splitlines()[0].count('"region"') == 1
    assert (inside["component"], inside["region"], inside["order_id"], inside["correlation_id"]) == (
        "billing", "us", 7, "corr-1")
    assert after["component"] == "billing" and "order_id" not in after and "region" not in after
    assert "correlation_id" not in after


def test_invocation_keys_do_not_leak_between_threads(obs_env):
    logger, out = make()
    barrier = threading.Barrier(2, timeout=5)

    def invocation(name: str) -> None:
        token = context.begin(context.Invocation(execution_id=name))
        logger.append_keys(worker=name)
        barrier.wait()
        logger.info("work")
        context.end(token)

    threads = [threading.Thread(target=invocation, args=(n,)) for n in ("t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((e["worker"], e["logging.googleapis.com/labels"]["execution_id"]) for e in entries(out)) == [
        ("t1", "t1"), ("t2", "t2")]


def test_the_debug_buffer_keeps_the_latest_lines_and_is_written_only_on_request(obs_env):
    obs_env(GCFKIT_LOG_BUFFER_SIZE="3")
    logger, out = make()
    invocation = context.Invocation(execution_id="e1")
    token = context.begin(invocation)
    for i in range(5):
        logger.debug("step %d", i, i=i)
    assert out.getvalue() == ""
    assert flush_debug_buffer(invocation) == 3
    context.end(token)
    lines = entries(out)
    assert [e["message"] for e in lines] == ["step 2", "step 3", "step 4"]
    assert all(e["debug_buffered"] and e["severity"] == "DEBUG" for e in lines)
    assert lines[0]["time"] < lines[2]["time"], "each line keeps the time it was logged at"


def test_the_rate_limiter_suppresses_a_hot_template_and_reports_it_once_per_window(obs_env):
    now = [1000.0]
    limiter = LogRateLimiter(per_second=1, burst=2, window_seconds=60, clock=lambda: now[0])
    logger, out = make(rate_limiter=limiter)
    for i in range(5):
        logger.warning("retrying %s", f"https://example.test/{i}")
    logger.info("another template")
    assert [e["message"] for e in entries(out)] == ["retrying https://example.test/0", "retrying https://example.test/1",
                                                      "another template"]
    now[0] += 61  # the window has passed; the next suppressed line triggers the summary
    for _ in range(4):
        logger.warning("retrying %s", "x")
    summary = [e for e in entries(out) if "rate_limit" in e]
    assert len(summary) == 1 and summary[0]["severity"] == "WARNING"
    assert summary[0]["rate_limit"]["suppressed"] == 3 + 1
    assert summary[0]["rate_limit"]["templates"][0] == {"severity": "WARNING", "template": "retrying %s",
                                                         "suppressed": 4}


def test_stdlib_logging_can_be_routed_through_the_logger(obs_env):
    logger, out = make()
    handler = capture_stdlib(logger, level="INFO", names=("obs.lib",))
    try:
        logging.getLogger("obs.lib").warning("pool at %d", 90, extra={"pool": "db"})
        logging.getLogger("obs.lib").debug("not shown")
    finally:
        logging.getLogger("obs.lib").removeHandler(handler)
    (entry,) = entries(out)
    assert entry["message"] == "pool at 90" and entry["pool"] == "db" and entry["logger"] == "obs.lib"
    assert entry["severity"] == "WARNING"
    source = entry["logging.googleapis.com/sourceLocation"]
    assert source["function"] == "test_stdlib_logging_can_be_routed_through_the_logger"
