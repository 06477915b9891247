"""The engine on the real emulator: the shipped migrations, tracking, drift, validate -> down, irreversible
migrations, utilities, ranges, the CLI. Crash, lock and Cloud Run task tests are in test_migration_crash.py."""

from __future__ import annotations

import re
import socket

import pytest
from gcfkit.migrations import (
    ChecksumDrift,
    Engine,
    IrreversibleMigration,
    MigrationError,
    PlanMismatch,
    RevisionFileError,
    Settings,
    ValidationFailed,
    load_revisions,
)
from migration_helpers import BUMP, BUMPED_ONCE, FUNCTIONS_DIR, cli, dump, engine, put, settings

from kit.migrate_seed import example_data, write

pytestmark = pytest.mark.firestore
SHIPPED = FUNCTIONS_DIR / "migrations"


def data_only(client) -> dict[str, dict]:
    return {path: data for path, (data, _) in dump(client).items() if not path.startswith("_migrations")}


def n_values(client) -> list[int]:
    """n of every item (one query; dump() walks subcollections document by document)."""
    return [snapshot.get("n") for snapshot in client.collection("items").select(["n"]).stream()]


def test_shipped_migrations_plan_apply_validate_and_revert_to_the_original_data(firestore):
    write(firestore, example_data())
    original = data_only(firestore)
    attempts = sum(len(d["attempts"]) for p, d in original.items() if p.startswith("sessions/"))
    shipped = Engine(firestore, SHIPPED, settings())

    plan = shipped.plan()
    assert plan.ok, plan.problems
    assert [m.version for m in plan.migrations] == ["0001", "0002", "0003"]
    sessions = plan.migrations[2].steps[0]
    assert (sessions["updated"], sessions["created"]) == (120, attempts)
    assert plan.migrations[1].steps[0]["samples"][0]["after"].keys() == {"display_name"}

    applied = shipped.up()
    assert [r.status for r in applied] == ["applied"] * 3
    assert applied[2].documents_touched == 120 + attempts
    assert shipped.validate() == {"0001": [], "0002": [], "0003": []}
    user = firestore.document("users/u0000").get().to_dict()
    assert "name" not in user and user["display_name"] and user["preferences"]["theme"] == "system"
    session = original["sessions/s00000"]
    stored = firestore.document("sessions/s00000").get().to_dict()
    assert "attempts" not in stored and stored["attempt_count"] == len(session["attempts"])
    children = [d.to_dict() for d in firestore.collection("sessions/s00000/attempts").order_by("__name__").stream()]
    assert children == session["attempts"]

    shipped.down("0000")
    assert data_only(firestore) == original, "down of all three restores every document exactly"
    rows, lock = shipped.status()
    assert [row.state for row in rows] == ["reverted"] * 3 and lock is None


def test_up_to_and_down_to_go_in_order(firestore):
    write(firestore, example_data(users=5, problems=2, sessions=5))
    shipped = Engine(firestore, SHIPPED, settings())
    assert [r.version for r in shipped.up(to="0002")] == ["0001", "0002"]
    assert [m.version for m in shipped.plan().migrations] == ["0003"]
    assert [r.version for r in shipped.up()] == ["0003"]
    assert [r.version for r in shipped.down("0001")] == ["0003", "0002"], "newest first"
    assert [row.state for row in shipped.status()[0]] == ["applied", "reverted", "reverted"]


def test_checksum_drift_stops_up_and_plan_until_restamped(firestore, revisions):
    put(firestore, "items", 3)
    path = revisions.add("0001", "bump", BUMP)
    engine(firestore, revisions).up()
    path.write_text(path.read_text() + "\n# an edit after it was applied\n")
    changed = engine(firestore, revisions)
    with pytest.raises(ChecksumDrift, match=r"0001_bump.py changed after it was applied .*restamp 0001"):
        changed.up()
    assert any("changed after it was applied" in p for p in changed.plan().problems)
    assert changed.status()[0][0].drift
    changed.restamp("0001")
    assert changed.plan().ok and changed.up() == []


def test_failed_validation_runs_down_and_records_why(firestore, revisions):
    put(firestore, "items", 4)
    revisions.add("0001", "flag", '''
        def up(op):
            op.add_field("items", "flag", 1)

        def down(op):
            op.remove_field("items", "flag")

        def validate(op):
            op.expect("items", lambda doc: doc.data["flag"] == 2, "flag is 2")
        ''')
    with pytest.raises(ValidationFailed, match=r"(?s)0001 flag: validation failed: 4 of 4 documents of items fail "
                                               r"'flag is 2' \(e.g. items/d00000.*down ran"):
        engine(firestore, revisions).up()
    assert all("flag" not in data for data in data_only(firestore).values()), "down undid up"
    record = firestore.document("_migrations/0001").get().to_dict()
    assert record["status"] == "reverted" and record["error"].startswith("validation failed")

    with pytest.raises(ValidationFailed, match="reverting on failure is off"):
        engine(firestore, revisions, revert_on_failure=False).up()
    assert firestore.document("_migrations/0001").get().get("status") == "failed"
    assert firestore.document("items/d00001").get().get("flag") == 1, "kept for inspection"


