"""The runtime package is cheap to import: lazy subpackages, no google-cloud client, no gcfkit.migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
CLIENTS = ("google.cloud.monitoring", "google.cloud.firestore", "google.api_core", "google.auth", "grpc",
           "gcfkit.migrations", "flask", "werkzeug")


def imported_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=FUNCTIONS, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "K_SERVICE": "api"})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_importing_the_package_imports_no_subpackage():
    modules = imported_after("import gcfkit")
    assert [m for m in modules if m.startswith("gcfkit.")] == []


def test_the_public_api_imports_no_client_library():
    modules = imported_after("from gcfkit import HealthChecks, Logger, Metrics, with_monitoring\n"
                             "Logger().info('x'); Metrics().increment('y')")
    assert [m for m in modules if m.startswith(CLIENTS)] == []
    assert "gcfkit.monitoring" in modules


def test_unknown_names_are_attribute_errors():
    import gcfkit

    try:
        gcfkit.Nope  # noqa: B018
    except AttributeError as error:
        assert "no attribute 'Nope'" in str(error)
    else:
        raise AssertionError("gcfkit.Nope should not exist")
