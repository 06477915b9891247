"""A step's identity across processes, on the real emulator: filter values computed at run time (a
DocumentReference, whose repr holds a memory address) are not part of it, so a fresh process resuming after a
kill -9 finds the step's progress; a finished step that was renamed is refused instead of run again; and a task
of a job that reaches a step a sibling task recorded a moment earlier uses that record."""

from __future__ import annotations

import copy
import time

import pytest
from gcfkit.migrations import MigrationError, steps
from migration_helpers import BUMP, BUMPED_ONCE, cli, engine, put

pytestmark = [pytest.mark.firestore, pytest.mark.slow]
LEASE = 1.0

# n += 1 (not idempotent: n == 2 shows a document migrated twice) on the items of owner o1, filtered on a
# DocumentReference built at run time. KILL_AT=step kills the process part-way through the step (after two
# batches of 8), KILL_AT=validate after the step finished but before the record is marked applied.
BY_OWNER = '''
import os
import signal


def bump(doc):
    if os.environ.get("KILL_AT") == "step" and doc.path == "items/d00020":
        os.kill(os.getpid(), signal.SIGKILL)
    doc.data["n"] += 1


def up(op):
    op.transform("items", bump, where=[("owner", "==", op.db.document("owners/o1"))], description="n += 1")


def down(op):
    pass


def validate(op):
    if os.environ.get("KILL_AT") == "validate":
        os.kill(os.getpid(), signal.SIGKILL)
    op.expect("items", lambda doc: doc.data["n"] == (1 if doc.data["owner"].id == "o1" else 0), "bumped once")
'''


def n_by_owner(client) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for snapshot in client.collection("items").stream():
        found.setdefault(snapshot.get("owner").id, []).append(snapshot.get("n"))
    return {owner: sorted(values) for owner, values in found.items()}


@pytest.mark.parametrize("kill_at", ["validate", "step"])
def test_a_fresh_process_resumes_a_step_filtered_on_a_document_reference(firestore, revisions, kill_at):
    put(firestore, "items", 30, data=lambda i: {"n": 0, "owner": firestore.document("owners/o1")})
    put(firestore, "items", 5, data=lambda i: {"n": 0, "owner": firestore.document("owners/o2")},
        ids=lambda i: f"x{i:05d}")
    revisions.add("0001", "bump", BY_OWNER)
    env = {"GCFKIT_MIGRATION_LEASE_SECONDS": str(LEASE), "GCFKIT_MIGRATION_PAGE_SIZE": "8"}
    killed = cli("--dir", str(revisions.directory), "up", env={**env, "KILL_AT": kill_at})
    assert killed.returncode == -9, killed.stderr
    expected_before = [1] * 30 if kill_at == "validate" else [0] * 14 + [1] * 16
    assert n_by_owner(firestore) == {"o1": expected_before, "o2": [0] * 5}
    assert firestore.document("_migrations/0001").get().get("status") == "applying"
    time.sleep(LEASE + 0.3)  # the killed runner's lease expires

    resumed = cli("--dir", str(revisions.directory), "up", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming (attempt 1)" in resumed.stderr
    assert n_by_owner(firestore) == {"o1": [1] * 30, "o2": [0] * 5}, "every item of o1 bumped exactly once"
    assert len(list(firestore.collection("_migrations/0001/steps").stream())) == 1


STRICT = '''
def bump(doc):
    doc.data["n"] += 1


def up(op):
    op.transform("items", bump, description="n += 1")


def down(op):
    pass


def validate(op):
    op.expect("items", lambda doc: doc.data["n"] == 1 and doc.data.get("x") == 1, "bumped once and x")
'''


def test_a_resumed_run_refuses_a_renamed_step_that_already_finished(firestore, revisions):
    put(firestore, "items", 30)
    path = revisions.add("0001", "one", STRICT)
    with pytest.raises(MigrationError, match="validation failed"):
        engine(firestore, revisions, revert_on_failure=False).up()
    assert [s.get("n") for s in firestore.collection("items").stream()] == [1] * 30
    original = path.read_text()
    # The fix of validate also renames the step (which already ran over every document).
    path.write_text(original.replace(' and doc.data.get("x") == 1', '').replace('"n += 1"', '"bump n"'))
    runner = engine(firestore, revisions, revert_on_failure=False)
    runner.restamp("0001")
    refusal = (r"step 1 of this run \(bump n \(items\)\) is not a step attempt 1 recorded, but that attempt already "
               r"finished a step on the same documents that this run has not reached: 'n \+= 1 \(items\)'")
    with pytest.raises(MigrationError, match=refusal) as refused:
        runner.up()
    assert "restore its description and function name" in str(refused.value)
    assert [s.get("n") for s in firestore.collection("items").stream()] == [1] * 30, "nothing bumped twice"
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["up_completed"]) == ("failed", True), "the refusal wrote nothing: up had finished"

    # What the message says: restore the step's name (keeping the fix), accept the file, apply again.
    path.write_text(original.replace(' and doc.data.get("x") == 1', ''))
    runner = engine(firestore, revisions, revert_on_failure=False)
    runner.restamp("0001")
    (record,) = runner.up()
    assert record.status == "applied"
    assert [s.get("n") for s in firestore.collection("items").stream()] == [1] * 30