def test_irreversible_migration_needs_an_explicit_flag_to_go_down(firestore, revisions):
    put(firestore, "items", 2)
    revisions.add("0001", "drop_legacy", '''
        irreversible = True

        def up(op):
            op.remove_field("items", "n")

        def validate(op):
            op.expect("items", lambda doc: "n" not in doc.data, "n is gone")
        ''')
    runner = engine(firestore, revisions)
    runner.up(approved_irreversible=frozenset({"0001"}))
    with pytest.raises(IrreversibleMigration, match=r"0001 drop legacy.*--allow-irreversible"):
        runner.down("0000")
    runner.down("0000", allow_irreversible=True)
    assert firestore.document("_migrations/0001").get().get("status") == "forgotten", "not pending: data unchanged"
    assert firestore.document("items/d00000").get().to_dict() == {}, "nothing could restore the data"


def test_a_failing_document_is_named_and_the_rerun_resumes_after_the_committed_batches(firestore, revisions):
    put(firestore, "items", 30)
    firestore.document("items/d00020").set({"n": 0, "broken": True})
    revisions.add("0001", "bump", '''
        def up(op):
            def bump(doc):
                if doc.data.get("broken"):
                    raise KeyError("price")
                doc.data["n"] += 1
            op.transform("items", bump)
        ''', BUMPED_ONCE)
    with pytest.raises(MigrationError, match=r"0001 bump: up failed: migration 0001: the transform failed on "
                                             r"document items/d00020: KeyError: 'price' \(.*0001_bump.py:"):
        engine(firestore, revisions, page_size=8).up()
    assert firestore.document("_migrations/0001").get().get("status") == "failed"
    bumped = [n for n in n_values(firestore) if n == 1]
    assert len(bumped) == 16, "the two full batches of 8 before the bad document are committed"

    firestore.document("items/d00020").update({"broken": False})
    engine(firestore, revisions, page_size=8).up()
    assert set(n_values(firestore)) == {1}, "resumed: nothing bumped twice"


def test_utilities_add_backfill_rename_remove_delete_and_collection_groups(firestore, revisions):
    put(firestore, "users", 3, data=lambda i: {"name": f"u{i}", "plan": None if i else "pro"})
    firestore.document("users/d00002").update({"theme": "dark"})
    put(firestore, "users/d00000/attempts", 3, data=lambda i: {"ok": i % 2 == 0})
    put(firestore, "users/d00001/attempts", 2, data=lambda i: {"ok": False})
    revisions.add("0001", "shapes", '''
        def up(op):
            op.add_field("users", "theme", "light")
            op.backfill("users", "plan", lambda doc: "free")
            op.rename_field("users", "name", "display_name")
            op.transform("attempts", lambda doc: {**doc.data, "scored": True}, group=True)
            op.delete_where("attempts", ("ok", "==", False), group=True)

        def down(op):
            pass

        def validate(op):
            op.expect("attempts", lambda doc: doc.data["scored"] and doc.data["ok"], "scored and ok", group=True)
        ''')
    runner = engine(firestore, revisions)
    runner.up()
    users = {p: d for p, d in data_only(firestore).items() if p.count("/") == 1}
    assert users["users/d00000"] == {"display_name": "u0", "plan": "pro", "theme": "light"}
    assert users["users/d00002"]["theme"] == "dark" and users["users/d00001"]["plan"] == "free"
    attempts = {p: d for p, d in data_only(firestore).items() if "/attempts/" in p}
    assert sorted(attempts) == ["users/d00000/attempts/d00000", "users/d00000/attempts/d00002"]
    steps = firestore.collection("_migrations/0001/checkpoints").stream()
    assert sum(s.get("deleted") for s in steps) == 3


def test_rename_onto_an_existing_field_names_the_document(firestore, revisions):
    firestore.document("users/ada").set({"name": "Ada", "display_name": "Countess"})
    revisions.add("0001", "rename", '''
        def up(op):
            op.rename_field("users", "name", "display_name")

        def down(op):
            op.rename_field("users", "display_name", "name")

        def validate(op):
            pass
        ''')
    with pytest.raises(MigrationError, match="users/ada has both 'name' and 'display_name'"):
        engine(firestore, revisions).up()


