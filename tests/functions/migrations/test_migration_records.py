"""What the records say, and the commands that change only records (stamp, restamp), on the real emulator:
an edited applied file is re-stamped alone, stamp never quietly un-records applied versions, an irreversible
migration taken down without a down() is never applied twice, pending versions below applied ones stop the
gate, and the remedy of a drifted revert is not the command that refuses."""

from __future__ import annotations

import pytest
from gcfkit.migrations import ChecksumDrift, MigrationError
from migration_helpers import BUMP, engine, put

pytestmark = pytest.mark.firestore

BUMP_OTHERS = BUMP.replace('"items"', '"others"')
NOOP = "def up(op):\n    pass\n\n\ndef down(op):\n    pass\n\n\ndef validate(op):\n    pass\n"


def n_of(client, collection: str) -> list[int]:
    return sorted(snapshot.get("n") for snapshot in client.collection(collection).select(["n"]).stream())


def status_of(client, version: str) -> str:
    return client.document(f"_migrations/{version}").get().get("status")


def two_applied(firestore, revisions):
    """0001 bumps items, 0002 bumps others; both applied once."""
    put(firestore, "items", 3)
    put(firestore, "others", 3)
    first = revisions.add("0001", "bump", BUMP)
    revisions.add("0002", "bump_others", BUMP_OTHERS)
    engine(firestore, revisions).up()
    assert n_of(firestore, "others") == [1, 1, 1]
    return first


def test_the_drift_remedy_restamps_only_that_version_so_nothing_is_applied_twice(firestore, revisions):
    first = two_applied(firestore, revisions)
    first.write_text(first.read_text() + "\n# an intended edit after it was applied\n")
    runner = engine(firestore, revisions)
    with pytest.raises(ChecksumDrift) as drifted:
        runner.up()
    message = str(drifted.value)
    assert "`make migrate-restamp ENV=<env> VERSION=0001` (or `python -m gcfkit.migrations restamp 0001`)" in message
    assert "migrate-stamp" not in message, "stamp would also un-record 0002"

    runner.restamp("0001")  # what the message says
    assert [status_of(firestore, v) for v in ("0001", "0002")] == ["applied", "applied"]
    assert runner.plan().ok and runner.up() == []
    assert n_of(firestore, "others") == [1, 1, 1] and n_of(firestore, "items") == [1, 1, 1], "nothing ran twice"
    record = firestore.document("_migrations/0001").get().to_dict()
    assert record["checksum"] == runner.revisions[0].checksum and record["stamped"]


def test_stamp_refuses_to_unrecord_applied_versions_above_it_unless_told(firestore, revisions):
    two_applied(firestore, revisions)
    runner = engine(firestore, revisions)
    with pytest.raises(MigrationError, match=r"stamp 0001 would record 0002 bump others \(applied\) as pending, but "
                                             r"it runs nothing.*Nothing was stamped.*--mark-later-pending"):
        runner.stamp("0001")
    assert status_of(firestore, "0002") == "applied", "refused before writing anything"
    assert runner.up() == [] and n_of(firestore, "others") == [1, 1, 1]

    # Data restored from a backup: the explicit flag records 0002 pending, so up applies it to that data.
    firestore.collection("others").document("d00000").update({"n": 0})
    runner.stamp("0001", mark_later_pending=True)
    assert [status_of(firestore, v) for v in ("0001", "0002")] == ["applied", "reverted"]


def test_restamp_refuses_a_version_with_nothing_to_restamp(firestore, revisions):
    revisions.add("0001", "noop", NOOP)
    with pytest.raises(MigrationError, match=r"restamp 0001: migration 0001 noop is pending, so there is no record"):
        engine(firestore, revisions).restamp("0001")
    with pytest.raises(MigrationError, match="restamp 0007: no such version"):
        engine(firestore, revisions).restamp("0007")
    assert not firestore.document("_migrations/0001").get().exists


IRREVERSIBLE_BUMP = BUMP.split("def down")[0] + '''
irreversible = True


def validate(op):
    op.expect("items", lambda doc: doc.data.get("n") == 1, "every item was bumped once")
'''


