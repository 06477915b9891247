"""compare_and_swap (the lock's and the records' write path) on the real emulator: no lost updates, exact
replace semantics, and nothing left locked by a writer that dies (it holds no transaction)."""

from __future__ import annotations

import threading

import pytest
from gcfkit.migrations import MigrationError
from gcfkit.migrations.cas import compare_and_swap

pytestmark = pytest.mark.firestore


def test_two_concurrent_writers_lose_no_update(firestore):
    ref = firestore.document("counters/c")
    ref.set({"n": 0})

    def bump(change, snapshot):
        change.update(ref, {"n": snapshot.get("n") + 1})

    def writer():
        for _ in range(15):
            compare_and_swap(ref, bump, attempts=50)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ref.get().get("n") == 30


def test_set_replaces_the_document(firestore):
    ref = firestore.document("records/0001")
    compare_and_swap(ref, lambda change, snapshot: change.set(ref, {"status": "applying", "old.field": 1}))
    compare_and_swap(ref, lambda change, snapshot: change.set(ref, {"status": "applied"}))
    assert ref.get().to_dict() == {"status": "applied"}


def test_create_never_overwrites_an_existing_document(firestore):
    ref = firestore.document("records/0001")
    ref.set({"status": "applied"})
    written = ref.get().update_time
    with pytest.raises(MigrationError, match="records/0001 changed under every one of 3 attempts"):
        compare_and_swap(ref, lambda change, snapshot: change.create(ref, {"status": "new"}), attempts=3)
    assert ref.get().to_dict() == {"status": "applied"} and ref.get().update_time == written


def test_two_writers_racing_to_create_a_document_exactly_one_wins(firestore):
    ref = firestore.document("records/0002")
    both_read_it_absent = threading.Barrier(2)
    outcomes: dict[str, tuple[str, str]] = {}
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        reads: list[bool] = []

        def create_once(change, snapshot):
            reads.append(snapshot.exists)
            if len(reads) == 1:
                both_read_it_absent.wait(timeout=10)  # neither writes before both decided on "absent"
            if snapshot.exists:
                return "lost", snapshot.get("by")
            change.create(ref, {"by": name})
            return "won", name

        try:
            outcomes[name] = compare_and_swap(ref, create_once)
            assert reads[0] is False
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    (winner,) = [name for name, (outcome, _) in outcomes.items() if outcome == "won"]
    (loser,) = [name for name, (outcome, _) in outcomes.items() if outcome == "lost"]
    assert outcomes[loser] == ("lost", winner), "the loser re-read and saw the winner's document"
    assert ref.get().to_dict() == {"by": winner}


def test_decide_can_stop_without_writing(firestore):
    ref = firestore.document("records/0002")
    assert compare_and_swap(ref, lambda change, snapshot: "nothing to do") == "nothing to do"
    assert not ref.get().exists
