"""The `_migrations` collection: one record per version, changed only by compare-and-swap writes (cas.py).

    _migrations/{version}                      the record (status, checksum, attempt, who, when, how much)
    _migrations/{version}/steps/{step}         one per utility call of an attempt: its document-id split points
    _migrations/{version}/checkpoints/{range}  one per range: last migrated document id, done, counters
    _migrations/_lock                          the lease (gcfkit.migrations.lock)

Status moves applying -> applied, or applying -> failed (resumable: `up` again continues from the
checkpoints), or -> reverting -> reverted (down ran: the data is as before, so the version is pending
again). An irreversible migration without a down() that `down --allow-irreversible` crosses becomes
forgotten: not applied, but its data is still as up left it, so nothing applies it again until it is
re-stamped. `up_completed` tells an up that reached every document (then failed validation) from one
that stopped part-way. `execution` is the Cloud Run job execution whose task started the attempt: a task
of that execution starting late does not apply again what a sibling reverted after a failed validation.
An attempt number scopes steps and checkpoints, so a new attempt never reuses old progress.
Checkpoints are kept after a run: they are the audit trail of what ran, and a sibling task of a Cloud
Run job may still be reading them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore

from gcfkit.migrations.cas import compare_and_swap
from gcfkit.migrations.errors import ChecksumDrift, MigrationError, ValidationFailed, down_remedy, restamp_remedy
from gcfkit.migrations.revisions import Revision

COLLECTION = "_migrations"
APPLYING, APPLIED, FAILED, REVERTING, REVERTED = "applying", "applied", "failed", "reverting", "reverted"
FORGOTTEN = "forgotten"  # reverted by `down --allow-irreversible` without a down(): its data is still migrated


@dataclass(frozen=True)
class Record:
    version: str
    name: str
    checksum: str
    status: str
    attempt: int = 0
    direction: str = "up"
    irreversible: bool = False
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_seconds: float | None = None
    applied_by: str = ""
    documents_touched: int = 0
    error: str | None = None
    stamped: bool = False
    up_completed: bool = False  # every step of up reached its end (validation may still have failed)
    execution: str | None = None  # the Cloud Run job execution whose task started this attempt

    @classmethod
    def from_snapshot(cls, snapshot) -> Record:
        fields = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in snapshot.to_dict().items() if k in fields})

    @property
    def is_applied(self) -> bool:
        return self.status == APPLIED

    @property
    def is_pending(self) -> bool:
        return self.status == REVERTED

    @property
    def is_partly_applied(self) -> bool:
        """An up that stopped before reaching every document (crashed, or failed on one)."""
        # Records written before `up_completed` existed say so in their error.
        return (self.direction == "up" and self.status in (APPLYING, FAILED) and not self.up_completed
                and not (self.error or "").startswith("validation failed"))

    @property
    def is_reverting(self) -> bool:
        """A down that stopped part-way: `down` again finishes it."""
        return self.direction == "down" and self.status in (REVERTING, FAILED)

    @property
    def short_checksum(self) -> str:
        return self.checksum.removeprefix("sha256:")[:12]


def records_ref(client):
    return client.collection(COLLECTION)


def read_records(client) -> dict[str, Record]:
    return {s.id: Record.from_snapshot(s) for s in records_ref(client).stream() if not s.id.startswith("_")}


def drift(revision: Revision, record: Record | None) -> str | None:
    """Why `record` no longer matches its file (with what to do), or None."""
    if record is None or record.checksum == revision.checksum or record.status in (REVERTED, FORGOTTEN):
        return None
    change = f"recorded checksum {record.short_checksum}, file now {revision.short_checksum}"
    accept = restamp_remedy(revision.version)
    if record.status == APPLIED:
        return (f"{revision.path.name} changed after it was applied ({change}); revert the file, or, if the change "
                f"is intended and the data already matches it, re-record its checksum with {accept} (no other "
                "version is touched)")
    if record.is_reverting:
        return (f"{revision.path.name} changed while its revert was part-way done ({record.status} down, {change}): "
                f"documents before its checkpoints were reverted by the old file. Restore the file and run "
                f"{down_remedy(_previous(revision.version))} again (it resumes); or, if the change is meant for the "
                f"documents not reverted yet, accept it with {accept}, then run that down again")
    state = "after its up ran (validation failed)" if not record.is_partly_applied else "while it was part-way done"
    return (f"{revision.path.name} changed {state} ({record.status} up, {change}): documents before its checkpoints "
            f"were migrated by the old file. Restore the file and apply again (it resumes from its checkpoints); "
            f"or, if the change is meant for the documents not migrated yet, accept it with {accept}, then apply "
            "again. Keep each utility call's description, collection, filter fields and function name as they were: "
            "the resumed run finds its steps by them, and refuses a step it does not recognise")


def forgotten_problem(revision_label: str, version: str) -> str:
    return (f"migration {revision_label} is forgotten: `down --allow-irreversible` went past it, but it has no "
            "down(), so its data is still as its up left it while the record says it is not applied. Nothing "
            f"applies it again: if its data is still migrated (most likely), record it applied with "
            f"{restamp_remedy(version)}")


class RecordStore:
    def __init__(self, client, applied_by: str, execution: str | None = None):
        self.client, self.applied_by, self.execution = client, applied_by, execution

    def ref(self, version: str):
        return records_ref(self.client).document(version)

    def get(self, version: str) -> Record | None:
        snapshot = self.ref(version).get()
        return Record.from_snapshot(snapshot) if snapshot.exists else None

    def refuse_after_sibling_revert(self, revision: Revision, current: Record | None) -> None:
        """A task of a job that starts after its siblings (parallelism below the task count, or a retried task)
        while, or after, one of them reverts what failed its validation: applying it again would migrate every
        document again, only for its validation to fail again and revert them again."""
        if current is None or not self.execution or current.execution != self.execution:
            return
        if current.status == REVERTED:
            doing = "applied it and reverted it for that"
        elif current.direction == "down" and current.status == REVERTING:
            doing = "is reverting it for that"
        else:
            return
        remedy = "" if current.status == REVERTED else (
            f" If that task stopped, finish the revert with {down_remedy(_previous(revision.version))}.")
        raise ValidationFailed(
            f"migration {revision.label}: {current.error or 'validation failed'}\nAnother task of this job (execution "
            f"{self.execution}) {doing} (attempt {current.attempt}); this task did not apply it again.{remedy} Fix "
            "the migration, then plan and apply again.")

    def begin(self, revision: Revision, direction: str) -> tuple[Record, bool] | None:
        """Start (or resume) `direction` for `revision`. Returns (record, resumed) or None when nothing is to do."""
        return self._transact(revision.version, lambda t, current: self._begin(t, revision, direction, current))

    def _begin(self, transaction, revision: Revision, direction: str, current: Record | None):
        running = APPLYING if direction == "up" else REVERTING
        if direction == "up":
            if current is not None and current.status == APPLIED:
                return None
            if current is not None and current.status == FORGOTTEN:
                raise MigrationError(forgotten_problem(revision.label, revision.version))
            self.refuse_after_sibling_revert(revision, current)
            if current is not None and current.is_reverting:
                raise MigrationError(
                    f"migration {revision.label}: it was being reverted ({current.error or 'down'}) when its runner "
                    f"stopped; finish that first with {down_remedy(_previous(revision.version))}, then apply again")
            resumable = current is not None and current.status in (APPLYING, FAILED)
        else:
            if current is None or current.status in (REVERTED, FORGOTTEN):
                return None
            resumable = current.is_reverting
        if resumable and current is not None:
            if current.checksum != revision.checksum:
                raise ChecksumDrift(f"migration {revision.label}: {drift(revision, current)}")
            # A run still under way (a sibling task of a job runs it, or its runner died) keeps its error: a
            # revert's says why it is reverted. A failed run's error is cleared as it resumes.
            resumed = {"status": running, "error": current.error if current.status == running else None,
                       "up_completed": False}
            transaction.update(self.ref(revision.version), resumed)
            return Record(**{**current.__dict__, **resumed}), True
        attempt = (current.attempt if current else 0) + 1
        fields: dict[str, Any] = {
            "version": revision.version, "name": revision.name, "checksum": revision.checksum, "status": running,
            "attempt": attempt, "direction": direction, "irreversible": revision.irreversible,
            "started_at": dt.datetime.now(dt.UTC), "finished_at": None, "duration_seconds": None,
            "applied_by": self.applied_by, "execution": self.execution, "documents_touched": 0, "stamped": False,
            "up_completed": False,
            "error": current.error if current and direction == "down" else None}
        transaction.set(self.ref(revision.version), fields)
        return Record(**fields), False

    def finish(self, record: Record, status: str, documents: int, error: str | None = None,
               up_completed: bool = False) -> Record:
        """Move `record`'s attempt to `status`, unless another task already moved it; returns the current record."""
        def change(transaction, current: Record | None):
            if current is None or current.attempt != record.attempt or current.status != record.status:
                return current
            now = dt.datetime.now(dt.UTC)
            started = current.started_at or now
            fields = {"status": status, "finished_at": now, "documents_touched": documents,
                      "duration_seconds": round((now - started).total_seconds(), 3), "error": error,
                      "up_completed": up_completed}
            transaction.update(self.ref(record.version), fields)
            return Record(**{**current.__dict__, **fields})
        return self._transact(record.version, change)

    def stamp(self, revision: Revision, status: str) -> None:
        self.ref(revision.version).set({
            "version": revision.version, "name": revision.name, "checksum": revision.checksum, "status": status,
            "irreversible": revision.irreversible, "finished_at": firestore.SERVER_TIMESTAMP,
            "applied_by": self.applied_by, "stamped": True, "error": None}, merge=True)

    def restamp(self, revision: Revision) -> Record:
        """Accept `revision`'s file as it is now: an applied (or forgotten) migration is recorded applied with its
        current checksum; one stopped part-way keeps its state and progress and continues with the file."""
        def change(transaction, current: Record | None):
            if current is None or current.status == REVERTED:
                raise MigrationError(
                    f"restamp {revision.version}: migration {revision.label} is "
                    f"{'pending' if current is None else 'reverted'}, so there is no record to re-stamp; plan and "
                    "apply it (or `stamp` it, with the versions below it, if its data is already migrated)")
            fields: dict[str, Any] = {"checksum": revision.checksum, "name": revision.name,
                                      "irreversible": revision.irreversible, "stamped": True}
            if current.status in (APPLIED, FORGOTTEN):
                fields.update(status=APPLIED, finished_at=dt.datetime.now(dt.UTC), applied_by=self.applied_by,
                              error=None)
            transaction.update(self.ref(revision.version), fields)
            return Record(**{**current.__dict__, **fields})
        return self._transact(revision.version, change)

    def _transact(self, version: str, body):
        return compare_and_swap(self.ref(version), lambda change, snapshot: body(
            change, Record.from_snapshot(snapshot) if snapshot.exists else None))


def _previous(version: str) -> str:
    return str(int(version) - 1).zfill(len(version))
