"""The function bundle: a deterministic zip of `functions/`.

Same code -> same bytes -> same hash, on every machine, so the object name (which carries the hash) changes
exactly when the code does: changed code redeploys, unchanged code does not.

What makes the bytes reproducible:
- entries sorted by path, every timestamp 1980-01-01, every mode rw-r--r--, made on "unix";
- entries are *stored*, not deflated: deflate output depends on the zlib build (Debian's zlib, zlib-ng,
  Apple's fork each compress differently), so a compressed zip built on a laptop and in CI could differ
  for the same code. The sources are small text; Cloud Build unpacks them once per deploy.
What is left out: tests (`tests/` folders, `test_*.py`, `*_test.py`, `conftest.py`), caches and bytecode,
hidden files and folders (`.env`, `.git`, `.venv`, editor state). Symlinks are refused: the bundle must not
depend on what they point to on one machine.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kit.config import ENVIRONMENTS_DIR, FUNCTIONS_DIR, ConfigError, Environment

EXCLUDED_DIRS = {"__pycache__", "tests", "node_modules"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".log"}
EXCLUDED_FILES = {"conftest.py"}
REQUIRED_FILES = ("main.py", "requirements.txt")  # what the Python runtime and Cloud Build look for
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold
FILE_MODE = 0o100644  # regular file, rw-r--r--
MIGRATIONS_MAIN = "gcfkit/migrations/__main__.py"  # what the migration job runs


class BundleError(Exception):
    """`functions/` cannot be bundled; the message names the path and what to do."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    files: tuple[str, ...]
    entry_points: frozenset[str]  # names defined at the top level of main.py

    @property
    def short_hash(self) -> str:
        return self.sha256[:16]

    @property
    def object_name(self) -> str:
        """The object name in the source bucket: carries the hash, so new code is a new object."""
        return f"bundles/functions-{self.short_hash}.zip"


def _skipped_folder(name: str) -> bool:
    return name.startswith(".") or name in EXCLUDED_DIRS or name.endswith(".egg-info")


def _skipped_file(name: str) -> bool:
    return (name.startswith(".") or name in EXCLUDED_FILES or Path(name).suffix in EXCLUDED_SUFFIXES
            or (name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))))


def is_excluded(rel: Path) -> bool:
    """True for a file path (relative to the source folder) that never goes into the bundle."""
    *folders, name = rel.parts
    return any(_skipped_folder(part) for part in folders) or _skipped_file(name)


def bundle_files(source: Path = FUNCTIONS_DIR) -> list[str]:
    """Relative POSIX paths of what goes into the bundle, sorted."""
    if not source.is_dir():
        raise BundleError(f"{source}: no such folder; the bundle is made from the function sources")
    files = []
    for folder, dirnames, filenames in os.walk(source):  # does not descend into symlinked folders
        base = Path(folder)
        dirnames[:] = [d for d in dirnames if not _skipped_folder(d)]
        filenames = [f for f in filenames if not _skipped_file(f)]
        for name in (*dirnames, *filenames):
            if (base / name).is_symlink():
                raise BundleError(f"{base / name}: symlinks are not bundled (what they point to differs between "
                                  "machines); copy the file into functions/ instead")
        files += [(base / name).relative_to(source).as_posix() for name in filenames]
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise BundleError(f"{source}: missing {', '.join(missing)}; Cloud Functions' Python runtime loads entry "
                          "points from main.py and installs dependencies from requirements.txt")
    return sorted(files)


def build_bundle(output_dir: Path, source: Path = FUNCTIONS_DIR) -> Bundle:
    """Zip `source` into `output_dir/functions-<hash>.zip` (written atomically) and describe it."""
    files = bundle_files(source)
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".functions-{os.getpid()}.zip.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, whatever machine builds it
            archive.writestr(info, (source / name).read_bytes())
    digest = hashlib.sha256(partial.read_bytes()).hexdigest()
    path = output_dir / f"functions-{digest[:16]}.zip"
    partial.replace(path)  # atomic: a concurrent terraform never reads half a zip
    return Bundle(path=path, sha256=digest, files=tuple(files), entry_points=top_level_names(source / "main.py"))


def top_level_names(main: Path) -> frozenset[str]:
    """Functions, classes and imported or assigned names at the top level of main.py (parsed, never imported)."""
    try:
        tree = ast.parse(main.read_bytes(), filename=str(main))
    except SyntaxError as exc:
        raise BundleError(f"{main}:{exc.lineno}: not valid Python ({exc.msg}); fix it before synthesizing") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def check_environments(environments: Iterable[Environment], files: Iterable[str], entry_points: frozenset[str],
                       environments_dir: Path = ENVIRONMENTS_DIR) -> None:
    """What the env files run must be in the bundle: a typo fails here, not in a cloud build or a job run.

    `make validate` calls it with the sources as they are (nothing zipped), synthesis with the bundle it built.
    """
    files = set(files)
    errors = []
    for env in environments:
        problems = []
        for name, fn in env.functions.items():
            if fn.entry_point not in entry_points:
                close = difflib.get_close_matches(fn.entry_point, entry_points, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f": functions.{name}.entry_point: {fn.entry_point!r} is not defined at the top "
                                f"level of functions/main.py{hint}; allowed: a function defined or imported there")
        if env.migration_job is not None and MIGRATIONS_MAIN not in files:
            problems.append(f": migration_job: the bundle has no {MIGRATIONS_MAIN}, which the job runs "
                            "(python -m gcfkit.migrations up); add the migrations engine or remove migration_job")
        if problems:
            errors.append(ConfigError(environments_dir / f"{env.name}.yaml", problems))
    if errors:
        raise ConfigError.combined(errors)
