"""compare_and_swap (the lock's and the records' write path) on the real emulator: no lost updates, exact
replace semantics, and nothing left locked by a writer that dies (it holds no transaction)."""

from __future__ import annotations

import threading

import pytest
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


def test_set_replaces_the_document_and_create_refuses_an_existing_one(firestore):
    ref = firestore.document("records/0001")
    compare_and_swap(ref, lambda change, snapshot: change.set(ref, {"status": "applying", "old.field": 1}))
    compare_and_swap(ref, lambda change, snapshot: change.set(ref, {"status": "applied"}))
    assert ref.get().to_dict() == {"status": "applied"}

    created = []

    def create_once(change, snapshot):
        created.append(snapshot.exists)
        if not snapshot.exists:
            change.create(ref, {"status": "new"})

    compare_and_swap(ref, create_once)
    assert created == [True] and ref.get().to_dict() == {"status": "applied"}


def test_decide_can_stop_without_writing(firestore):
    ref = firestore.document("records/0002")
    assert compare_and_swap(ref, lambda change, snapshot: "nothing to do") == "nothing to do"
    assert not ref.get().exists
