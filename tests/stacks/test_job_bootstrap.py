"""The migration job's bootstrap, run exactly as the Cloud Run Job runs it: `python -c <BOOTSTRAP> up`.

A real bundle (kit.bundle) of a small functions/ tree whose `gcfkit.migrations` records how it was started
stands in for the engine; the bundle sits where the job mounts the source bucket. Each task must run the
engine from the unpacked functions/ folder with its own CLOUD_RUN_TASK_INDEX; a bundle whose bytes differ
from the hash the stack recorded must not run at all. The last test runs the real bundle of functions/, with
the job's own arguments and variables, against the emulator: an execution applies the uploaded plan or nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit.bundle import FUNCTIONS_DIR, Bundle, build_bundle
from kit.config import Environment
from kit.migrate_seed import example_data, write
from stacks.migration_job import ARGS, BOOTSTRAP, BUNDLE_MOUNT, PLAN_OBJECT, job_environment

RECORDER = """\
import json, os, sys
from pathlib import Path
Path(os.environ["RECORD_TO"]).write_text(json.dumps({
    "args": sys.argv[1:], "cwd": os.getcwd(), "task": os.environ.get("CLOUD_RUN_TASK_INDEX"),
    "count": os.environ.get("CLOUD_RUN_TASK_COUNT"), "main_here": Path("main.py").is_file()}))
