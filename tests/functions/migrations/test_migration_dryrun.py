"""Dry runs write nothing: the read-only client refuses every write path at its gRPC channel, and a plan
whose migration tries to write anyway fails without a single changed byte. Plans see earlier plans' writes."""

from __future__ import annotations

import pytest
from gcfkit.migrations import DryRunWriteRefused, ReadOnlyClient
from migration_helpers import BUMP, dump, engine, put

pytestmark = pytest.mark.firestore


def test_every_write_path_of_the_read_only_client_is_refused(firestore):
    put(firestore, "items", 3)
    before = dump(firestore)
    guarded = ReadOnlyClient.of(firestore)
    item = guarded.document("items/d00000")
    attempts = {
        "document.set": lambda: item.set({"n": 9}),
        "document.update": lambda: item.update({"n": 9}),
        "document.delete": lambda: item.delete(),
        "document.create": lambda: guarded.document("items/new").create({"n": 1}),
        "collection.add": lambda: guarded.collection("items").add({"n": 1}),
        "batch": lambda: guarded.batch(),
        "bulk_writer": lambda: guarded.bulk_writer(),
        "transaction": lambda: guarded.transaction(),
        "GAPIC commit": lambda: guarded._firestore_api.commit(request={"database": guarded._database_string}),
        "GAPIC batch_write": lambda: guarded._firestore_api.batch_write(request={"database": guarded._database_string}),
        "transport commit": lambda: guarded._firestore_api._transport.commit(
            {"database": guarded._database_string}),
        "GAPIC delete_document": lambda: guarded._firestore_api.delete_document(
            request={"name": f"{guarded._database_string}/documents/items/d00001"}),
    }
    for what, attempt in attempts.items():
        with pytest.raises(DryRunWriteRefused, match=r"dry run: .* would write to Firestore"):
            attempt()
            pytest.fail(f"{what} was not refused")
    assert item.get().to_dict() == {"n": 0}, "reads work"
    assert dump(firestore) == before, "not one document or update time changed"


def test_a_migration_that_writes_directly_cannot_during_a_plan(firestore, revisions):
    put(firestore, "items", 3)
    revisions.add("0001", "sneaky", '''
        def up(op):
            for doc in op.db.collection("items").stream():  # bypasses the utilities: refused in dry runs
                doc.reference.update({"n": 100})

        def down(op):
            pass

        def validate(op):
            pass
        ''')
    before = dump(firestore)
    plan = engine(firestore, revisions).plan()
    assert not plan.ok
    assert plan.problems[0].startswith("migration 0001 sneaky: up fails in the dry run: dry run: a write batch")
    assert dump(firestore) == before, "nothing written, not even a _migrations record"


def test_plan_counts_samples_and_validates_against_the_planned_data(firestore, revisions):
    put(firestore, "items", 7)
    revisions.add("0001", "bump", BUMP)
    revisions.add("0002", "label", '''
        def up(op):
            op.transform("items", lambda doc: {**doc.data, "label": f"item {doc.data['n']}"})

        def down(op):
            op.remove_field("items", "label")

        def validate(op):
            op.expect("items", lambda doc: doc.data["label"] == "item 1", "labels carry the bumped n")
        ''')
    before = dump(firestore)
    plan = engine(firestore, revisions).plan()
    assert plan.ok, plan.problems
    first, second = plan.migrations
    assert first.steps[0]["read"] == 7 and first.steps[0]["updated"] == 7
    assert first.steps[0]["samples"][0] == {"path": "items/d00000", "before": {"n": 0}, "after": {"n": 1}}
    assert second.steps[0]["samples"][0]["after"] == {"label": "item 1"}, "0002 saw what 0001 would write"
    assert first.validation == [] and second.validation == []
    assert dump(firestore) == before


def test_plan_reports_a_validation_that_would_fail(firestore, revisions):
    put(firestore, "items", 2, data=lambda i: {"n": 5})
    revisions.add("0001", "bump", BUMP)
    plan = engine(firestore, revisions).plan()
    assert plan.problems == ["migration 0001 bump: validation would fail after up: 2 of 2 documents of items fail "
                             "'every item was bumped once' (e.g. items/d00000, items/d00001)"]


def test_plan_of_a_subcollection_move_sees_the_children_it_would_create(firestore):
    from gcfkit.migrations import Engine
    from migration_helpers import FUNCTIONS_DIR, settings

    from kit.migrate_seed import example_data, write

    write(firestore, example_data(users=3, problems=2, sessions=6))
    plan = Engine(firestore, FUNCTIONS_DIR / "migrations", settings()).plan()
    assert plan.ok, plan.problems
    sample = plan.migrations[2].steps[0]["samples"][0]
    assert sample["children"][0] == f"set {sample['path']}/attempts/0000"
    assert not list(firestore.collection_group("attempts").stream()), "only planned"


