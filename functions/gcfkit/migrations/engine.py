"""The runtime: what `up`, `down`, `validate`, `stamp`, `plan` and `status` do to a database.

Commands that write hold the MigrationLock. Every task of a parallel Cloud Run job runs the same
sequence; they meet in the records (compare-and-swap writes), the recorded split points and the range checkpoints,
so no task has to be special (see steps.py for why that stays exactly-once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcfkit.migrations.client import database_id
from gcfkit.migrations.dryrun import Overlay, ReadOnlyClient
from gcfkit.migrations.errors import (
    ChecksumDrift,
    IrreversibleMigration,
    LockLost,
    MigrationError,
    PlanMismatch,
    StepsChanged,
    ValidationFailed,
    down_remedy,
    remedy,
    restamp_remedy,
)
from gcfkit.migrations.lock import MigrationLock, read_lock
from gcfkit.migrations.ops import Operations
from gcfkit.migrations.revisions import Revision, load_revisions
from gcfkit.migrations.runtime import RampUp, Run, Settings, log
from gcfkit.migrations.tracking import (
    APPLIED,
    APPLYING,
    FAILED,
    FORGOTTEN,
    REVERTED,
    Record,
    RecordStore,
    drift,
    forgotten_problem,
    read_records,
)


@dataclass
class PlannedMigration:
    version: str
    name: str
    checksum: str
    irreversible: bool
    resumes: bool = False
    steps: list[dict] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    validation_checked: bool = True  # False: the plan held too many planned writes to validate it soundly
    error: str | None = None


@dataclass
class Plan:
    """What `up` would do now, found by a dry run. `plan_id` pins the versions and file checksums;
    `approved_irreversible` are the irreversible versions approved when planning, which `up --plan` applies."""

    project: str
    database: str
    migrations: list[PlannedMigration]
    problems: list[str]
    notes: list[str] = field(default_factory=list)
    approved_irreversible: list[str] = field(default_factory=list)
    to: str | None = None  # `plan --to V`: `up --plan` applies up to the same version

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def pinned(self) -> list[list[str]]:
        return [[m.version, m.checksum] for m in self.migrations]

    @property
    def plan_id(self) -> str:
        text = json.dumps([self.project, self.database, self.pinned])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "project": self.project, "database": self.database, "to": self.to,
                "ok": self.ok, "problems": self.problems, "notes": self.notes, "approved_irreversible":
                self.approved_irreversible, "migrations": [m.__dict__ for m in self.migrations]}


@dataclass
class StatusRow:
    revision: Revision | None
    record: Record | None
    drift: str | None

    @property
    def version(self) -> str:
        return self.revision.version if self.revision else self.record.version  # type: ignore[union-attr]

    @property
    def state(self) -> str:
        return "pending" if self.record is None else self.record.status  # reverted: pending again


class Engine:
    def __init__(self, client, directory: Path, settings: Settings | None = None):
        self.client = client
        self.directory = directory
        self.revisions = load_revisions(directory)
        self.settings = settings or Settings.from_env()
        self.records = RecordStore(client, self.settings.owner, self.settings.execution)
        self._read_only: ReadOnlyClient | None = None

    @property
    def read_only(self) -> ReadOnlyClient:
        if self._read_only is None:
            self._read_only = ReadOnlyClient.of(self.client)
        return self._read_only

    # -- reading ------------------------------------------------------------------------------------------

    def status(self) -> tuple[list[StatusRow], dict | None]:
        records = read_records(self.read_only)
        rows = [StatusRow(r, records.get(r.version), drift(r, records.get(r.version))) for r in self.revisions]
        known = {r.version for r in self.revisions}
        rows += [StatusRow(None, rec, None) for v, rec in sorted(records.items()) if v not in known]
        return rows, read_lock(self.read_only)

    def pending(self, records: dict[str, Record], to: str | None = None) -> list[Revision]:
        return [r for r in self.revisions if (to is None or int(r.version) <= int(to))
                and not (r.version in records and records[r.version].is_applied)]

    def problems(self, records: dict[str, Record]) -> list[str]:
        """Drift, records without files, interrupted reverts, forgotten migrations, pending versions below applied
        ones: what stops `up` and the deploy gate. Each starts with "migration <version> "."""
        found = [f"migration {r.label}: {text}" for r in self.revisions if (text := drift(r, records.get(r.version)))]
        known = {r.version for r in self.revisions}
        found += [f"migration {v} ({rec.name}) is {rec.status} in the database but {self.directory} has no file for "
                  "it (deployed from another branch?); restore the file" for v, rec in sorted(records.items())
                  if v not in known and rec.status != REVERTED]
        found += [f"migration {v} ({rec.name}) stopped while being reverted ({rec.error or 'down'}); finish it with "
                  f"{down_remedy(f'{int(v) - 1:04d}')}" for v, rec in sorted(records.items()) if rec.is_reverting]
        found += [forgotten_problem(r.label, r.version) for r in self.revisions
                  if r.version in records and records[r.version].status == FORGOTTEN]
        applied = [r for r in self.revisions if r.version in records and records[r.version].is_applied]
        if applied:
            newest = applied[-1]
            found += [f"migration {r.label} is pending but {newest.label} is already applied, so it would run after "
                      f"newer migrations and `down` would revert it out of order (merged from another branch?); "
                      f"renumber it above {newest.version} (rename the file and its `version`)"
                      for r in self.revisions if int(r.version) < int(newest.version) and r.version not in records]
            found += [f"migration {r.label} is {records[r.version].status} but {newest.label} is already applied; "
                      f"{'apply it again' if records[r.version].status == REVERTED else 'finish it'} only after "
                      f"reverting {newest.version} (`down` goes newest first), or renumber it above {newest.version}"
                      for r in self.revisions if int(r.version) < int(newest.version) and r.version in records
                      and records[r.version].status in (REVERTED, APPLYING, FAILED)
                      and not records[r.version].is_reverting]
        return found

    def plan(self, to: str | None = None, approved_irreversible: frozenset[str] = frozenset(),
             approve_with: Callable[[str], str] | None = None) -> Plan:
        """Dry-run every pending migration (each sees the planned writes of the ones before it) and validate.

        A migration that stopped part-way is dry-run from its checkpoints, as `up` would resume it.
        `approve_with(version)` says how the caller's user approves an irreversible migration."""
        approve_with = approve_with or (lambda v: f"pass --approve-irreversible {v} to `plan` (and `up`)")
        records = read_records(self.read_only)
        plan = Plan(self.client.project, database_id(self.client), [], self.problems(records), to=to)
        lock = read_lock(self.read_only)
        if lock and lock["silent_seconds"] <= float(lock.get("lease_seconds", 60)):
            plan.problems.append(f"a migration runner holds the lock right now ({', '.join(lock.get('holders', []))}"
                                 f", `{lock.get('command')}`); plan again when it has finished")
        overlay = Overlay(self.settings.overlay_limit)
        for revision in self.pending(records, to):
            record = records.get(revision.version)
            resumes = record is not None and record.direction == "up" and record.status in (APPLYING, FAILED)
            entry = PlannedMigration(revision.version, revision.name, revision.checksum, revision.irreversible,
                                     resumes=resumes)
            plan.migrations.append(entry)
            if any(_about(problem, revision.version) for problem in plan.problems):
                continue
            incomplete_before = overlay.truncated
            run = Run(self.client, self.read_only, revision, "up", self.settings, dry_run=True, overlay=overlay,
                      attempt=record.attempt if resumes and record else 0)
            try:
                revision.up(Operations(run))
            except Exception as exc:  # the plan reports every failure, with the migration it belongs to
                entry.error = _describe(exc)
                plan.problems.append(f"migration {revision.label}: up fails in the dry run: {entry.error}" + (
                    f" (this dry run saw the data without some writes of the migrations before it: {_overflow(overlay)}"
                    "; plan and apply those first with --to, then plan this one)" if incomplete_before else ""))
            entry.steps = [s.as_dict() for s in run.steps]
            if entry.error is None and overlay.truncated:
                entry.validation_checked = False  # it would see documents whose planned writes were not recorded
                if revision.irreversible or not self.settings.revert_on_failure:
                    why = ("it is irreversible" if revision.irreversible
                           else "reverting on failure is off (`up --no-revert`)")
                    plan.problems.append(
                        f"migration {revision.label}: its validation was NOT CHECKED ({_overflow(overlay)}), and `up` "
                        f"would not revert it if validation failed after applying: {why}. Raise the limit with "
                        f"GCFKIT_MIGRATION_OVERLAY_LIMIT (about 1 KB of memory per planned write; now "
                        f"{overlay.limit:,}) on a machine with the memory for it, or plan and apply the migrations "
                        f"before it first (--to), then plan again.")
            elif entry.error is None:
                entry.validation = self._validate(revision, overlay)
                if entry.validation:
                    plan.problems.append(f"migration {revision.label}: validation would fail after up: "
                                         + "; ".join(entry.validation))
            if revision.irreversible and revision.version in approved_irreversible:
                plan.approved_irreversible.append(revision.version)
            elif revision.irreversible:
                plan.problems.append(f"migration {revision.label} is irreversible and needs explicit approval: "
                                     f"{approve_with(revision.version)}")
        if overlay.truncated:
            unchecked = [m.version for m in plan.migrations if not m.validation_checked]
            plan.notes.append(f"{_overflow(overlay)}, so the validation of {', '.join(unchecked) or 'later migrations'}"
                              " was not checked (not a failure: `up` validates after applying and reverts a "
                              "migration whose validation fails; one it would not revert, irreversible or with "
                              "reverting on failure off, is a problem above). To check it before applying, plan and "
                              "apply fewer migrations at a time (--to) or raise the limit (GCFKIT_MIGRATION_OVERLAY_"
                              "LIMIT) on a machine with the memory for it.")
        return plan

    def validate(self) -> dict[str, list[str]]:
        """Run `validate` of every applied migration against the data as it is now (read-only)."""
        records = read_records(self.read_only)
        return {r.version: self._validate(r) for r in self.revisions
                if r.version in records and records[r.version].is_applied}

    def _validate(self, revision: Revision, overlay: Overlay | None = None) -> list[str]:
        run = Run(self.client, self.read_only, revision, "validate", self.settings, dry_run=overlay is not None,
                  overlay=overlay)
        try:
            revision.validate(Operations(run))
        except AssertionError as exc:
            run.failures.append(f"assertion failed: {exc}")
        except Exception as exc:
            run.failures.append(f"validate raised {_describe(exc)}")
        return run.failures

    # -- writing ------------------------------------------------------------------------------------------

    def up(self, to: str | None = None, pinned: list[list[str]] | None = None,
           approved_irreversible: frozenset[str] = frozenset()) -> list[Record]:
        """Apply pending migrations up to `to`; with `pinned` (a plan's versions + checksums) refuse anything else.
        An irreversible migration runs only if its version is in `approved_irreversible`."""
        with self._locked("up") as lock:
            records = read_records(self.client)
            for revision in self.revisions:
                self.records.refuse_after_sibling_revert(revision, records.get(revision.version))
            if problems := self.problems(records):
                raise ChecksumDrift("\n".join(problems))
            todo = self.pending(records, to)
            if pinned is not None and (mismatch := _mismatch(pinned, todo, records)):
                raise PlanMismatch(mismatch)
            if unapproved := [r for r in todo if r.irreversible and r.version not in approved_irreversible]:
                raise IrreversibleMigration(
                    f"up would apply irreversible migration(s) {', '.join(r.label for r in unapproved)} without "
                    f"approval, so nothing was applied. If you accept that their data cannot be restored, pass "
                    f"--approve-irreversible {','.join(r.version for r in unapproved)} (or apply a plan made with "
                    "that approval: `make migrate-plan ENV=<env> APPROVE_IRREVERSIBLE=...`, then `make migrate`).")
            if not todo:
                log("nothing to apply: every migration is applied")
            return [self._apply(revision, lock) for revision in todo]

    def _apply(self, revision: Revision, lock: MigrationLock) -> Record:
        before = self.records.get(revision.version)
        begun = self.records.begin(revision, "up")
        if begun is None:
            log(f"{revision.label}: already applied (by another task of this job)")
            return self.records.get(revision.version)  # type: ignore[return-value]
        record, resumed = begun
        log(f"{revision.label}: {'resuming' if resumed else 'applying'} (attempt {record.attempt})")
        run = self._run(revision, "up", record, lock)
        try:
            revision.up(Operations(run))
        except LockLost:
            raise
        except Exception as exc:
            lock.check()  # a runner that lost its lease leaves the record to the runner that took over
            # A refused step wrote nothing: an up that had reached every document (validation failed) still has.
            completed = (isinstance(exc, StepsChanged) and before is not None and before.attempt == record.attempt
                         and before.direction == "up" and before.up_completed)
            self.records.finish(record, FAILED, _touched(run), error=_describe(exc), up_completed=completed)
            raise MigrationError(
                f"migration {revision.label}: up failed: {_describe(exc)}\nCompleted batches are checkpointed: fix the "
                "cause and apply again, which resumes where it stopped. (Its down would also run on the documents up "
                "never reached, so `down` refuses a partly applied migration unless given --allow-partial; see "
                "docs/migrations.md, \"A migration that stopped part-way\".)") from exc
        failures = self._validate(revision)
        lock.check()  # a runner that lost its lease leaves the record to the runner that took over
        outcome = self.records.finish(record, FAILED if failures else APPLIED, _touched(run),
                                      error=("validation failed: " + "; ".join(failures)) if failures else None,
                                      up_completed=True)
        if outcome.status == APPLIED:
            log(f"{revision.label}: applied, {outcome.documents_touched} documents touched "
                f"({outcome.duration_seconds:.1f}s)")
            return outcome
        reason = outcome.error or "validation failed"
        if not reason.startswith("validation failed"):  # another task of this job failed in up itself
            raise MigrationError(f"migration {revision.label}: failed in another task of this job: {reason}")
        if revision.irreversible or not self.settings.revert_on_failure:
            why = "it is irreversible" if revision.irreversible else "reverting on failure is off"
            raise ValidationFailed(f"migration {revision.label}: {reason}\nThe data was left as `up` made it ({why}); "
                                   "inspect it, fix the migration or the data and apply again (it revalidates).")
        log(f"{revision.label}: {reason}; running down to revert it")
        self._revert(revision, lock)
        raise ValidationFailed(f"migration {revision.label}: {reason}\nIts down ran, so the data is as before and the "
                               "migration is pending again; fix it, then plan and apply again.")

    def down(self, to: str, allow_irreversible: bool = False, allow_partial: bool = False) -> list[Record]:
        """Revert applied migrations above `to`, newest first. One that stopped part-way in up is refused unless
        `allow_partial`: its down would also run on every document up never reached. One without a down() is refused
        even then: it would be recorded forgotten (restamp: applied) although up never reached every document."""
        with self._locked("down") as lock:
            records = read_records(self.client)
            targets = [r for r in reversed(self.revisions) if int(r.version) > int(to)
                       and r.version in records and records[r.version].status not in (REVERTED, FORGOTTEN)]
            orphans = [v for v, rec in records.items() if int(v) > int(to) and rec.status not in (REVERTED, FORGOTTEN)
                       and v not in {r.version for r in self.revisions}]
            if orphans:
                raise MigrationError(f"cannot revert {', '.join(sorted(orphans))}: applied but no file in "
                                     f"{self.directory}; restore the file(s) first")
            # A revert stopped part-way resumes with the file it started with (the checkpoints mean that file).
            drifted = [f"migration {r.label}: {text}" for r in targets
                       if (records[r.version].is_applied or records[r.version].is_reverting)
                       and (text := drift(r, records[r.version]))]
            if drifted:
                raise ChecksumDrift("\n".join(drifted))
            # Without a down() nothing would be reverted: the record would say forgotten (restamp: applied) while
            # its up never reached every document. Going past it needs it finished, or its data accepted by stamp.
            unfinished = [r for r in targets if r.down is None and records[r.version].is_partly_applied]
            if unfinished:
                raise MigrationError("\n".join(
                    f"migration {r.label} stopped part-way in up ({records[r.version].error or 'interrupted'}) and has "
                    "no down(), so `down` cannot revert it, and recording it forgotten would hide that its up never "
                    "reached every document (a later restamp would record it applied). Nothing was reverted. Resume "
                    "it first: fix the cause and apply again (`up` continues from its checkpoints), then run this "
                    "down again. If you accept its data as it is now, record it applied explicitly with "
                    f"{remedy(f'migrate-stamp ENV=<env> VERSION={r.version}', f'stamp {r.version}')}, then run this "
                    "down again." for r in unfinished))
            partial = [r for r in targets if records[r.version].is_partly_applied]
            if partial and not allow_partial:
                raise MigrationError("\n".join(
                    f"migration {r.label} is partly applied: its up stopped "
                    f"({records[r.version].error or 'interrupted'}) before reaching every document, and its down "
                    "would run on all of them, including those up never changed. Nothing was reverted. Finish it "
                    "first: fix the cause and apply again (it resumes from its checkpoints), then revert it. If its "
                    "down leaves documents that up did not change as they are (e.g. remove_field or rename_field "
                    "back), pass --allow-partial (make: ALLOW_PARTIAL=1)." for r in partial))
            blocked = [r.label for r in targets if r.irreversible]
            if blocked and not allow_irreversible:
                raise IrreversibleMigration(
                    f"down --to {to} would cross irreversible migration(s) {', '.join(blocked)}: their data cannot be "
                    "restored. Pass --allow-irreversible if you accept that (their down runs if they have one).")
            if not targets:
                log(f"nothing to revert above {to}")
            return [self._revert(revision, lock) for revision in targets]

    def _revert(self, revision: Revision, lock: MigrationLock) -> Record:
        begun = self.records.begin(revision, "down")
        if begun is None:
            return self.records.get(revision.version)  # type: ignore[return-value]
        record, resumed = begun
        log(f"{revision.label}: {'resuming the revert' if resumed else 'reverting'} (attempt {record.attempt})")
        run = self._run(revision, "down", record, lock)
        try:
            if revision.down is not None:
                revision.down(Operations(run))
        except LockLost:
            raise
        except Exception as exc:
            lock.check()  # a runner that lost its lease leaves the record to the runner that took over
            self.records.finish(record, FAILED, _touched(run), error=f"down failed: {_describe(exc)}")
            raise MigrationError(f"migration {revision.label}: down failed: {_describe(exc)}\nFix the cause and run "
                                 "`down` again: it resumes from its checkpoints.") from exc
        lock.check()
        if revision.down is None:
            outcome = self.records.finish(record, FORGOTTEN, 0, error=record.error)
            log(f"{revision.label}: irreversible and without down(), so its data stays as up left it; recorded as "
                f"forgotten: nothing applies it again until `restamp {revision.version}` records it applied")
            return outcome
        outcome = self.records.finish(record, REVERTED, _touched(run), error=record.error)
        log(f"{revision.label}: reverted, {outcome.documents_touched} documents touched")
        return outcome

    def stamp(self, version: str, mark_later_pending: bool = False) -> None:
        """Record every migration up to `version` as applied (with its current checksum), running nothing: adopting
        existing data. Versions above it that are applied (or part-way) are refused unless `mark_later_pending`
        (their records become pending while their data stays: for data restored from a backup)."""
        with self._locked("stamp"):
            records = read_records(self.client)
            later = self.check_stamp(version, mark_later_pending, records)
            for revision in self.revisions:
                if int(revision.version) <= int(version):
                    self.records.stamp(revision, APPLIED)
                elif revision.version in records and records[revision.version].status != REVERTED:
                    self.records.stamp(revision, REVERTED)  # only with mark_later_pending: `later` lists them
            log(f"stamped: {version} and below applied" + (f"; {', '.join(later)} now pending" if later else ""))

    def check_stamp(self, version: str, mark_later_pending: bool = False,
                    records: dict[str, Record] | None = None) -> list[str]:
        """What `stamp version` would record as pending although their data stays, e.g. ["0003 add locale
        (applied)"]; MigrationError if the version has no file, or if there are such versions and not
        `mark_later_pending`."""
        if version not in {r.version for r in self.revisions} and int(version) != 0:
            raise MigrationError(f"stamp {version}: no such version in {self.directory}; "
                                 f"known: {', '.join(r.version for r in self.revisions)} (or 0000 for none)")
        records = read_records(self.read_only) if records is None else records
        later = [f"{r.label} ({records[r.version].status})" for r in self.revisions if int(r.version) > int(version)
                 and r.version in records and records[r.version].status != REVERTED]
        if later and not mark_later_pending:
            raise MigrationError(
                f"stamp {version} would record {', '.join(later)} as pending, but it runs nothing, so their data "
                f"would stay as they left it and the next up would apply them again. Nothing was stamped. To undo "
                f"them, run {down_remedy(version)} first; to accept an edited file of one applied migration, use "
                f"{restamp_remedy('<version>')}. Only if their data really is not there any more (restored from a "
                "backup), pass --mark-later-pending (make: MARK_LATER_PENDING=1).")
        return later

    def restamp(self, version: str) -> Record:
        """Accept version's file as it is now, touching no other version: re-record the checksum of an applied
        migration (after an intended edit), record a forgotten one applied again, or let one that stopped part-way
        continue with its changed file."""
        revision = next((r for r in self.revisions if r.version == version), None)
        if revision is None:
            raise MigrationError(f"restamp {version}: no such version in {self.directory}; "
                                 f"known: {', '.join(r.version for r in self.revisions) or 'none'}")
        with self._locked("restamp"):
            record = self.records.restamp(revision)
            log(f"restamped {revision.label}: {record.status}, checksum {revision.short_checksum}")
            return record

    @contextmanager
    def _locked(self, command: str) -> Iterator[MigrationLock]:
        lock = MigrationLock(self.client, self.settings.owner, self.settings.group, command,
                             self.settings.lease_seconds)
        lock.acquire()
        if lock.took_over:
            log(lock.took_over)
        try:
            yield lock
        finally:
            try:
                lock.release()
            except Exception as exc:  # never hide the run's own outcome behind a failed release
                log(f"could not release the migration lock ({type(exc).__name__}: {exc}); it frees itself when its "
                    f"{self.settings.lease_seconds:.0f}s lease expires")

    def _run(self, revision: Revision, direction: str, record: Record, lock: MigrationLock) -> Run:
        ramp_up = RampUp(self.settings.task_count) if self.settings.ramp_up else None
        return Run(self.client, self.client, revision, direction, self.settings, attempt=record.attempt, lock=lock,
                   ramp_up=ramp_up)


