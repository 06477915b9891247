"""gcfkit: runtime utilities bundled into every function (logging, metrics, errors, health, migrations, ...).

Importing this package must stay cheap (it is on every cold start): subpackages are imported by the
code that uses them, and no google-cloud client library is imported here. The names below are
resolved on first access, so `from gcfkit import Logger` imports the logging subpackage only.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Logger": "gcfkit.logging",
    "Metrics": "gcfkit.metrics",
    "HealthChecks": "gcfkit.health",
    "with_monitoring": "gcfkit.monitoring",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gcfkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
