"""`where` filters of the document utilities on the real emulator, past the first page."""

from __future__ import annotations

import pytest
from migration_helpers import engine, put

pytestmark = pytest.mark.firestore


def test_a_range_filter_pages_through_a_collection_larger_than_a_page(firestore, revisions, monkeypatch):
    monkeypatch.setenv("GCFKIT_MIGRATION_PAGE_SIZE", "50")
    put(firestore, "items", 300, data=lambda i: {"n": 0, "rank": i})
    revisions.add("0001", "low_ranks", '''
        def up(op):
            op.transform("items", lambda doc: doc.data.update(n=doc.data["n"] + 1), where=[("rank", "<", 200)])


        def down(op):
            pass


        def validate(op):
            pass
        ''')
    (record,) = engine(firestore, revisions).up()
    assert (record.status, record.documents_touched) == ("applied", 200)
    values = {s.get("rank"): s.get("n") for s in firestore.collection("items").stream()}
    assert all(n == (1 if rank < 200 else 0) for rank, n in values.items()) and len(values) == 300


def test_a_range_filter_plans_what_it_applies(firestore, revisions, monkeypatch):
    monkeypatch.setenv("GCFKIT_MIGRATION_PAGE_SIZE", "50")
    put(firestore, "items", 120, data=lambda i: {"n": 0, "rank": i if i % 2 else str(i)})  # mixed types too
    revisions.add("0001", "low_ranks", '''
        def up(op):
            op.transform("items", lambda doc: doc.data.update(n=1), where=[("rank", ">=", 100)])


        def down(op):
            pass


        def validate(op):
            op.expect("items", lambda doc: doc.data["n"] == 1, "high ranks are done", where=[("rank", ">=", 100)])
        ''')
    plan = engine(firestore, revisions).plan()
    assert plan.ok, plan.problems
    ((step,),) = [migration.steps for migration in plan.migrations]
    assert step["updated"] == 10, step  # odd ranks 101..119; even ones are text, which a number range leaves out
    assert plan.migrations[0].validation == [] and plan.migrations[0].validation_checked