def test_a_document_the_application_changes_meanwhile_is_reread_not_overwritten(firestore, revisions):
    put(firestore, "items", 20)
    revisions.add("0001", "bump", '''
        from google.cloud import firestore
        app = firestore.Client()  # stands in for the application, writing while the migration runs
        raced = []

        def up(op):
            def bump(doc):
                if doc.id == "d00007" and not raced:
                    raced.append(1)
                    app.document(doc.path).update({"app": "wrote meanwhile"})
                doc.data["n"] += 1
            op.transform("items", bump)
        ''', BUMPED_ONCE)
    engine(firestore, revisions).up()
    assert firestore.document("items/d00007").get().to_dict() == {"n": 1, "app": "wrote meanwhile"}
    assert set(n_values(firestore)) == {1}


def test_ranges_split_without_partition_queries_cover_every_document_once(firestore, revisions):
    ids = [f"user-{i:05d}" for i in range(1200)] + [firestore.collection("items").document().id for _ in range(600)]
    put(firestore, "items", len(ids), ids=lambda i: ids[i])
    revisions.add("0001", "bump", BUMP)
    runner = engine(firestore, revisions, min_range_docs=100, workers=3, page_size=150)
    runner.up()
    (step,) = [s.to_dict() for s in firestore.collection("_migrations/0001/steps").stream()]
    assert step["number"] == 1 and step["description"] == "n += 1 (items)" and step["fingerprint"]
    assert len(step["splits"]) >= 3 and "interpolated between the first and last id" in step["split"]
    assert "partition queries are unimplemented (emulator)" in step["split"]
    assert sorted(set(n_values(firestore))) == [1] and len(n_values(firestore)) == 1800
    assert firestore.document("_migrations/0001").get().get("documents_touched") == 1800


