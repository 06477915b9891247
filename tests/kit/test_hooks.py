"""The pre-deploy hook is the migration gate (kit/hooks.py -> kit/migrate.py), on the real emulator.

Cloud environments are played by environments with a demo- project and no local: section: demo- projects
can only be emulated, so the gate lets them use FIRESTORE_EMULATOR_HOST (a real project id never does).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kit import hooks, migrate
from kit.config import ROOT, Environment
from kit.migrate_seed import example_data, write
from kit.stages import StageFailed, Stages

pytestmark = pytest.mark.firestore
PROJECT = "demo-gcf-kit-test"
BUMP = '''
def up(op):
    op.transform("items", lambda doc: {**doc.data, "n": doc.data["n"] + 1})

def down(op):
    op.transform("items", lambda doc: {**doc.data, "n": doc.data["n"] - 1})

def validate(op):
    op.expect("items", lambda doc: doc.data["n"] == 1, "bumped once")
'''


def environment(name: str, *, port: int | None = None, project: str = PROJECT) -> Environment:
    local = {"local": {"host": "127.0.0.1", "firestore_port": port}} if port else {}
    return Environment.model_validate({"name": name, "project": project, "region": "europe-west1",
                                       "state": {"bucket": "demo-gcf-kit-tfstate"},
                                       "functions": {"api": {"entry_point": "api"}}, **local})


@pytest.fixture
def kit_env(firestore, firestore_emulator, tmp_path, monkeypatch):
    """The kit pointed at a temporary state folder and migrations directory; returns helpers."""
    monkeypatch.setenv("GCF_KIT_STATE_DIR", str(tmp_path / "state"))
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    monkeypatch.setenv("GCFKIT_MIGRATIONS_DIR", str(migrations))

    class Kit:
        client = firestore
        local = environment("local", port=firestore_emulator.port)
        cloud = environment("staging")
        directory = migrations

        @staticmethod
        def revision(version: str, slug: str, body: str, **header) -> Path:
            extra = "".join(f"{key} = {value!r}\n" for key, value in header.items())
            path = migrations / f"{version}_{slug}.py"
            path.write_text(f'version = "{version}"\nname = "{slug}"\n{extra}' + textwrap.dedent(body))
            return path

        @staticmethod
        def items(count: int) -> None:
            batch = firestore.batch()
            for i in range(count):
                batch.set(firestore.document(f"items/i{i:03d}"), {"n": 0})
            batch.commit()

    return Kit


def run_hook(env: Environment) -> str:
    out = io.StringIO()
    hooks.pre_deploy(env, Stages("test", 1, stream=out))
    return out.getvalue()


def test_local_deploy_dry_runs_then_applies_the_shipped_migrations(kit_env, monkeypatch):
    monkeypatch.delenv("GCFKIT_MIGRATIONS_DIR")
    write(kit_env.client, example_data(users=4, problems=2, sessions=6))
    output = run_hook(kit_env.local)
    assert "plan ok: 3 migration(s) would run" in output
    assert "local: applied 0001, 0002, 0003 exactly as planned" in output
    assert kit_env.client.document("_migrations/0003").get().get("status") == "applied"
    assert "plan ok: nothing to migrate" in run_hook(kit_env.local), "the next deploy has nothing to do"


def test_a_cloud_deploy_only_plans_and_says_how_to_apply(kit_env):
    kit_env.items(3)
    kit_env.revision("0001", "bump", BUMP)
    output = run_hook(kit_env.cloud)
    assert "1 migration(s) pending in staging; they run with the approved `make migrate ENV=staging`" in output
    assert not kit_env.client.document("_migrations/0001").get().exists
    assert kit_env.client.document("items/i000").get().get("n") == 0


@pytest.mark.parametrize(("body", "reason"), [
    (BUMP.replace('== 1, "bumped once"', '== 2, "bumped twice"'),
     "validation would fail after up: 3 of 3 documents of items fail 'bumped twice'"),
    (BUMP.replace('doc.data["n"] + 1', 'doc.data["missing"]'),
     "up fails in the dry run: migration 0001: the transform failed on document items/i000: KeyError: 'missing'"),
])
def test_the_gate_stops_the_deploy_on_a_failed_validation_or_an_error(kit_env, body, reason):
    kit_env.items(3)
    kit_env.revision("0001", "bump", body)
    with pytest.raises(StageFailed, match="the migration plan of staging has 1 problem") as stopped:
        run_hook(kit_env.cloud)
    assert reason in str(stopped.value)


def test_the_gate_stops_on_checksum_drift(kit_env):
    kit_env.items(3)
    path = kit_env.revision("0001", "bump", BUMP)
    run_hook(kit_env.local)
    path.write_text(path.read_text().replace("bumped once", "bumped exactly once"))
    with pytest.raises(StageFailed, match=r"0001_bump.py changed after it was applied .*stamp 0001"):
        run_hook(kit_env.local)


def test_an_irreversible_migration_needs_approval(kit_env, monkeypatch):
    kit_env.items(2)
    kit_env.revision("0001", "bump", BUMP, irreversible=True)
    with pytest.raises(StageFailed, match=r"0001 bump is irreversible and needs explicit approval: "
                                          r"`GCF_KIT_APPROVE_IRREVERSIBLE=0001 make deploy ENV=staging`"):
        run_hook(kit_env.cloud)
    monkeypatch.setenv(migrate.IRREVERSIBLE_VARIABLE, "0001")
    assert "1 migration(s) pending in staging" in run_hook(kit_env.cloud)
    asked = []
    migrate.apply(kit_env.cloud, interactive=True, confirm=lambda prompt: asked.append(prompt) or "staging")
    assert "irreversible: 0001" in asked[0], "the approval prompt names the irreversible migration"
    assert kit_env.client.document("_migrations/0001").get().get("status") == "applied"

    monkeypatch.setenv(migrate.IRREVERSIBLE_VARIABLE, "0001,latest")
    with pytest.raises(StageFailed, match=f"{migrate.IRREVERSIBLE_VARIABLE}: 'latest' is not a version"):
        run_hook(kit_env.cloud)


def test_make_migrate_needs_approval_and_applies_exactly_the_plan(kit_env, monkeypatch):
    kit_env.items(3)
    kit_env.revision("0001", "bump", BUMP)
    migrate.gate(kit_env.cloud)
    with pytest.raises(StageFailed, match="needs approval: run it in a terminal and type 'staging'"):
        migrate.apply(kit_env.cloud, interactive=False)
    with pytest.raises(StageFailed, match="not confirmed"):
        migrate.apply(kit_env.cloud, interactive=True, confirm=lambda prompt: "prod")
    assert not kit_env.client.document("_migrations/0001").get().exists, "nothing ran without approval"

    asked = []
    migrate.apply(kit_env.cloud, interactive=True, confirm=lambda prompt: asked.append(prompt) or "staging")
    assert "apply migration(s) 0001 (plan " in asked[0] and f"to project {PROJECT}?" in asked[0]
    assert kit_env.client.document("_migrations/0001").get().get("status") == "applied"

    kit_env.revision("0002", "noop", "def up(op): pass\ndef down(op): pass\ndef validate(op): pass\n")
    monkeypatch.setenv(migrate.APPROVAL_VARIABLE, "staging")  # what the protected CI job sets
    with pytest.raises(StageFailed, match="0002: pending now, but not in the plan"):
        migrate.apply(kit_env.cloud)
    migrate.gate(kit_env.cloud)
    migrate.apply(kit_env.cloud)
    assert kit_env.client.document("_migrations/0002").get().get("status") == "applied"


def test_a_plan_for_another_project_is_refused(kit_env):
    kit_env.revision("0001", "bump", BUMP)
    path = migrate.plan_path(kit_env.cloud)
    migrate.gate(kit_env.cloud)
    other = environment("staging", project="demo-other-project")
    with pytest.raises(StageFailed, match=rf"is a plan for project {PROJECT} \(database \(default\)\), not "
                                          r"demo-other-project .*make one for this database with "
                                          r"`make migrate-plan ENV=staging`"):
        migrate.apply(other, path, interactive=False)
    with pytest.raises(StageFailed, match=r"no plan file. Make one with `make migrate-plan ENV=staging`; review it"):
        migrate.apply(kit_env.cloud, path.with_name("nothing.json"), interactive=False)


def test_a_real_project_is_never_reached_through_an_emulator(kit_env):
    with pytest.raises(StageFailed, match="would reach that emulator instead of project acme-gcf-kit-prod"):
        migrate.gate(environment("prod", project="acme-gcf-kit-prod"))


def test_make_migration_renders_the_next_revision_which_blocks_until_written(kit_env):
    kit_env.revision("0001", "bump", BUMP)
    path = migrate.new_revision("Add user locale (ISO 639)!")
    assert path.name == "0002_add_user_locale_iso_639.py"
    assert "name = 'Add user locale (ISO 639)!'" in path.read_text()
    with pytest.raises(StageFailed, match="write up\\(\\) for migration 0002"):
        migrate.gate(kit_env.cloud)


def test_seed_is_for_local_environments_only(kit_env):
    assert migrate.seed(kit_env.local) == {"users": 40, "problems": 15, "sessions": 120}
    assert kit_env.client.document("users/u0000").get().get("name")
    with pytest.raises(StageFailed, match="only runs on local environments"):
        migrate.seed(kit_env.cloud)


def test_python_m_kit_migrate_plan_and_apply_an_environment_file(kit_env, tmp_path, firestore_emulator):
    environments = tmp_path / "environments"
    environments.mkdir()
    text = (ROOT / "environments" / "local.yaml").read_text()
    (environments / "local.yaml").write_text(text.replace("demo-gcf-kit", PROJECT).replace(
        "firestore_port: 8787", f"firestore_port: {firestore_emulator.port}"))
    kit_env.items(2)
    kit_env.revision("0001", "bump", BUMP)
    environ = {**os.environ, "GCF_KIT_ENVIRONMENTS_DIR": str(environments), "GCFKIT_MIGRATION_PROGRESS": "0"}
    environ.pop("FIRESTORE_EMULATOR_HOST")  # the environment file says where the emulator is

    def kit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kit.migrate", *args], cwd=ROOT, env=environ,
                              capture_output=True, text=True, timeout=120)

    planned = kit("plan", "local")
    assert planned.returncode == 0, planned.stderr
    assert "would update 2" in planned.stdout
    applied = kit("apply", "local")
    assert applied.returncode == 0 and "local: applied 0001 exactly as planned" in applied.stdout
    status = kit("status", "local")
    assert "0001     applied" in status.stdout
    checked = kit("validate", "local")
    assert checked.returncode == 0 and "0001: ok" in checked.stdout
    refused = kit("stamp", "local", "0000")  # 0001 is applied: stamping below it must say so, not forget it
    assert refused.returncode == 1 and "--mark-later-pending" in refused.stderr
    assert "0001     applied" in kit("status", "local").stdout
    assert kit("stamp", "local", "0000", "--mark-later-pending").returncode == 0
    assert "0001     reverted" in kit("status", "local").stdout
    assert kit("down", "local", "--to", "first").returncode == 2
    missing = kit("plan", "nowhere")
    assert missing.returncode == 2 and "no such environment file" in missing.stderr


def test_ci_tests_pull_requests_and_deploys_migrate_only_behind_the_protected_environment():
    import yaml

    workflows = ROOT / ".github" / "workflows"
    ci = yaml.safe_load((workflows / "ci.yml").read_text())
    assert "pull_request" in ci[True] and ci["jobs"]["test"]["steps"][-1]["run"] == ".ci/run"  # `on:` parses as True
    deploy = yaml.safe_load((workflows / "deploy.yml").read_text())
    jobs = deploy["jobs"]
    runs = {name: " ".join(step.get("run", "") for step in job.get("steps", [])) for name, job in jobs.items()}
    migrating = [name for name, text in runs.items() if "make migrate " in text]
    assert migrating == ["migrate-and-deploy"]
    job = jobs["migrate-and-deploy"]
    assert job["environment"] == "${{ inputs.environment }}", "bound to the protected environment"
    assert job["env"][migrate.APPROVAL_VARIABLE] == "${{ inputs.environment }}"
    assert [n for n, j in jobs.items() if migrate.APPROVAL_VARIABLE in str(j)] == ["migrate-and-deploy"]
    assert job["needs"] == "migrate-plan" and jobs["migrate-plan"]["needs"] == "test"
    assert "make migrate-plan" in runs["migrate-plan"] and "PLAN=migration-plan.json" in runs["migrate-and-deploy"]
    # An irreversible migration can be approved: the dispatcher's input reaches the gate of the plan job only.
    assert deploy[True]["workflow_dispatch"]["inputs"]["approve_irreversible"]["type"] == "string"
    approving = [n for n, j in jobs.items() if migrate.IRREVERSIBLE_VARIABLE in str(j)]
    assert approving == ["migrate-plan"]
    assert jobs["migrate-plan"]["env"][migrate.IRREVERSIBLE_VARIABLE] == "${{ inputs.approve_irreversible }}"
