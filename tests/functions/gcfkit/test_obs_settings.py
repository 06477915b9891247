"""GCFKIT_* settings: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

import pytest
from gcfkit.settings import Settings, SettingsError


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


@pytest.mark.parametrize("environ, message", [
    ({"GCFKIT_METRICS_EXPORT": "stdout"}, "GCFKIT_METRICS_EXPORT='stdout': allowed: log, monitoring, off"),
    ({"GCFKIT_LOG_SAMPLE_RATE": "2"}, "GCFKIT_LOG_SAMPLE_RATE='2': allowed: 0.0 <= value <= 1.0"),
    ({"GCFKIT_LOG_BUFFER_SIZE": "ten"}, "GCFKIT_LOG_BUFFER_SIZE='ten': expected an integer"),
    ({"GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS": "5"}, "GCFKIT_METRICS_EXPORT_INTERVAL_SECONDS='5': allowed: 10.0"),
    ({"GCFKIT_LOG_EVENT": "maybe"}, "GCFKIT_LOG_EVENT='maybe': allowed: true, false"),
    ({"GCFKIT_METRICS_NAMESPACE": "My-App"}, "GCFKIT_METRICS_NAMESPACE='My-App': allowed: lower-case letters"),
    ({"GCFKIT_MONITORING_ENDPOINT": "monitoring.googleapis.com:443"}, "expected 127.0.0.1:PORT or localhost:PORT"),
])
def test_a_bad_value_names_the_variable_and_what_is_allowed(environ, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(".", r"\.")) as error:
        Settings.from_env(environ)
    assert "environments/<env>.yaml" in str(error.value)
