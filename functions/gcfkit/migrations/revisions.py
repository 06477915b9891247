"""The revision directory: one small Python file per migration (Alembic's "script directory").

A revision file is named ``NNNN_slug.py`` and declares::

    version = "0002"                 # the file name's prefix; versions run in numeric order
    name = "rename problems.title"   # shown in status and plans
    irreversible = False             # optional; True: `down` past it needs --allow-irreversible

    def up(op): ...                  # op: gcfkit.migrations.Operations
    def down(op): ...                # may be omitted only when irreversible = True
    def validate(op): ...            # op.expect(...) checks run after up (and in dry-run plans)

The checksum (sha256 of the file, line endings normalised so a checkout on Windows does not drift)
is recorded when a migration is applied; a later change to an applied file is "checksum drift".
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from gcfkit.migrations.errors import RevisionFileError

FILE_NAME = re.compile(r"^(?P<version>\d{4,})_(?P<slug>[a-z0-9_]+)\.py$")


@dataclass(frozen=True)
class Revision:
    version: str
    name: str
    path: Path
    checksum: str
    up: Callable
    down: Callable | None
    validate: Callable
    irreversible: bool = False

    @property
    def label(self) -> str:
        return f"{self.version} {self.name}"

    @property
    def short_checksum(self) -> str:
        return self.checksum.removeprefix("sha256:")[:12]


def checksum(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def load_revisions(directory: Path) -> list[Revision]:
    """Every revision file in `directory`, ordered by version. RevisionFileError names the file and the fix."""
    if not directory.is_dir():
        raise RevisionFileError(f"{directory}: the migrations directory does not exist (pass --dir, or set "
                                "GCFKIT_MIGRATIONS_DIR)")
    revisions: dict[str, Revision] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name == "__init__.py":
            continue
        revision = _load(path)
        if revision.version in revisions:
            raise RevisionFileError(f"{path}: version {revision.version} is also declared by "
                                    f"{revisions[revision.version].path.name}; give one of them the next free number")
        revisions[revision.version] = revision
    return sorted(revisions.values(), key=lambda r: int(r.version))


def _load(path: Path) -> Revision:
    match = FILE_NAME.match(path.name)
    if not match:
        raise RevisionFileError(f"{path}: revision files are named NNNN_slug.py (e.g. 0004_add_user_locale.py); "
                                "rename it (`make migration NAME=...` creates a correctly named one)")
    module = _import(path)
    problems = []
    version, name = getattr(module, "version", None), getattr(module, "name", None)
    if version != match["version"]:
        problems.append(f"version = {version!r} must be the file name's prefix {match['version']!r}")
    if not isinstance(name, str) or not name.strip():
        problems.append("name = '...' (a short description) is missing")
    irreversible = getattr(module, "irreversible", False)
    if not isinstance(irreversible, bool):
        problems.append(f"irreversible must be True or False, got {irreversible!r}")
    for function in ("up", "validate") if irreversible else ("up", "down", "validate"):
        if not callable(getattr(module, function, None)):
            problems.append(f"def {function}(op) is missing" + (
                " (or set irreversible = True if it cannot be undone)" if function == "down" else ""))
    if problems:
        raise RevisionFileError(f"{path}: " + "; ".join(problems))
    return Revision(version=match["version"], name=name.strip(), path=path, checksum=checksum(path),
                    up=module.up, down=getattr(module, "down", None), validate=module.validate,
                    irreversible=irreversible)


def _import(path: Path) -> ModuleType:
    # A private module name per file: revision files are not importable as a package, and two
    # directories (tests, the kit) can hold the same version without clashing in sys.modules.
    spec = importlib.util.spec_from_file_location(f"_gcfkit_revision_{abs(hash(path.resolve()))}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise RevisionFileError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    return module
