"""The command layer (Alembic's command.py): what each CLI command does and prints.

`python -m gcfkit.migrations` parses arguments and calls these; the kit's deploy gate (kit/migrate.py)
calls the same functions, so a command behaves the same from a laptop, CI, or a Cloud Run job.
Results go to stdout (tables, plans); logs and progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TextIO

from gcfkit.migrations.engine import Engine, Plan, StatusRow
from gcfkit.migrations.errors import MigrationError

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "migrations"  # functions/migrations in the bundle


def version(text: str) -> str:
    """argparse type of a version argument (0002; 0000 means before the first migration)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a version; versions are numbers like 0002")
    return text


def migrations_directory(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("GCF_KIT_MIGRATIONS_DIR") or DEFAULT_DIRECTORY)


def make_client(project: str | None = None, database: str | None = None):
    from google.cloud import firestore

    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    return firestore.Client(project=project, database=database or os.environ.get("GCF_KIT_FIRESTORE_DATABASE"))


def status(engine: Engine, out: TextIO) -> int:
    rows, lock = engine.status()
    print(f"{'version':<8} {'status':<10} {'checksum':<13} {'applied/reverted':<21} {'docs':>8}  name", file=out)
    for row in rows:
        print(_status_line(row), file=out)
    if not rows:
        print(f"(no migrations in {engine.directory})", file=out)
    if lock:
        print(f"\nlock: held by {', '.join(lock.get('holders', []))} running `{lock.get('command')}`, last heartbeat "
              f"{lock['silent_seconds']:.0f}s ago (lease {float(lock.get('lease_seconds', 0)):.0f}s)", file=out)
    drifted = [row for row in rows if row.drift]
    for row in drifted:
        print(f"DRIFT {row.version}: {row.drift}", file=out)
    return 1 if drifted else 0


def _status_line(row: StatusRow) -> str:
    record, revision = row.record, row.revision
    name = revision.name if revision else f"{record.name if record else ''} (NO FILE)"
    checksum = (record.short_checksum if record and record.status != "reverted" else
                revision.short_checksum if revision else "")
    when = record.finished_at.strftime("%Y-%m-%d %H:%M:%S") if record and record.finished_at else ""
    flags = [f for f, on in (("DRIFT", row.drift), ("irreversible", revision and revision.irreversible),
                             ("stamped", record and record.stamped)) if on]
    error = f"\n         {record.error}" if record and record.error else ""
    touched = record.documents_touched if record and record.finished_at else ""
    return (f"{row.version:<8} {row.state:<10} {checksum:<13} {when:<21} {touched:>8}  {name}"
            f"{'  [' + ', '.join(flags) + ']' if flags else ''}{error}")


def render_plan(plan: Plan, out: TextIO) -> None:
    pending = len(plan.migrations)
    print(f"migration plan {plan.plan_id} for project {plan.project} (database {plan.database}): "
          f"{pending} pending", file=out)
    for m in plan.migrations:
        flags = ", ".join(f for f, on in (("IRREVERSIBLE", m.irreversible), ("resumes a partial run", m.resumes)) if on)
        print(f"\n  {m.version} {m.name}  [sha256 {m.checksum.removeprefix('sha256:')[:12]}]"
              f"{'  ' + flags if flags else ''}", file=out)
        for step in m.steps:
            print(f"    step {step['step']}: {step['description']}: {step['read']} read -> would update "
                  f"{step['updated']}, create {step['created']}, delete {step['deleted']}  "
                  f"[{step['split']}]", file=out)
            for sample in step["samples"]:
                print(f"      {sample['path']}: {_diff(sample)}", file=out)
        if m.error:
            print(f"    ERROR: {m.error}", file=out)
        elif m.validation:
            print(f"    validation FAILS: {'; '.join(m.validation)}", file=out)
        else:
            print("    validation: ok (against the data as it would be)", file=out)
    for note in plan.notes:
        print(f"\nnote: {note}", file=out)
    if plan.problems:
        print("\nproblems (nothing may run until they are fixed):", file=out)
        for problem in plan.problems:
            print(f"  - {problem}", file=out)
    else:
        print(f"\nplan ok: {pending} migration(s) would run" if pending else "\nplan ok: nothing to migrate", file=out)


def _diff(sample: dict) -> str:
    before, after = sample["before"], sample["after"]
    if after is None:
        parts = ["DELETE"]
    else:
        parts = []
        for key in sorted(before.keys() | after.keys()):
            if key not in before:
                parts.append(f"+ {key} = {_short(after[key])}")
            elif key not in after:
                parts.append(f"- {key} (was {_short(before[key])})")
            else:
                parts.append(f"~ {key}: {_short(before[key])} -> {_short(after[key])}")
    parts += sample.get("children", [])
    return "; ".join(parts) if parts else "(no field change)"


def _short(value, limit: int = 70) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_plan(plan: Plan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan.as_dict(), indent=2, default=str) + "\n")


def read_plan(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MigrationError(f"{path}: no plan file; make one with `plan --out {path}` (`make migrate-plan`)") from None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not {"plan_id", "project", "migrations"} <= data.keys():
        raise MigrationError(f"{path}: not a migration plan written by `plan --out`; make a new one")
    return data


def pinned_versions(plan: dict) -> list[list[str]]:
    return [[m["version"], m["checksum"]] for m in plan["migrations"]]


def validate(engine: Engine, out: TextIO) -> int:
    results = engine.validate()
    for version, failures in results.items():
        print(f"{version}: {'ok' if not failures else 'FAILS: ' + '; '.join(failures)}", file=out)
    if not results:
        print("no applied migrations to validate", file=out)
    return 1 if any(results.values()) else 0
