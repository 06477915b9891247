"""Tasks of one Cloud Run job execution meeting in the records, on the real emulator: a task that starts after
its siblings finished (parallelism below the task count), and races forced deterministically (a sibling task's
action is run at the moment it would have to land to do harm)."""

from __future__ import annotations

import threading

import pytest
from gcfkit.migrations import ValidationFailed, steps
from migration_helpers import BUMP, dump, engine, put

pytestmark = [pytest.mark.firestore, pytest.mark.slow]

# BUMP (n += 1 and back) with a validation that always fails, so `up` reverts it.
NEVER_VALID = BUMP.replace('doc.data.get("n") == 1, "every item was bumped once"',
                           'doc.data.get("x") == 1, "every item has x"')
assert NEVER_VALID != BUMP


def without_lock(documents: dict) -> dict:
    return {path: value for path, value in documents.items() if path != "_migrations/_lock"}


def task(client, revisions, index: int, count: int = 3, **overrides):
    return engine(client, revisions, execution="e-1", task_count=count, task_index=index, **overrides)


def test_a_task_starting_after_a_sibling_reverted_a_failed_validation_does_not_apply_it_again(firestore, revisions):
    """parallelism < task count: task 2 starts when task 0 has exited, after it applied the migration, found
    its validation failing and reverted it. Applying it again would migrate (and revert) every document again."""
    put(firestore, "items", 30)
    revisions.add("0001", "bump", NEVER_VALID)
    with pytest.raises(ValidationFailed, match="down ran"):
        task(firestore, revisions, 0, page_size=8).up()
    reverted = dump(firestore)
    assert firestore.document("_migrations/0001").get().get("status") == "reverted"

    refusal = (r"(?s)0001 bump: validation failed: 30 of 30 documents of items fail 'every item has x'.*"
               r"Another task of this job \(execution e-1\) applied it and reverted it for that \(attempt 2\).*"
               r"did not apply it again")
    with pytest.raises(ValidationFailed, match=refusal):
        task(firestore, revisions, 2, page_size=8).up()
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["attempt"]) == ("reverted", 2)
    assert {p: v for p, v in dump(firestore).items() if not p.startswith("_migrations")} == {
        p: v for p, v in reverted.items() if not p.startswith("_migrations")}, "no document written again"


def test_a_task_starting_while_a_sibling_reverts_a_failed_validation_says_so_and_writes_nothing(firestore, revisions):
    """parallelism < task count: task 2 starts while task 0 is reverting what failed its validation. It must not
    apply it, and its error says what is going on (not that a runner stopped part-way through a revert)."""
    put(firestore, "items", 30)
    revisions.add("0001", "bump", NEVER_VALID)
    first, late = task(firestore, revisions, 0, page_size=8), task(firestore, revisions, 2, page_size=8)
    seen: dict[str, object] = {}
    finish = first.records.finish

    def late_task_starts_during_the_revert(record, status, *args, **kwargs):
        if status == "reverted" and not seen:
            seen["status"] = firestore.document("_migrations/0001").get().get("status")
            seen["before"] = without_lock(dump(firestore))
            with pytest.raises(ValidationFailed) as refused:
                late.up()
            seen["error"], seen["after"] = str(refused.value), without_lock(dump(firestore))
        return finish(record, status, *args, **kwargs)

    first.records.finish = late_task_starts_during_the_revert
    with pytest.raises(ValidationFailed, match="down ran"):
        first.up()
    assert seen["status"] == "reverting"
    assert ("Another task of this job (execution e-1) is reverting it for that (attempt 2); this task did not apply "
            "it again. If that task stopped, finish the revert with") in seen["error"]
    assert "validation failed: 30 of 30 documents of items fail 'every item has x'" in seen["error"]
    assert "when its runner stopped" not in seen["error"]
    assert seen["after"] == seen["before"], "the late task wrote nothing (but joined and left the lock)"
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["attempt"]) == ("reverted", 2)