def _touched(run: Run) -> int:
    return sum(step.touched for step in run.steps)


def _about(problem: str, version: str) -> bool:
    """Is this problem (from `problems`) about `version`?"""
    return problem.startswith((f"migration {version} ", f"migration {version}:"))


def _overflow(overlay: Overlay) -> str:
    return (f"the dry run planned more than {overlay.limit:,} writes (GCFKIT_MIGRATION_OVERLAY_LIMIT) and stopped "
            "recording them")


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MigrationError) else f"{type(exc).__name__}: {exc}"


def _mismatch(pinned: list[list[str]], todo: list[Revision], records: dict[str, Record]) -> str | None:
    """Why `todo` is not the plan `pinned`, or None. A planned version already applied from the same file is done,
    not a mismatch: a sibling task of a Cloud Run job (or an earlier execution) applied it."""
    planned = {v: c for v, c in pinned}
    now = {r.version: r.checksum for r in todo}
    done = {v for v, c in planned.items() if v not in now and v in records and records[v].is_applied
            and records[v].checksum == c}
    lines = [f"{v}: in the plan, but no longer pending" for v in planned if v not in now and v not in done]
    lines += [f"{v}: pending now, but not in the plan" for v in now if v not in planned]
    lines += [f"{v}: its file changed since the plan" for v in now if v in planned and planned[v] != now[v]]
    if not lines:
        return None
    return ("the plan does not match what would run now, so nothing was applied:\n  " + "\n  ".join(lines)
            + "\nmake a new plan (`make migrate-plan ENV=<env>`), review it, and apply that one")
