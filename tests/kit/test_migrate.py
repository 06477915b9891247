"""kit/migrate.py's own wording and checks, on the real emulator: what an approval names, how each command's user
approves an irreversible migration, and bad GCFKIT_MIGRATION_* values as one-line errors.

Cloud environments are played by a demo- project without a local: section (demo- projects can only be
emulated, so the kit lets them use the test session's FIRESTORE_EMULATOR_HOST)."""

from __future__ import annotations

import textwrap

import pytest

from kit import migrate
from kit.config import Environment
from kit.stages import StageFailed

pytestmark = pytest.mark.firestore
BUMP = '''
def up(op):
    op.transform("{collection}", lambda doc: {{**doc.data, "n": doc.data["n"] + 1}})

def down(op):
    op.transform("{collection}", lambda doc: {{**doc.data, "n": doc.data["n"] - 1}})

def validate(op):
    op.expect("{collection}", lambda doc: doc.data["n"] == 1, "bumped once")
'''


@pytest.fixture
def staging(firestore, tmp_path, monkeypatch) -> Environment:
    monkeypatch.setenv("GCF_KIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GCFKIT_MIGRATIONS_DIR", str(tmp_path / "migrations"))
    monkeypatch.delenv(migrate.IRREVERSIBLE_VARIABLE, raising=False)
    monkeypatch.delenv(migrate.APPROVAL_VARIABLE, raising=False)
    (tmp_path / "migrations").mkdir()
    return Environment.model_validate({"name": "staging", "project": "demo-gcf-kit-test", "region": "europe-west1",
                                       "state": {"bucket": "demo-gcf-kit-tfstate"},
                                       "functions": {"api": {"entry_point": "api"}}})


def revision(version: str, slug: str, body: str, **header) -> None:
    from gcfkit.migrations import command

    extra = "".join(f"{key} = {value!r}\n" for key, value in header.items())
    path = command.migrations_directory() / f"{version}_{slug}.py"
    path.write_text(f'version = "{version}"\nname = "{slug}"\n{extra}' + textwrap.dedent(body))


def items(client, collection: str, count: int = 3) -> None:
    for i in range(count):
        client.document(f"{collection}/i{i:03d}").set({"n": 0})


def n_of(client, collection: str) -> list[int]:
    return sorted(snapshot.get("n") for snapshot in client.collection(collection).stream())


def apply_both(firestore, staging) -> None:
    items(firestore, "items")
    items(firestore, "others")
    revision("0001", "bump", BUMP.format(collection="items"))
    revision("0002", "bump_others", BUMP.format(collection="others"))
    migrate.gate(staging)
    migrate.apply(staging, interactive=True, confirm=lambda prompt: "staging")


def test_stamp_refuses_before_asking_and_the_approval_names_what_it_would_unrecord(firestore, staging):
    apply_both(firestore, staging)
    asked: list[str] = []

    def confirm(prompt: str) -> str:
        asked.append(prompt)
        return "staging"

    with pytest.raises(StageFailed, match=r"stamp 0001 would record 0002 bump_others \(applied\) as pending"):
        migrate.stamp(staging, "0001", interactive=True, confirm=confirm)
    assert asked == [], "refused before asking for an approval"
    assert firestore.document("_migrations/0002").get().get("status") == "applied"

    migrate.stamp(staging, "0001", mark_later_pending=True, interactive=True, confirm=confirm)
    assert asked == ["record 0001 and below as applied in project demo-gcf-kit-test, running nothing, and record "
                     "0002 bump_others (applied) as PENDING although their data stays as they left it (the next up "
                     "applies them again)? Type the environment name (staging) to confirm: "]
    assert firestore.document("_migrations/0002").get().get("status") == "reverted"


def test_restamp_accepts_one_edited_file_after_approval(firestore, staging):
    from gcfkit.migrations import command

    apply_both(firestore, staging)
    path = command.migrations_directory() / "0001_bump.py"
    path.write_text(path.read_text() + "\n# an intended edit\n")
    with pytest.raises(StageFailed, match=r"make migrate-restamp ENV=<env> VERSION=0001"):
        migrate.gate(staging)
    with pytest.raises(StageFailed, match="not confirmed"):
        migrate.restamp(staging, "0001", interactive=True, confirm=lambda prompt: "prod")
    migrate.restamp(staging, "0001", interactive=True, confirm=lambda prompt: "staging")
    assert not migrate.gate(staging).migrations
    assert n_of(firestore, "items") == n_of(firestore, "others") == [1, 1, 1], "nothing ran twice"


def test_each_command_says_how_its_own_user_approves_an_irreversible_migration(firestore, staging):
    items(firestore, "items")
    revision("0001", "bump", BUMP.format(collection="items").split("def down")[0]
             + "def validate(op):\n    pass\n", irreversible=True)
    with pytest.raises(StageFailed) as deploying:
        migrate.gate(staging)  # what `make deploy` runs (kit/hooks.py)
    assert ("0001 bump is irreversible and needs explicit approval: `GCF_KIT_APPROVE_IRREVERSIBLE=0001 make deploy "
            "ENV=staging` (CI: the deploy workflow's approve_irreversible input)") in str(deploying.value)
    with pytest.raises(StageFailed) as planning:
        migrate.gate(staging, approve_with=migrate.plan_approval(staging))  # what `make migrate-plan` runs
    assert "needs explicit approval: `make migrate-plan ENV=staging APPROVE_IRREVERSIBLE=0001`" in str(planning.value)
    assert "APPROVE_IRREVERSIBLE=0001 (make" not in str(deploying.value) + str(planning.value)


def test_a_bad_migration_variable_is_a_one_line_error(firestore, staging, monkeypatch, capsys):
    monkeypatch.setenv("GCFKIT_MIGRATION_WORKERS", "many")
    with pytest.raises(StageFailed, match=r"GCFKIT_MIGRATION_WORKERS='many' is not a number \(an environment "
                                          r"variable of this shell"):
        migrate.status(staging)
    monkeypatch.setenv("GCFKIT_MIGRATION_WORKERS", "0")
    with pytest.raises(StageFailed, match="GCFKIT_MIGRATION_WORKERS >= 1"):
        migrate.gate(staging)