def test_an_attempt_of_the_position_keyed_engine_filtered_on_a_reference_resumes(firestore, revisions):
    """That engine compared descriptions, which hold the filter values' repr (a memory address for a reference)."""
    owner = firestore.document("owners/o1")
    put(firestore, "items", 30, data=lambda i: {"n": 1 if i < 16 else 0, "owner": owner})
    revisions.add("0001", "bump", BY_OWNER)
    checksum = engine(firestore, revisions).revisions[0].checksum
    firestore.document("_migrations/0001").set({
        "version": "0001", "name": "bump", "checksum": checksum, "status": "failed", "attempt": 1, "direction": "up",
        "irreversible": False, "error": "interrupted", "documents_touched": 16, "stamped": False})
    stale = "<google.cloud.firestore_v1.document.DocumentReference object at 0x7f0000000000>"
    firestore.document("_migrations/0001/steps/001-up-001").set(
        {"description": f"n += 1 (items where owner == {stale})", "splits": [], "split": "one range",
         "source": f"items where owner == {stale}"})
    firestore.document("_migrations/0001/checkpoints/001-up-001-0000").set({
        "last": "items/d00015", "done": False, "read": 16, "updated": 16, "deleted": 0, "created": 0, "token": "t",
        "attempt": 1, "direction": "up", "owner": "old-host:1", "group": "old-host:1#0"})
    (record,) = engine(firestore, revisions).up()
    assert record.status == "applied"
    assert n_by_owner(firestore) == {"o1": [1] * 30}


def test_a_task_that_reaches_a_step_a_sibling_task_recorded_a_moment_earlier_uses_that_record(
        firestore, revisions, monkeypatch):
    """The race two tasks of a Cloud Run job start with (it failed a CI run): both reach step 1, both find it
    unrecorded, the sibling records it, then this task looks for unfinished steps it has not reached and finds
    the sibling's record of its own step. That is the same step, not a changed one."""
    put(firestore, "items", 30)
    revisions.add("0001", "bump", BUMP, BUMPED_ONCE)
    recorded_step = steps._recorded_step
    raced: list[str] = []

    def sibling_records_it_first(run, client, step, source):
        if raced:
            return recorded_step(run, client, step, source)
        raced.append(step.description)
        sibling = copy.copy(run)
        sibling.claimed = set()
        steps._record_step(sibling, step, source, 30)
        return None  # what this task read just before the sibling's write landed

    monkeypatch.setattr(steps, "_recorded_step", sibling_records_it_first)
    (record,) = engine(firestore, revisions, page_size=8).up()
    assert raced == ["n += 1 (items)"]
    assert record.status == "applied"
    assert sorted(s.get("n") for s in firestore.collection("items").stream()) == [1] * 30
