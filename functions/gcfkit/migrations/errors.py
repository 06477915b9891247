"""What can go wrong in a migration run. Every message says what, where (file, version, document) and what to do."""

from __future__ import annotations


class MigrationError(Exception):
    """Base class: the run stopped; the message is meant for the person at the terminal."""

    exit_code = 1


class RevisionFileError(MigrationError):
    """A revision file in the migrations directory is malformed (wrong name, missing `up`, duplicate version...)."""

    exit_code = 2


class ChecksumDrift(MigrationError):
    """An applied migration's file changed after it was applied."""


class LockHeld(MigrationError):
    """Another runner holds the migration lock (its lease has not expired)."""

    exit_code = 3


class LockLost(MigrationError):
    """This runner's lease was taken over (it stalled longer than the lease); it stops before writing again."""

    exit_code = 3


class ValidationFailed(MigrationError):
    """A migration's `validate` found documents that do not have the expected shape."""


class StepsChanged(MigrationError):
    """A resumed run reached a step its attempt never recorded where starting it could migrate documents twice
    (a recorded step is unfinished, or a finished one on the same source was renamed). Nothing of it was written."""


class DocumentFailed(MigrationError):
    """A transform raised on one document; nothing of its batch was written."""


class DryRunWriteRefused(MigrationError):
    """Something tried to write through the dry-run client. Raised by the client itself, so it cannot be bypassed."""


class PlanFileError(MigrationError):
    """The plan file given to `up --plan` (or `plan --out`) cannot be read or written, or is not a plan."""


class PlanMismatch(MigrationError):
    """`up --plan` was given a plan that is not what would run now (other versions or changed files)."""


class IrreversibleMigration(MigrationError):
    """`up` would apply a migration marked `irreversible = True` that nobody approved (`--approve-irreversible`),
    or `down` would cross one without `--allow-irreversible`."""


def remedy(make_target: str, engine_command: str) -> str:
    """What to run, in both forms: most people type the make target, a Cloud Run job or CI the engine's command."""
    return f"`make {make_target}` (or `python -m gcfkit.migrations {engine_command}`)"


def restamp_remedy(version: str) -> str:
    return remedy(f"migrate-restamp ENV=<env> VERSION={version}", f"restamp {version}")


def down_remedy(version: str) -> str:
    return remedy(f"migrate-down ENV=<env> TO={version}", f"down --to {version}")
