"""Firestore data migrations: reversible, validated, dry-run, batched, resumable, locked.

Revision files live in `functions/migrations/` (one per version; see revisions.py for their shape) and
receive `op` (ops.Operations). Run them with `python -m gcfkit.migrations <status|plan|up|down|validate|stamp>`
or through the kit's gate (`make migrate-plan`, `make migrate`); docs/migrations.md is the guide.

Layout, after Alembic: command.py + __main__.py (what users type) -> engine.py (the runtime) ->
steps.py/source.py/documents.py (ranges, checkpointed batches, transforms) with lock.py, tracking.py,
dryrun.py; the revision files are the user's script directory. Never imported by gcfkit itself, so a
function's cold start does not pay for it.
"""

from gcfkit.migrations.documents import DELETE, Document
from gcfkit.migrations.dryrun import ReadOnlyClient
from gcfkit.migrations.engine import Engine, Plan
from gcfkit.migrations.errors import (
                                      ChecksumDrift,
                                      DocumentFailed,
                                      DryRunWriteRefused,
                                      IrreversibleMigration,
                                      LockHeld,
                                      LockLost,
                                      MigrationError,
                                      PlanFileError,
                                      PlanMismatch,
                                      RevisionFileError,
                                      StepsChanged,
                                      ValidationFailed,
)
from gcfkit.migrations.lock import MigrationLock
from gcfkit.migrations.ops import Operations
from gcfkit.migrations.revisions import Revision, load_revisions
from gcfkit.migrations.runtime import Settings

__all__ = ["DELETE", "ChecksumDrift", "Document", "DocumentFailed", "DryRunWriteRefused", "Engine",
           "IrreversibleMigration", "LockHeld", "LockLost", "MigrationError", "MigrationLock", "Operations", "Plan",
           "PlanFileError", "PlanMismatch", "ReadOnlyClient", "Revision", "RevisionFileError", "Settings",
           "StepsChanged", "ValidationFailed", "load_revisions"]
