"""The command layer (Alembic's command.py): what each CLI command does and prints.

`python -m gcfkit.migrations` parses arguments and calls these; the kit's deploy gate (kit/migrate.py)
calls the same functions, so a command behaves the same from a laptop, CI, or a Cloud Run job.
Results go to stdout (tables, plans); logs and progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gcfkit.migrations.client import database_id
from gcfkit.migrations.engine import Engine, Plan, StatusRow
from gcfkit.migrations.errors import MigrationError, PlanFileError, PlanMismatch

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "migrations"  # functions/migrations in the bundle


def version(text: str) -> str:
    """argparse type of a version argument (0002; 0000 means before the first migration)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a version; versions are numbers like 0002")
    return text


def positive(text: str) -> int:
    """argparse type of a count that must be at least 1 (--workers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def versions(text: str) -> frozenset[str]:
    """Comma-separated versions ("0004,0005"): the one parser of irreversible-migration approvals, for the engine's
    `--approve-irreversible` and the kit's APPROVE_IRREVERSIBLE alike. Raises argparse.ArgumentTypeError."""
    found = frozenset(v.strip() for v in text.split(",") if v.strip())
    for text_version in found:
        version(text_version)
    return found


def migrations_directory(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("GCFKIT_MIGRATIONS_DIR") or DEFAULT_DIRECTORY)


def make_client(project: str | None = None, database: str | None = None):
    from google.cloud import firestore

    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    return firestore.Client(project=project, database=database or os.environ.get("GCFKIT_FIRESTORE_DATABASE"))