# Three steps on the same documents: n += 1, then m = n, then k = n.
THREE_STEPS = '''
def up(op):
    def bump(doc):
        doc.data["n"] = doc.data.get("n", 0) + 1

    def copy_m(doc):
        doc.data["m"] = doc.data["n"]

    def copy_k(doc):
        doc.data["k"] = doc.data["n"]

    op.transform("items", bump, description="n += 1")
    op.transform("items", copy_m, description="m = n")
    op.transform("items", copy_k, description="k = n")


def down(op):
    pass


def validate(op):
    op.expect("items", lambda doc: (doc.data["n"], doc.data["m"], doc.data["k"]) == (1, 1, 1), "bumped once, copied")
'''


def test_a_task_whose_sibling_got_a_step_further_while_it_looked_for_its_step_goes_on(
        firestore, revisions, monkeypatch):
    """Task 1 reaches step 2 and finds it unrecorded; before it looks for unfinished steps it has not reached,
    task 0 records step 2, migrates all of it and records step 3 (here: applies the rest of the migration).
    Step 3 is a step task 1 has yet to reach, not a changed or renamed one."""
    put(firestore, "items", 30)
    revisions.add("0001", "copy", THREE_STEPS)
    recorded_step = steps._recorded_step
    raced: list[str] = []
    sibling = task(firestore, revisions, 0, page_size=8)

    def sibling_gets_ahead(run, client, step, source):
        found = recorded_step(run, client, step, source)
        if run.settings.task_index == 1 and step.number == 2 and not raced:
            raced.append(step.description)
            assert found is None
            (applied,) = sibling.up()  # records step 2, migrates it, records and migrates step 3
            assert applied.status == "applied"
        return found

    monkeypatch.setattr(steps, "_recorded_step", sibling_gets_ahead)
    (record,) = task(firestore, revisions, 1, page_size=8).up()
    assert raced == ["m = n (items)"]
    assert record.status == "applied"
    assert {(s.get("n"), s.get("m"), s.get("k")) for s in firestore.collection("items").stream()} == {(1, 1, 1)}


def test_a_task_that_joins_a_siblings_revert_and_finishes_it_first_keeps_why_it_was_reverted(firestore, revisions):
    """Both tasks find the validation failing; task 0 starts the revert, task 1 joins it, and task 1's finish
    lands first. The record must still say why the migration was reverted."""
    put(firestore, "items", 30)
    revisions.add("0001", "bump", NEVER_VALID)
    first, second = task(firestore, revisions, 0, count=2), task(firestore, revisions, 1, count=2)
    second_validates, first_reverted, second_done = threading.Event(), threading.Event(), threading.Event()
    outcomes: dict[str, BaseException] = {}

    validate = second._validate

    def second_validates_late(revision, overlay=None):
        second_validates.set()
        assert first_reverted.wait(timeout=60)
        return validate(revision, overlay)

    second._validate = second_validates_late
    finish = first.records.finish

    def first_finishes_its_revert_last(record, status, *args, **kwargs):
        if status == "reverted":
            first_reverted.set()
            assert second_done.wait(timeout=60)
        return finish(record, status, *args, **kwargs)

    first.records.finish = first_finishes_its_revert_last

    def run(name, runner, done=None):
        try:
            runner.up()
        except BaseException as exc:
            outcomes[name] = exc
        finally:
            if done is not None:
                done.set()

    thread = threading.Thread(target=run, args=("second", second, second_done))
    thread.start()
    assert second_validates.wait(timeout=60)
    run("first", first)
    thread.join(timeout=60)
    assert isinstance(outcomes.get("first"), ValidationFailed), outcomes
    assert isinstance(outcomes.get("second"), ValidationFailed), outcomes
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["attempt"]) == ("reverted", 2)
    assert (record["error"] or "").startswith("validation failed: 30 of 30 documents of items fail"), record["error"]
    assert {s.get("n") for s in firestore.collection("items").stream()} == {0}