def test_past_the_planned_writes_limit_validation_is_not_checked_rather_than_failed(firestore, revisions,
                                                                                   monkeypatch):
    import io

    from gcfkit.migrations import command, dryrun

    monkeypatch.setattr(dryrun, "OVERLAY_LIMIT", 5)  # 200,000 in real plans
    put(firestore, "items", 3)
    put(firestore, "others", 10)
    revisions.add("0001", "bump", BUMP)
    revisions.add("0002", "bump_others", BUMP.replace('"items"', '"others"'))
    before = dump(firestore)
    plan = engine(firestore, revisions).plan()
    assert plan.ok, plan.problems  # the 5 unrecorded bumps of others would otherwise "fail" validation
    first, second = plan.migrations
    assert first.validation_checked and first.validation == [], "within the limit: validated as usual"
    assert not second.validation_checked and second.validation == []
    assert second.steps[0]["updated"] == 10, "counts and samples do not depend on the limit"
    assert plan.notes == ["the dry run planned more than 5 writes (GCFKIT_MIGRATION_OVERLAY_LIMIT) and stopped "
                          "recording them, so the validation of 0002 was not checked (not a failure: `up` validates "
                          "after applying and reverts a migration whose validation fails; one it would not revert, "
                          "irreversible or with reverting on failure off, is a problem above). To check it before "
                          "applying, plan and apply fewer migrations at a time (--to) or raise the limit "
                          "(GCFKIT_MIGRATION_OVERLAY_LIMIT) on a machine with the memory for it."]
    rendered = io.StringIO()
    command.render_plan(plan, rendered)
    assert "validation: NOT CHECKED (too many planned writes to hold; see the note below)" in rendered.getvalue()
    assert dump(firestore) == before


def test_past_the_limit_a_validation_checked_before_it_still_fails_the_plan(firestore, revisions, monkeypatch):
    from gcfkit.migrations import dryrun

    monkeypatch.setattr(dryrun, "OVERLAY_LIMIT", 5)
    put(firestore, "items", 3, data=lambda i: {"n": 5})
    put(firestore, "others", 10)
    revisions.add("0001", "bump", BUMP)
    revisions.add("0002", "bump_others", BUMP.replace('"items"', '"others"'))
    plan = engine(firestore, revisions).plan()
    assert plan.problems == ["migration 0001 bump: validation would fail after up: 3 of 3 documents of items fail "
                             "'every item was bumped once' (e.g. items/d00000, items/d00001, items/d00002)"]


@pytest.mark.parametrize("irreversible", [True, False])
def test_past_the_limit_an_unchecked_validation_up_would_not_revert_blocks_the_plan(firestore, revisions, monkeypatch,
                                                                                   irreversible):
    from gcfkit.migrations import dryrun

    monkeypatch.setattr(dryrun, "OVERLAY_LIMIT", 5)
    put(firestore, "items", 3)
    put(firestore, "others", 10)
    revisions.add("0001", "bump", BUMP)
    revisions.add("0002", "bump_others", ("irreversible = True\n" if irreversible else "")
                  + BUMP.replace('"items"', '"others"'))
    runner = engine(firestore, revisions, revert_on_failure=irreversible)  # the other case: reverting is off
    plan = runner.plan(approved_irreversible=frozenset({"0002"}))
    why = "it is irreversible" if irreversible else "reverting on failure is off (`up --no-revert`)"
    assert plan.problems == [
        "migration 0002 bump others: its validation was NOT CHECKED (the dry run planned more than 5 writes "
        "(GCFKIT_MIGRATION_OVERLAY_LIMIT) and stopped recording them), and `up` would not revert it if validation "
        f"failed after applying: {why}. Raise the limit with GCFKIT_MIGRATION_OVERLAY_LIMIT (about 1 KB of memory "
        "per planned write; now 5) on a machine with the memory for it, or plan and apply the migrations before it "
        "first (--to), then plan again."]
    assert not plan.ok

    # The setting the message names: with room for every planned write, validation is checked and the plan is ok.
    raised = engine(firestore, revisions, revert_on_failure=irreversible, overlay_limit=100)
    plan = raised.plan(approved_irreversible=frozenset({"0002"}))
    assert plan.ok, plan.problems
    assert all(m.validation_checked for m in plan.migrations)


def test_the_overlay_limit_is_read_from_the_environment():
    from gcfkit.migrations import Settings

    assert Settings.from_env({"GCFKIT_MIGRATION_OVERLAY_LIMIT": "1234"}).overlay_limit == 1234
    assert Settings.from_env({}).overlay_limit is None
    with pytest.raises(ValueError, match="GCFKIT_MIGRATION_OVERLAY_LIMIT must be at least 1"):
        Settings.from_env({"GCFKIT_MIGRATION_OVERLAY_LIMIT": "0"})