@contextmanager
def reported_errors(project: str | None = None) -> Iterator[None]:
    """Credentials and Firestore API errors as MigrationError (one line for the terminal, exit code 1)."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except GoogleAuthError as exc:
        raise MigrationError(f"no usable Google credentials to reach Firestore ({exc}); run `gcloud auth "
                             "application-default login` (a Cloud Run job uses its service account), or set "
                             "FIRESTORE_EMULATOR_HOST to use an emulator") from None
    except (GoogleAPICallError, RetryError) as exc:
        where = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "the project"
        detail = getattr(exc, "message", None) or str(exc).strip() or "no details"
        raise MigrationError(f"Firestore of project {where} answered {type(exc).__name__} ({detail}); the command "
                             "stopped there. Check the project, --database and the credentials' access; `status` "
                             "shows what was recorded") from None


def status(engine: Engine, out: TextIO) -> int:
    rows, lock = engine.status()
    by = max([len("by"), *(len(row.record.applied_by) for row in rows if row.record)])
    print(f"{'version':<8} {'status':<10} {'checksum':<13} {'applied/reverted':<21} {'docs':>8}  {'by':<{by}}  name",
          file=out)
    for row in rows:
        print(_status_line(row, by), file=out)
    if not rows:
        print(f"(no migrations in {engine.directory})", file=out)
    if lock:
        print(f"\nlock: held by {', '.join(lock.get('holders', []))} running `{lock.get('command')}`, last heartbeat "
              f"{lock['silent_seconds']:.0f}s ago (lease {float(lock.get('lease_seconds', 0)):.0f}s)", file=out)
    drifted = [row for row in rows if row.drift]
    for row in drifted:
        print(f"DRIFT {row.version}: {row.drift}", file=out)
    return 1 if drifted else 0


def _status_line(row: StatusRow, by_width: int) -> str:
    record, revision = row.record, row.revision
    name = revision.name if revision else f"{record.name if record else ''} (NO FILE)"
    checksum = (record.short_checksum if record and record.status != "reverted" else
                revision.short_checksum if revision else "")
    when = record.finished_at.strftime("%Y-%m-%d %H:%M:%S") if record and record.finished_at else ""
    flags = [f for f, on in (("DRIFT", row.drift), ("irreversible", revision and revision.irreversible),
                             ("stamped", record and record.stamped)) if on]
    error = f"\n         {record.error}" if record and record.error else ""
    touched = record.documents_touched if record and record.finished_at else ""
    by = record.applied_by if record else ""
    return (f"{row.version:<8} {row.state:<10} {checksum:<13} {when:<21} {touched:>8}  {by:<{by_width}}  {name}"
            f"{'  [' + ', '.join(flags) + ']' if flags else ''}{error}")


def render_plan(plan: Plan, out: TextIO) -> None:
    pending = len(plan.migrations)
    print(f"migration plan {plan.plan_id} for project {plan.project} (database {plan.database}): "
          f"{pending} pending", file=out)
    for m in plan.migrations:
        irreversible = "IRREVERSIBLE (approved)" if m.version in plan.approved_irreversible else "IRREVERSIBLE"
        flags = ", ".join(f for f, on in ((irreversible, m.irreversible), ("resumes a partial run", m.resumes)) if on)
        print(f"\n  {m.version} {m.name}  [sha256 {m.checksum.removeprefix('sha256:')[:12]}]"
              f"{'  ' + flags if flags else ''}", file=out)
        for step in m.steps:
            resumed = f" (after {step['done_before']} already migrated)" if step.get("done_before") else ""
            print(f"    step {step['step']}: {step['description']}: {step['read']} read{resumed} -> would update "
                  f"{step['updated']}, create {step['created']}, delete {step['deleted']}  "
                  f"[{step['split']}]", file=out)
            for sample in step["samples"]:
                print(f"      {sample['path']}: {_diff(sample)}", file=out)
        if m.error:
            print(f"    ERROR: {m.error}", file=out)
        elif m.validation:
            print(f"    validation FAILS: {'; '.join(m.validation)}", file=out)
        elif not m.validation_checked:
            print("    validation: NOT CHECKED (too many planned writes to hold; see the note below)", file=out)
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan.as_dict(), indent=2, default=str) + "\n")
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot write the plan file ({exc.strerror or exc}); give a file path "
                            "you can write") from None


@dataclass(frozen=True)
class PlanFile:
    """A reviewed plan read back from its file: exactly what may be applied, and nothing else."""

    plan_id: str
    pinned: list[list[str]]  # [version, file checksum] of every migration, in order
    approved_irreversible: frozenset[str]
    to: str | None  # the plan's `--to`, if it had one

    @property
    def versions(self) -> list[str]:
        return [version for version, _ in self.pinned]


def read_plan(path: Path, client, make_plan: str | None = None) -> PlanFile:
    """The plan at `path`, if it can be applied to `client`'s database: written by `plan --out`, for this project
    and database, without problems. Otherwise MigrationError/PlanMismatch saying what to do; `make_plan` is how
    the caller's user makes a new plan (the engine's command unless the kit says otherwise)."""
    remedy = make_plan or f"`python -m gcfkit.migrations plan --out {path}`"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no plan file. Make one with {remedy}; review it, then apply it") from None
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan file ({exc.strerror or exc}); give the path of the "
                             f"file {remedy} wrote") from None
    except ValueError:
        data = None
    if (wrong := _plan_shape_problem(data)) is not None:
        raise PlanFileError(f"{path}: not a migration plan written by `plan --out` ({wrong}); make a new one with "
                             f"{remedy}")
    target = (client.project, database_id(client))
    if (data["project"], data["database"]) != target:
        raise PlanMismatch(f"{path} is a plan for project {data['project']} (database {data['database']}), not "
                           f"{target[0]} (database {target[1]}); make one for this database with {remedy}")
    if data.get("problems"):
        raise PlanMismatch(f"{path} has problems, so it cannot be applied; fix them and plan again with {remedy}:"
                           "\n  - " + "\n  - ".join(map(str, data["problems"])))
    return PlanFile(data["plan_id"], [[m["version"], m["checksum"]] for m in data["migrations"]],
                    frozenset(data.get("approved_irreversible") or ()), data.get("to"))


def _plan_shape_problem(data: Any) -> str | None:
    """What is wrong with the structure of a plan file's JSON, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, kind in (("plan_id", str), ("project", str), ("database", str), ("migrations", list)):
        if not isinstance(data.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    for i, migration in enumerate(data["migrations"]):
        if not isinstance(migration, dict) or not all(isinstance(migration.get(k), str) and migration[k]
                                                      for k in ("version", "checksum")):
            return f"migrations[{i}] has no 'version' and 'checksum'"
        if not migration["version"].isdigit():
            return f"migrations[{i}].version {migration['version']!r} is not a version"
    approved = data.get("approved_irreversible") or []
    if not isinstance(approved, list) or not all(isinstance(v, str) and v.isdigit() for v in approved):
        return "'approved_irreversible' is not a list of versions"
    if not (data.get("to") is None or (isinstance(data["to"], str) and data["to"].isdigit())):
        return "'to' is not a version"
    if not isinstance(data.get("problems") or [], list):
        return "'problems' is not a list"
    return None


def apply_plan(engine: Engine, plan: PlanFile, approved_irreversible: frozenset[str] = frozenset()) -> list:
    """`up` of exactly the plan's versions and files; irreversible ones approved when planning (or now) may run."""
    return engine.up(plan.to, plan.pinned, plan.approved_irreversible | approved_irreversible)


def validate(engine: Engine, out: TextIO) -> int:
    results = engine.validate()
    for version, failures in results.items():
        print(f"{version}: {'ok' if not failures else 'FAILS: ' + '; '.join(failures)}", file=out)
    if not results:
        print("no applied migrations to validate", file=out)
    return 1 if any(results.values()) else 0
