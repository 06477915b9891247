"""Compare-and-swap on one document: read it, decide, write only if it is unchanged since the read.

The lock and the migration records change this way instead of in transactions. A Firestore transaction
holds locks on what it read until it commits or the database expires it, so a runner killed inside one
(kill -9 lands anywhere, and the heartbeat runs four times a lease) leaves `_migrations/_lock` locked for
whoever comes next: on the emulator every later write to it fails with "Transaction lock timeout" for
minutes. A write with a precondition holds nothing: it is atomic on the server, and a runner that loses a
race gets FailedPrecondition, reads again and decides again.

    compare_and_swap(ref, decide)   # decide(change, snapshot) calls change.create/update/set/delete(ref, ...)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1 import DELETE_FIELD
from google.cloud.firestore_v1.field_path import FieldPath

from gcfkit.migrations.errors import MigrationError

# What a lost race looks like: the document changed (precondition), appeared (create) or went away.
LOST_RACE = (exceptions.FailedPrecondition, exceptions.Conflict, exceptions.NotFound)


class Change:
    """What `decide` wants written; same calls as a transaction's, applied with the read as precondition."""

    def __init__(self, ref):
        self.ref = ref
        self.operation: tuple[str, dict[str, Any] | None] | None = None

    def _record(self, ref, kind: str, fields: dict[str, Any] | None) -> None:
        if ref.path != self.ref.path or self.operation is not None:
            raise ValueError("compare_and_swap writes one operation to the document it read")
        self.operation = (kind, fields)

    def create(self, ref, fields: dict[str, Any]) -> None:
        self._record(ref, "create", fields)

    def update(self, ref, fields: dict[str, Any]) -> None:
        self._record(ref, "update", fields)

    def set(self, ref, fields: dict[str, Any]) -> None:
        self._record(ref, "set", fields)

    def delete(self, ref) -> None:
        self._record(ref, "delete", None)

    def apply(self, snapshot) -> None:
        kind, fields = self.operation
        ref = self.ref
        if not snapshot.exists:
            if kind in ("create", "set"):
                ref.create(fields)  # AlreadyExists (a Conflict) if another runner created it meanwhile
                return
            raise exceptions.NotFound(f"{ref.path} is gone")
        unchanged = firestore.Client.write_option(last_update_time=snapshot.update_time)
        if kind == "create":
            raise exceptions.AlreadyExists(f"{ref.path} exists")
        if kind == "delete":
            ref.delete(option=unchanged)
            return
        if kind == "set":  # replace: every field given, and the ones the document has beyond them removed
            fields = {**{key: DELETE_FIELD for key in snapshot.to_dict() if key not in fields}, **fields}
        ref.update({_quoted(key): value for key, value in fields.items()}, option=unchanged)


def compare_and_swap(ref, decide: Callable[[Change, Any], Any], attempts: int = 12) -> Any:
    """Run `decide(change, snapshot)` on a fresh read until its write lands unchallenged; return what it returned.

    `decide` may raise (LockHeld, ChecksumDrift, ...) to stop, or record no write. Lost races are retried with
    jittered backoff; after `attempts` the error says the document is too contended.
    """
    for attempt in range(attempts):
        snapshot = ref.get()
        change = Change(ref)
        result = decide(change, snapshot)
        if change.operation is None:
            return result
        try:
            change.apply(snapshot)
            return result
        except LOST_RACE:
            time.sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))
    raise MigrationError(f"{ref.path} changed under every one of {attempts} attempts to update it; another runner "
                         "keeps writing it. Retry; if it persists, `make migrate-status` shows who holds the lock.")


def _quoted(key: str) -> str:
    """A top-level field name as a field path (update() reads dots as nesting)."""
    return FieldPath(key).to_api_repr()