def test_an_irreversible_migration_taken_down_without_a_down_is_forgotten_and_never_applied_twice(
        firestore, revisions):
    put(firestore, "items", 3)
    revisions.add("0001", "bump", IRREVERSIBLE_BUMP)
    approved = frozenset({"0001"})
    runner = engine(firestore, revisions)
    runner.up(approved_irreversible=approved)
    runner.down("0000", allow_irreversible=True)
    assert status_of(firestore, "0001") == "forgotten"
    assert n_of(firestore, "items") == [1, 1, 1], "no down(): the data stays migrated"

    plan = runner.plan(approved_irreversible=approved)
    assert not plan.ok
    assert plan.problems[0].startswith("migration 0001 bump is forgotten: `down --allow-irreversible` went past it")
    assert "`make migrate-restamp ENV=<env> VERSION=0001`" in plan.problems[0]
    with pytest.raises(ChecksumDrift, match="0001 bump is forgotten"):
        runner.up(approved_irreversible=approved)
    assert n_of(firestore, "items") == [1, 1, 1], "not applied a second time"
    assert [row.state for row in runner.status()[0]] == ["forgotten"]

    runner.restamp("0001")
    assert status_of(firestore, "0001") == "applied" and runner.plan().ok and runner.up() == []
    assert n_of(firestore, "items") == [1, 1, 1]


def test_a_pending_version_below_an_applied_one_stops_plan_and_up(firestore, revisions):
    put(firestore, "items", 3)
    put(firestore, "others", 3)
    revisions.add("0001", "bump", BUMP)
    revisions.add("0003", "bump_others", BUMP_OTHERS)
    engine(firestore, revisions).up()
    revisions.add("0002", "merged", NOOP)  # merged from a branch after 0003 was applied
    runner = engine(firestore, revisions)
    plan = runner.plan()
    assert not plan.ok and [m.version for m in plan.migrations] == ["0002"]
    assert plan.problems == ["migration 0002 merged is pending but 0003 bump others is already applied, so it would "
                             "run after newer migrations and `down` would revert it out of order (merged from another "
                             "branch?); renumber it above 0003 (rename the file and its `version`)"]
    with pytest.raises(ChecksumDrift, match="0002 merged is pending but 0003 bump others is already applied"):
        runner.up()
    assert not firestore.document("_migrations/0002").get().exists

    (revisions.directory / "0002_merged.py").rename(revisions.directory / "0004_merged.py")
    renumbered = revisions.directory / "0004_merged.py"
    renumbered.write_text(renumbered.read_text().replace('version = "0002"', 'version = "0004"'))
    runner = engine(firestore, revisions)
    assert runner.plan().ok and [r.version for r in runner.up()] == ["0004"]


BUMP_WITH_BROKEN_DOWN = BUMP.replace('doc.data["n"] = doc.data.get("n", 0) - 1', 'raise ValueError("down is broken")')


def test_a_revert_whose_file_changed_names_a_remedy_other_than_itself(firestore, revisions):
    put(firestore, "items", 3)
    path = revisions.add("0001", "bump", BUMP_WITH_BROKEN_DOWN)
    engine(firestore, revisions).up()
    with pytest.raises(MigrationError, match="down failed"):
        engine(firestore, revisions).down("0000")
    path.write_text(path.read_text().replace('raise ValueError("down is broken")',
                                             'doc.data["n"] = doc.data.get("n", 0) - 1'))  # the fix

    with pytest.raises(ChecksumDrift) as refused:
        engine(firestore, revisions).down("0000")
    message = str(refused.value)
    assert "changed while its revert was part-way done" in message
    assert "Restore the file and run" in message and "accept it with `make migrate-restamp ENV=<env> VERSION=0001`" \
        in message, message
    assert n_of(firestore, "items") == [1, 1, 1], "nothing reverted with a file the checkpoints do not describe"

    runner = engine(firestore, revisions)
    runner.restamp("0001")  # the remedy: the fixed down finishes the revert
    runner.down("0000")
    assert status_of(firestore, "0001") == "reverted" and n_of(firestore, "items") == [0, 0, 0]
