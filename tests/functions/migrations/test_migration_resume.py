"""A migration that stopped part-way, on the real emulator: resuming finds each step's own progress even when
up branches, a changed step refuses instead of starting over, down refuses to run on documents up never
reached, and the plan of the resumed run is what that run would do."""

from __future__ import annotations

import pytest
from gcfkit.migrations import ChecksumDrift, MigrationError
from migration_helpers import BUMPED_ONCE, dump, engine, put

pytestmark = pytest.mark.firestore
BROKEN = "items/d00020"  # fails its transform until the test repairs it; pages of 8: 16 items commit before it

BUMP_UNLESS_BROKEN = '''
def bump(doc):
    if doc.data.get("broken"):
        raise KeyError("price")
    doc.data["n"] += 1
'''


def n_values(client) -> list[int]:
    return sorted(snapshot.get("n") for snapshot in client.collection("items").select(["n"]).stream())


def stop_part_way(firestore, revisions, *parts: str, **settings) -> None:
    """30 items; up fails on the 21st after committing two batches of 8; then the item is repaired."""
    put(firestore, "items", 30)
    firestore.document(BROKEN).set({"n": 0, "broken": True})
    revisions.add("0001", "bump", *parts)
    with pytest.raises(MigrationError, match=f"the transform failed on document {BROKEN}") as failed:
        engine(firestore, revisions, page_size=8, **settings).up()
    assert "revert the part that ran" not in str(failed.value)
    changed = [snapshot for snapshot in firestore.collection("items").stream()
               if snapshot.reference.path != BROKEN and snapshot.to_dict() != {"n": 0}]
    assert len(changed) == 16, "two batches of 8 committed"
    firestore.document(BROKEN).update({"broken": False})


def test_a_resumed_run_whose_up_skips_a_step_finds_each_steps_own_progress(firestore, revisions):
    put(firestore, "legacy", 2)
    stop_part_way(firestore, revisions, BUMP_UNLESS_BROKEN, '''
        def up(op):
            if op.count("legacy") > 0:  # a read-only branch: false once the first run dropped them
                op.transform("legacy", lambda doc: op.DELETE, description="drop legacy")
            op.transform("items", bump, description="n += 1")
        ''', BUMPED_ONCE)
    (record,) = engine(firestore, revisions, page_size=8).up()
    assert record.status == "applied"
    assert n_values(firestore) == [1] * 30, "every item bumped exactly once: none skipped, none twice"
    assert not list(firestore.collection("legacy").stream())


def test_a_resumed_run_whose_unfinished_step_changed_refuses_instead_of_starting_it_over(firestore, revisions):
    stop_part_way(firestore, revisions, BUMP_UNLESS_BROKEN, '''
        def up(op):
            op.transform("items", bump, description="n += 1")
        ''', BUMPED_ONCE)
    path = revisions.directory / "0001_bump.py"
    path.write_text(path.read_text().replace('description="n += 1"', 'description="bump n"'))
    runner = engine(firestore, revisions, page_size=8)
    runner.restamp("0001")  # accepting the edit: what changed is the step's identity
    with pytest.raises(MigrationError, match=r"step 1 of this run \(bump n \(items\)\) is not a step attempt 1 "
                                             r"recorded, while its step 'n \+= 1 \(items\)' stopped part-way"):
        runner.up()
    assert n_values(firestore) == [0] * 14 + [1] * 16, "nothing bumped twice"


BUMP_DOWN = '''
def down(op):
    def unbump(doc):
        doc.data["n"] -= 1
    op.transform("items", unbump, description="n -= 1")


def validate(op):
    op.expect("items", lambda doc: doc.data["n"] == 1, "bumped once")
'''


def test_down_refuses_a_partly_applied_migration_whose_down_would_reach_documents_up_never_changed(
        firestore, revisions):
    stop_part_way(firestore, revisions, BUMP_UNLESS_BROKEN, '''
        def up(op):
            op.transform("items", bump, description="n += 1")
        ''', BUMP_DOWN)
    with pytest.raises(MigrationError, match=r"(?s)0001 bump is partly applied: its up stopped .*Nothing was "
                                             r"reverted\. Finish it first.*--allow-partial"):
        engine(firestore, revisions, page_size=8).down("0000")
    assert n_values(firestore) == [0] * 14 + [1] * 16, "no never-migrated item went to -1"

    engine(firestore, revisions, page_size=8).up()  # the remedy: finish it, then revert it
    engine(firestore, revisions, page_size=8).down("0000")
    assert n_values(firestore) == [0] * 30


def test_down_allow_partial_reverts_a_partial_up_whose_down_skips_documents_up_did_not_change(firestore, revisions):
    stop_part_way(firestore, revisions, '''
        def up(op):
            def move(doc):
                if doc.data.get("broken"):
                    raise KeyError("price")
                doc.data["m"] = doc.data.pop("n")
            op.transform("items", move, description="n -> m")


        def down(op):
            op.rename_field("items", "m", "n")  # only where m exists: harmless on items up never reached


        def validate(op):
            pass
        ''')
    assert sum("m" in snapshot.to_dict() for snapshot in firestore.collection("items").stream()) == 16
    engine(firestore, revisions).down("0000", allow_partial=True)
    items = [snapshot.to_dict() for snapshot in firestore.collection("items").stream()]
    assert len(items) == 30 and all(set(item) <= {"n", "broken"} and item["n"] == 0 for item in items)
    assert firestore.document("_migrations/0001").get().get("status") == "reverted"