"""
PYTHONS = [sys.executable] + [p for p in [str(Path.home() / ".pyenv/versions/3.12.1/bin/python")] if Path(p).exists()]


def mount(bundle: Bundle, bucket: Path) -> Bundle:
    """`bundle` where the job sees it: the source bucket mounted at `bucket`, objects appearing as files."""
    mounted = bucket / bundle.object_name
    mounted.parent.mkdir(parents=True)
    mounted.write_bytes(bundle.path.read_bytes())
    return Bundle(path=mounted, sha256=bundle.sha256, files=bundle.files, entry_points=bundle.entry_points)


@pytest.fixture
def mounted_bundle(tmp_path: Path) -> Bundle:
    functions = tmp_path / "functions"
    (functions / "gcfkit" / "migrations").mkdir(parents=True)
    (functions / "main.py").write_text("def api(request):\n    return 'ok'\n")
    (functions / "requirements.txt").write_text("# nothing to install\n")
    (functions / "gcfkit" / "__init__.py").write_text("")
    (functions / "gcfkit" / "migrations" / "__init__.py").write_text("")
    (functions / "gcfkit" / "migrations" / "__main__.py").write_text(RECORDER)
    return mount(build_bundle(tmp_path / "build", functions), tmp_path / "mnt")


def run_task(python: str, bundle: Bundle, workdir: Path, record: Path, *args: str, index: int = 0,
             count: int = 1, sha256: str | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "GCF_KIT_BUNDLE": str(bundle.path), "GCF_KIT_BUNDLE_SHA256": sha256 or bundle.sha256,
               "GCF_KIT_WORKDIR": str(workdir), "CLOUD_RUN_TASK_INDEX": str(index),
               "CLOUD_RUN_TASK_COUNT": str(count), "RECORD_TO": str(record), "PIP_NO_INDEX": "1"}
    return subprocess.run([python, "-c", BOOTSTRAP, *args], env=environ, capture_output=True, text=True,
                          timeout=120, cwd=record.parent)


@pytest.mark.parametrize("python", PYTHONS)
def test_each_task_runs_the_engine_from_the_unpacked_bundle(mounted_bundle, tmp_path, python):
    for index in (0, 1):
        workdir, record = tmp_path / f"task{index}" / "functions", tmp_path / f"task{index}.json"
        result = run_task(python, mounted_bundle, workdir, record, "up", index=index, count=2)
        assert result.returncode == 0, result.stderr
        assert f"task {index}/2: bundle {mounted_bundle.sha256[:16]} unpacked" in result.stdout
        assert json.loads(record.read_text()) == {"args": ["up"], "cwd": str(workdir), "task": str(index),
                                                  "count": "2", "main_here": True}


def test_an_execution_can_override_the_command(mounted_bundle, tmp_path):
    record = tmp_path / "plan.json"
    assert run_task(sys.executable, mounted_bundle, tmp_path / "w" / "functions", record, "plan").returncode == 0
    assert json.loads(record.read_text())["args"] == ["plan"]


def test_a_bundle_that_is_not_the_recorded_one_never_runs(mounted_bundle, tmp_path):
    data = bytearray(mounted_bundle.path.read_bytes())
    data[-30] ^= 0xFF
    mounted_bundle.path.write_bytes(bytes(data))
    record = tmp_path / "record.json"
    result = run_task(sys.executable, mounted_bundle, tmp_path / "w" / "functions", record, "up")
    assert result.returncode == 2
    assert f"expected {mounted_bundle.sha256}; refusing to run it" in result.stderr
    assert not record.exists() and not (tmp_path / "w" / "functions").exists()


def test_a_missing_bundle_says_what_to_check(mounted_bundle, tmp_path):
    mounted_bundle.path.unlink()
    result = run_task(sys.executable, mounted_bundle, tmp_path / "w" / "functions", tmp_path / "r.json", "up")
    assert result.returncode == 2 and "not found; is the source bucket mounted" in result.stderr


@pytest.mark.firestore
def test_an_execution_applies_exactly_the_uploaded_plan_or_nothing(firestore, tmp_path):
    from gcfkit.migrations import Engine, Settings
    from gcfkit.migrations.command import write_plan

    write(firestore, example_data(users=4, problems=2, sessions=4))
    env = Environment.model_validate({"name": "prod", "project": "demo-gcf-kit-test", "region": "europe-west1",
                                      "state": {"bucket": "demo-gcf-kit-tfstate"},
                                      "functions": {"api": {"entry_point": "api"}}})
    bucket = tmp_path / "mnt"
    bundle = mount(build_bundle(tmp_path / "build", FUNCTIONS_DIR), bucket)
    job = {k: str(bucket) + v.removeprefix(BUNDLE_MOUNT) if v.startswith(f"{BUNDLE_MOUNT}/") else v
           for k, v in job_environment(env, bundle).items()}

    def execute() -> subprocess.CompletedProcess:
        environ = {**os.environ, **job, "GCF_KIT_WORKDIR": str(tmp_path / "task" / "functions"),
                   "PIP_NO_INDEX": "1", "GCFKIT_MIGRATION_PROGRESS": "0"}
        return subprocess.run([sys.executable, "-c", BOOTSTRAP, *ARGS], env=environ, capture_output=True,
                              text=True, timeout=180)

    bare = execute()
    assert bare.returncode == 1, bare.stderr
    assert f"{bucket / PLAN_OBJECT}: no plan file" in bare.stderr and "migration_plan_object" in bare.stderr
    assert not list(firestore.collection("_migrations").stream()), "no plan, nothing applied"

    plan = Engine(firestore, FUNCTIONS_DIR / "migrations", Settings.from_env(progress=False)).plan()
    write_plan(plan, bucket / PLAN_OBJECT)  # what `gcloud storage cp plan.json <migration_plan_object>` does
    applied = execute()
    assert applied.returncode == 0, applied.stderr
    statuses = {s.id: s.get("status") for s in firestore.collection("_migrations").stream()}
    assert statuses == {"0001": "applied", "0002": "applied", "0003": "applied"}

    again = execute()  # a second execution, or a task that starts after its siblings finished
    assert again.returncode == 0 and "nothing to apply" in again.stderr, again.stderr

    # 0003 pending again (as after a revert), and a plan reviewed for another 0003 file than the bundle's:
    stale = json.loads((bucket / PLAN_OBJECT).read_text())
    stale["migrations"][2]["checksum"] = "sha256:" + "0" * 64
    (bucket / PLAN_OBJECT).write_text(json.dumps(stale))
    firestore.document("_migrations/0003").update({"status": "reverted"})
    refused = execute()
    assert refused.returncode == 1 and "0003: its file changed since the plan" in refused.stderr
    assert firestore.document("_migrations/0003").get().get("status") == "reverted", "nothing ran"
