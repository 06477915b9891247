"""GCFKIT_* settings: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

import pytest
from gcfkit.settings import Settings, SettingsError, problems_in


def test_defaults_suit_a_deployed_function():
    config = Settings.from_env({"K_SERVICE": "api", "K_REVISION": "api-00001", "GOOGLE_CLOUD_PROJECT": "acme"})
    assert (config.service, config.revision, config.project) == ("api", "api-00001", "acme")
    assert config.log_level == "INFO" and config.metrics_export == "log" and config.metrics_interval_seconds == 60
    assert config.log_sample_rate == 0 and config.log_buffer_size == 100 and config.metrics_max_series == 100
    assert len(config.instance_id) == 16 and "authorization" in config.redact_keys
    assert Settings.from_env({}).service == "local" and Settings.from_env({}).project is None


def test_overrides():
    config = Settings.from_env({"LOG_LEVEL": "warn", "GCFKIT_METRICS_EXPORT": "MONITORING", "GCFKIT_LOG_EVENT": "yes",
                                "GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS": "10", "GCP_PROJECT": "legacy",
                                "GCFKIT_MONITORING_ENDPOINT": "localhost:8085", "GCFKIT_SERVICE_NAME": "billing"})
    assert config.log_level == "WARNING" and config.metrics_export == "monitoring" and config.log_event is True
    assert config.metrics_interval_seconds == 10 and config.project == "legacy" and config.service == "billing"
    assert config.monitoring_endpoint == "localhost:8085"
    with pytest.raises(AttributeError, match="read once"):
        config.log_level = "DEBUG"


BAD_VALUES = [
    ({"GCFKIT_METRICS_EXPORT": "stdout"}, "GCFKIT_METRICS_EXPORT", "got 'stdout'; allowed: log, monitoring, off"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL", "got 'verbose'; allowed: DEBUG, INFO, NOTICE, WARNING"),
    ({"GCFKIT_LOG_SAMPLE_RATE": "2"}, "GCFKIT_LOG_SAMPLE_RATE", "got '2'; allowed: 0.0 <= value <= 1.0"),
    ({"GCFKIT_LOG_BUFFER_SIZE": "ten"}, "GCFKIT_LOG_BUFFER_SIZE", "got 'ten'; allowed: an integer"),
    ({"GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS": "5"}, "GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS",
     "got '5'; allowed: 10.0 <= value"),
    ({"GCFKIT_LOG_EVENT": "maybe"}, "GCFKIT_LOG_EVENT", "got 'maybe'; allowed: true, false"),
    ({"GCFKIT_METRICS_NAMESPACE": "My-App"}, "GCFKIT_METRICS_NAMESPACE", "got 'My-App'; allowed: lower-case letters"),
    ({"GCFKIT_MONITORING_ENDPOINT": "monitoring.googleapis.com:443"}, "GCFKIT_MONITORING_ENDPOINT",
     "allowed: 127.0.0.1:PORT or localhost:PORT"),
]


@pytest.mark.parametrize("environ, name, message", BAD_VALUES)
def test_a_bad_value_names_the_variable_and_what_is_allowed(environ, name, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    text = str(error.value)
    assert f"environment variable {name}: got {environ[name]!r}; " in text and message in text
    # It cannot know which file (if any) the value came from, so it names none as the culprit.
    assert "environments/<env>.yaml, functions.<name>.env" in text


@pytest.mark.parametrize("environ, name, message", BAD_VALUES)
def test_problems_in_reports_the_same_problems_without_raising(environ, name, message):
    problems = problems_in(environ)
    assert len(problems) == 1 and problems[0][0] == name and message in problems[0][1], problems


def test_problems_in_checks_only_the_mapping_it_is_given(monkeypatch):
    monkeypatch.setenv("GCFKIT_METRICS_EXPORT", "bogus")  # os.environ is not read
    assert problems_in({}) == []
    assert problems_in({"LOG_LEVEL": "warn", "GCFKIT_METRICS_EXPORT": "Monitoring", "UNRELATED": "x",
                        "GCFKIT_LOG_EVENT": "", "K_SERVICE": "api"}) == []
    both = problems_in({"GCFKIT_LOG_LEVEL": "loud", "LOG_LEVEL": "verbose", "GCFKIT_METRICS_EXPORT": "bogus"})
    assert [name for name, _ in both] == ["GCFKIT_LOG_LEVEL", "LOG_LEVEL", "GCFKIT_METRICS_EXPORT"]


def test_every_bad_value_is_named_at_once():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"LOG_LEVEL": "verbose", "GCFKIT_METRICS_EXPORT": "bogus"})
    assert "LOG_LEVEL: got 'verbose'" in str(error.value) and "GCFKIT_METRICS_EXPORT: got 'bogus'" in str(error.value)


@pytest.mark.parametrize("configured", ["", "pinned"])
def test_each_forked_worker_is_an_instance_of_its_own(configured):
    """gunicorn (functions-framework with WORKERS > 1) forks after the function's module loaded: each worker
    needs its own instance id, or they write the same Cloud Monitoring series. Forks in a fresh interpreter."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = """
import json, os, sys
from gcfkit import context, settings
ids = {"master": (settings.current().instance_id, context.instance().instance_id)}
for worker in (1, 2):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, json.dumps([settings.current().instance_id, context.instance().instance_id,
                                    os.getpid()]).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    ids[worker] = json.loads(os.read(read, 1000))
print(json.dumps(ids))
"""
    functions = Path(__file__).resolve().parents[3] / "functions"
    env = {k: v for k, v in os.environ.items() if k != "GCFKIT_INSTANCE_ID"}
    if configured:
        env["GCFKIT_INSTANCE_ID"] = configured
    result = subprocess.run([sys.executable, "-c", script], cwd=functions, env=env, capture_output=True, text=True,
                            check=True, timeout=60)
    ids = json.loads(result.stdout)
    master = ids["master"][0]
    workers = [ids["1"], ids["2"]]
    assert ids["master"][1] == master
    for settings_id, instance_id, pid in workers:
        assert settings_id == instance_id != master
        if configured:
            assert settings_id == f"pinned-{pid}"
    assert workers[0][0] != workers[1][0]
