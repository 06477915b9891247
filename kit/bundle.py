"""The function bundle: a deterministic zip of `functions/`.

Same code -> same bytes -> same hash, so the object name (which carries the hash) changes exactly when
the code does. Entries are sorted, timestamps and permissions fixed; tests, caches and bytecode are left out.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kit.config import ROOT

FUNCTIONS_DIR = ROOT / "functions"
EXCLUDED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".venv"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".log"}
EXCLUDED_NAMES = {".DS_Store", ".env"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    files: tuple[str, ...]

    @property
    def object_name(self) -> str:
        return f"bundles/functions-{self.sha256[:16]}.zip"


def bundle_files(source: Path = FUNCTIONS_DIR) -> list[str]:
    """Relative POSIX paths of what goes into the bundle, sorted."""
    files = []
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if not path.is_file() or any(part in EXCLUDED_DIRS for part in rel.parts[:-1]):
            continue
        if path.suffix in EXCLUDED_SUFFIXES or path.name in EXCLUDED_NAMES or path.name.startswith("test_"):
            continue
        files.append(rel.as_posix())
    return sorted(files)


def build_bundle(output: Path, source: Path = FUNCTIONS_DIR) -> Bundle:
    files = bundle_files(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever machine builds it
            archive.writestr(info, (source / name).read_bytes())
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return Bundle(path=output, sha256=digest, files=tuple(files))