def test_the_plan_of_a_partly_applied_migration_resumes_from_its_checkpoints(firestore, revisions):
    stop_part_way(firestore, revisions, BUMP_UNLESS_BROKEN, '''
        def up(op):
            op.transform("items", bump, description="n += 1")
        ''', BUMPED_ONCE)
    before = dump(firestore)
    plan = engine(firestore, revisions, page_size=8).plan()
    assert plan.ok, plan.problems  # n += 1 is not safe to run twice: a plan from scratch would see n == 2
    (planned,) = plan.migrations
    assert planned.resumes and planned.validation == []
    (step,) = planned.steps
    assert (step["done_before"], step["read"], step["updated"]) == (16, 14, 14)
    assert "resumed from the checkpoints of attempt 1" in step["split"]
    assert dump(firestore) == before, "the plan wrote nothing"

    engine(firestore, revisions, page_size=8).up()
    assert n_values(firestore) == [1] * 30


def test_the_plan_still_reports_drift_of_a_partly_applied_migration(firestore, revisions):
    stop_part_way(firestore, revisions, BUMP_UNLESS_BROKEN, '''
        def up(op):
            op.transform("items", bump, description="n += 1")
        ''', BUMPED_ONCE)
    path = revisions.directory / "0001_bump.py"
    path.write_text(path.read_text() + "\n# edited while part-way done\n")
    runner = engine(firestore, revisions, page_size=8)
    assert any("changed while it was part-way done" in problem for problem in runner.plan().problems)
    with pytest.raises(ChecksumDrift, match="Restore the file and apply again"):
        runner.up()


def record_an_attempt_of_the_previous_engine(firestore, revisions, description: str) -> None:
    """What an engine that keyed steps by position left after stopping at items/d00016: step 001, one range."""
    put(firestore, "items", 30, data=lambda i: {"n": 1 if i < 16 else 0})
    revisions.add("0001", "bump", BUMP_UNLESS_BROKEN, f'''
        def up(op):
            op.transform("items", bump, description="{description}")
        ''', BUMPED_ONCE)
    checksum = engine(firestore, revisions).revisions[0].checksum
    firestore.document("_migrations/0001").set({
        "version": "0001", "name": "bump", "checksum": checksum, "status": "failed", "attempt": 1, "direction": "up",
        "irreversible": False, "error": "interrupted", "documents_touched": 16, "stamped": False})
    firestore.document("_migrations/0001/steps/001-up-001").set(
        {"description": "n += 1 (items)", "splits": [], "split": "one range", "source": "items"})
    firestore.document("_migrations/0001/checkpoints/001-up-001-0000").set({
        "last": "items/d00015", "done": False, "read": 16, "updated": 16, "deleted": 0, "created": 0, "token": "t",
        "attempt": 1, "direction": "up", "owner": "old-host:1", "group": "old-host:1#0"})


def test_an_attempt_of_the_position_keyed_engine_resumes_from_its_checkpoints(firestore, revisions):
    record_an_attempt_of_the_previous_engine(firestore, revisions, "n += 1")
    plan = engine(firestore, revisions).plan()
    assert plan.ok, plan.problems
    assert (plan.migrations[0].steps[0]["done_before"], plan.migrations[0].steps[0]["read"]) == (16, 14)
    engine(firestore, revisions).up()
    assert n_values(firestore) == [1] * 30


def test_an_attempt_of_the_position_keyed_engine_whose_step_differs_is_refused(firestore, revisions):
    record_an_attempt_of_the_previous_engine(firestore, revisions, "bump n")
    with pytest.raises(MigrationError, match=r"attempt 1 was started by an earlier version of the engine, which "
                                             r"identified steps by position: its step 1 was 'n \+= 1 \(items\)'"):
        engine(firestore, revisions).up()
    assert n_values(firestore) == [0] * 14 + [1] * 16


IRREVERSIBLE_WITHOUT_DOWN = '''
irreversible = True


def bump(doc):
    if doc.data.get("broken"):
        raise KeyError("price")
    doc.data["n"] += 1


def up(op):
    op.transform("items", bump, description="n += 1")


def validate(op):
    op.expect("items", lambda doc: doc.data["n"] == 1, "bumped once")
'''


def test_down_refuses_to_go_past_a_part_way_migration_without_down_even_with_allow_partial(firestore, revisions):
    put(firestore, "items", 30)
    firestore.document(BROKEN).set({"n": 0, "broken": True})
    revisions.add("0001", "bump", IRREVERSIBLE_WITHOUT_DOWN)
    with pytest.raises(MigrationError, match=f"the transform failed on document {BROKEN}"):
        engine(firestore, revisions, page_size=8).up(approved_irreversible=frozenset({"0001"}))
    firestore.document(BROKEN).update({"broken": False})
    runner = engine(firestore, revisions, page_size=8)
    with pytest.raises(MigrationError, match=r"migration 0001 bump stopped part-way in up \(.*\) and has no down\(\), "
                                             r"so `down` cannot revert it") as refused:
        runner.down("0000", allow_irreversible=True, allow_partial=True)
    assert "Resume it first" in str(refused.value) and "migrate-stamp ENV=<env> VERSION=0001" in str(refused.value)
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["direction"]) == ("failed", "up"), "not recorded forgotten"
    runner.restamp("0001")  # what the old engine turned into `applied` after the forgotten record
    assert firestore.document("_migrations/0001").get().get("status") == "failed"

    # Resuming it is what the message says first: it finishes every document, once.
    (record,) = engine(firestore, revisions, page_size=8).up(approved_irreversible=frozenset({"0001"}))
    assert record.status == "applied"
    assert n_values(firestore) == [1] * 30
    (gone,) = engine(firestore, revisions, page_size=8).down("0000", allow_irreversible=True)
    assert gone.status == "forgotten"