def test_plan_pinned_to_other_versions_is_refused(firestore, revisions):
    put(firestore, "items", 2)
    revisions.add("0001", "bump", BUMP)
    pinned = engine(firestore, revisions).plan().pinned
    revisions.add("0002", "more", "def up(op): pass\ndef down(op): pass\ndef validate(op): pass\n")
    with pytest.raises(PlanMismatch, match="0002: pending now, but not in the plan"):
        engine(firestore, revisions).up(pinned=pinned)
    assert not firestore.document("_migrations/0001").get().exists, "nothing ran"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("1_bump.py", "", "revision files are named NNNN_slug.py"),
    ("0001_bump.py", 'version = "0002"\nname = "x"\ndef up(op): pass\ndef down(op): pass\ndef validate(op): pass\n',
     "version = '0002' must be the file name's prefix '0001'"),
    ("0001_bump.py", 'version = "0001"\nname = "x"\ndef up(op): pass\ndef validate(op): pass\n',
     r"def down\(op\) is missing \(or set irreversible = True"),
    ("0001_bump.py", "import nothing_like_this\n", "importing it failed: ModuleNotFoundError"),
])
def test_revision_file_mistakes_name_the_file(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(RevisionFileError, match=message) as failure:
        load_revisions(tmp_path)
    assert name in str(failure.value)


def test_cli_status_plan_up_and_exit_codes(firestore, revisions):
    put(firestore, "items", 5)
    revisions.add("0001", "bump", BUMP)
    folder = ["--dir", str(revisions.directory)]
    plan_file = revisions.directory.parent / "plan.json"
    planned = cli(*folder, "plan", "--out", str(plan_file))
    assert planned.returncode == 0, planned.stderr
    assert "0001 bump" in planned.stdout and "would update 5" in planned.stdout and plan_file.is_file()
    applied = cli(*folder, "up", "--plan", str(plan_file))
    assert applied.returncode == 0 and "0001 bump: applied, 5 documents touched" in applied.stderr
    status = cli(*folder, "status")
    assert status.returncode == 0 and "0001     applied" in status.stdout
    header, row = status.stdout.splitlines()[:2]
    by = firestore.document("_migrations/0001").get().get("applied_by")
    assert by.startswith(f"{socket.gethostname()}:") and header.index(" by ") == row.index(f" {by} "), "who ran it"
    assert cli(*folder, "down", "--to", "zero").returncode == 2
    missing = cli("--dir", str(revisions.directory / "nope"), "status")
    assert missing.returncode == 2 and "the migrations directory does not exist" in missing.stderr


def test_a_failing_document_stops_the_other_workers_at_their_next_page(firestore, revisions):
    put(firestore, "items", 2000)
    firestore.document("items/d00000").set({"n": 0, "broken": True})
    revisions.add("0001", "bump", '''
        import time

        def up(op):
            def bump(doc):
                if doc.data.get("broken"):
                    raise ValueError("cannot bump")
                time.sleep(0.002)
                doc.data["n"] += 1
            op.transform("items", bump)
        ''', BUMPED_ONCE)
    with pytest.raises(MigrationError, match="items/d00000: ValueError: cannot bump"):
        engine(firestore, revisions, min_range_docs=500, workers=4, page_size=50).up()
    checkpoints = [c.to_dict() for c in firestore.collection("_migrations/0001/checkpoints").stream()]
    assert checkpoints and not any(c["done"] for c in checkpoints), "no worker went on to finish its range"
    assert sum(c["read"] for c in checkpoints) < 1000


@pytest.mark.parametrize(("environ", "message"), [
    ({"GCFKIT_MIGRATION_WORKERS": "many"}, "GCFKIT_MIGRATION_WORKERS='many' is not a number"),
    ({"GCFKIT_MIGRATION_RAMP_UP": "maybe"}, "GCFKIT_MIGRATION_RAMP_UP='maybe': use 1/0, true/false, on/off"),
    ({"CLOUD_RUN_TASK_COUNT": "3", "CLOUD_RUN_TASK_INDEX": "1"}, "needs CLOUD_RUN_EXECUTION"),
    ({"CLOUD_RUN_TASK_COUNT": "2", "CLOUD_RUN_TASK_INDEX": "2", "CLOUD_RUN_EXECUTION": "x"}, "outside 0..CLOUD_RUN"),
])
def test_settings_from_the_environment_name_the_variable(environ, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.from_env(environ)


def test_ramp_up_is_on_for_cloud_firestore_and_off_for_the_emulator():
    assert Settings.from_env({}).ramp_up
    assert not Settings.from_env({"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8787"}).ramp_up
    job = Settings.from_env({"CLOUD_RUN_TASK_COUNT": "4", "CLOUD_RUN_TASK_INDEX": "3", "CLOUD_RUN_EXECUTION": "e-1"})
    assert job.group == "cloud-run-execution:e-1" and job.owner.endswith(" task 3/4")


IRREVERSIBLE = '''
irreversible = True


def up(op):
    op.remove_field("items", "n")


def validate(op):
    op.expect("items", lambda doc: "n" not in doc.data, "n is gone")
'''


def test_up_refuses_an_irreversible_migration_nobody_approved(firestore, revisions):
    put(firestore, "items", 3)
    revisions.add("0001", "bump", BUMP)
    revisions.add("0002", "drop_n", IRREVERSIBLE)
    runner = engine(firestore, revisions)
    assert "0002 drop n is irreversible and needs explicit approval" in " ".join(runner.plan().problems)
    with pytest.raises(IrreversibleMigration, match=r"up would apply irreversible migration\(s\) 0002 drop n "
                                                    r"without approval.*--approve-irreversible 0002"):
        runner.up()
    assert not firestore.document("_migrations/0001").get().exists, "refused before anything ran, 0001 included"
    assert set(n_values(firestore)) == {0}
    assert [r.version for r in runner.up(approved_irreversible=frozenset({"0002"}))] == ["0001", "0002"]
    assert firestore.document("items/d00000").get().to_dict() == {}


def test_cli_up_needs_the_approval_on_the_command_line_or_in_the_plan(firestore, revisions):
    put(firestore, "items", 2)
    revisions.add("0001", "drop_n", IRREVERSIBLE)
    folder = ["--dir", str(revisions.directory)]
    refused = cli(*folder, "up")
    assert refused.returncode == 1 and "--approve-irreversible 0001" in refused.stderr
    assert not firestore.document("_migrations/0001").get().exists
    unapproved = revisions.directory.parent / "unapproved.json"
    assert cli(*folder, "plan", "--out", str(unapproved)).returncode == 1
    applying = cli(*folder, "up", "--plan", str(unapproved))
    assert applying.returncode == 1 and "has problems, so it cannot be applied" in applying.stderr
    assert not firestore.document("_migrations/0001").get().exists

    approved = revisions.directory.parent / "approved.json"
    planned = cli(*folder, "plan", "--approve-irreversible", "0001", "--out", str(approved))
    assert planned.returncode == 0 and "IRREVERSIBLE (approved)" in planned.stdout
    # How the Cloud Run job runs it: the plan's path comes from GCFKIT_MIGRATION_PLAN, the approval from the plan.
    applied = cli(*folder, "up", env={"GCFKIT_MIGRATION_PLAN": str(approved)})
    assert applied.returncode == 0, applied.stderr
    assert firestore.document("_migrations/0001").get().get("status") == "applied"
    assert cli(*folder, "plan", "--approve-irreversible", "4x").returncode == 2
