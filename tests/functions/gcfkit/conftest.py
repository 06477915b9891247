"""Fixtures for gcfkit's observability tests: a clean gcfkit state, and real functions-framework apps.

`served(app_file, target)` loads a function source with `functions_framework.create_app` (exactly what
`functions-framework --source ... --target ...` serves) and returns its Flask test client; `lines(capsys)`
parses every line written to stdout and fails the test if one of them is not a JSON object.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gcfkit import testing
from obs_checks import BASE_ENV

APPS = Path(__file__).parent / "apps"


@pytest.fixture
def obs_env(monkeypatch):
    """A deployed-function-like environment with every GCFKIT_* / LOG_* variable unset, and fresh gcfkit state."""
    import os

    for name in list(os.environ):
        if name.startswith(("GCFKIT_", "LOG_", "FUNCTION_")) or name in ("FIRESTORE_EMULATOR_HOST",):
            monkeypatch.delenv(name)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)

    def configure(**environ: str) -> None:
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        testing.reset()

    configure()
    yield configure
    monkeypatch.undo()  # the environment first: the reset below reads it
    testing.reset()


@pytest.fixture
def served(obs_env, monkeypatch):
    """Load apps/<file> with functions-framework and return the test client of `target`."""
    import functions_framework

    def serve(app_file: str, target: str, signature_type: str = "http", **environ: str):
        obs_env(**environ)
        # create_app writes FUNCTION_TARGET / FUNCTION_SIGNATURE_TYPE into os.environ: let monkeypatch undo it.
        monkeypatch.setenv("FUNCTION_TARGET", target)
        monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", signature_type)
        app = functions_framework.create_app(target, str(APPS / app_file), signature_type)
        return app.test_client()

    return serve


@pytest.fixture
def lines(capsys):
    """Call to get every stdout line written so far (since the last call) as parsed JSON objects."""
    return lambda: testing.log_lines(capsys.readouterr().out)

