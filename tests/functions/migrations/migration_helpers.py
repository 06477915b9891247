"""Helpers for the migration tests: revision files in a temporary directory, engines on the real emulator,
a dump of every document (with update times) to prove what was, or was not, written, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from gcfkit.migrations import Engine, Settings

from kit.config import ROOT

FUNCTIONS_DIR = ROOT / "functions"


class Revisions:
    """A migrations directory under tmp_path. `add("0001", "bump", body)` writes 0001_bump.py."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, version: str, slug: str, *parts: str) -> Path:
        """Write NNNN_slug.py from `parts` of code (each dedented), after its version and name."""
        path = self.directory / f"{version}_{slug}.py"
        header = f'version = "{version}"\nname = {slug.replace("_", " ")!r}\n'
        path.write_text(header + "\n".join(textwrap.dedent(part) for part in parts))
        return path


# The tail of a revision whose up does n += 1 on items: validate fails for a document migrated twice.
BUMPED_ONCE = '''
def down(op):
    pass


def validate(op):
    op.expect("items", lambda doc: doc.data["n"] == 1, "bumped once")
'''

BUMP = '''
def up(op):
    def bump(doc):
        doc.data["n"] = doc.data.get("n", 0) + 1
    op.transform("items", bump, description="n += 1")


def down(op):
    def unbump(doc):
        doc.data["n"] = doc.data.get("n", 0) - 1
    op.transform("items", unbump, description="n -= 1")


def validate(op):
    op.expect("items", lambda doc: doc.data.get("n") == 1, "every item was bumped once")
'''


def settings(**overrides) -> Settings:
    return Settings.from_env({}, **{"progress": False, "ramp_up": False, **overrides})


def engine(client, revisions: Revisions, **overrides) -> Engine:
    return Engine(client, revisions.directory, settings(**overrides))


def put(client, collection: str, count: int, data=lambda i: {"n": 0}, ids=lambda i: f"d{i:05d}") -> list[str]:
    paths = []
    batch = client.batch()
    for i in range(count):
        ref = client.collection(collection).document(ids(i))
        batch.set(ref, data(i))
        paths.append(ref.path)
        if len(batch) == 500:
            batch.commit()
            batch = client.batch()
    if len(batch):
        batch.commit()
    return paths


def dump(client) -> dict[str, tuple[dict, object]]:
    """Every document of the database, subcollections included: path -> (data, update_time)."""
    found: dict[str, tuple[dict, object]] = {}

    def walk(collections):
        for collection in collections:
            for snapshot in collection.stream():
                found[snapshot.reference.path] = (snapshot.to_dict(), snapshot.update_time)
            for reference in collection.list_documents():  # documents that only hold subcollections too
                walk(reference.collections())

    walk(client.collections())
    return found


def cli(*args: str, env: dict[str, str | None] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m gcfkit.migrations ...` run from functions/, as the Cloud Run job runs it (env: None unsets)."""
    merged = {**os.environ, "GCFKIT_MIGRATION_PROGRESS": "0", **(env or {})}
    environ = {key: value for key, value in merged.items() if value is not None}
    return subprocess.run([sys.executable, "-m", "gcfkit.migrations", *args], cwd=FUNCTIONS_DIR, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    environ = {**os.environ, "GCFKIT_MIGRATION_PROGRESS": "0", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "gcfkit.migrations", *args], cwd=FUNCTIONS_DIR, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
