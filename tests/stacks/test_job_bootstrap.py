"""The migration job's bootstrap, run exactly as the Cloud Run Job runs it: `python -c <BOOTSTRAP> up`.

A real bundle (kit.bundle) of a small functions/ tree whose `gcfkit.migrations` records how it was started
stands in for the engine; the bundle sits where the job mounts the source bucket. Each task must run the
engine from the unpacked functions/ folder with its own CLOUD_RUN_TASK_INDEX; a bundle whose bytes differ
from the hash the stack recorded must not run at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit.bundle import Bundle, build_bundle
from stacks.migration_job import BOOTSTRAP

RECORDER = """\
import json, os, sys
from pathlib import Path
Path(os.environ["RECORD_TO"]).write_text(json.dumps({
    "args": sys.argv[1:], "cwd": os.getcwd(), "task": os.environ.get("CLOUD_RUN_TASK_INDEX"),
    "count": os.environ.get("CLOUD_RUN_TASK_COUNT"), "main_here": Path("main.py").is_file()}))
"""
PYTHONS = [sys.executable] + [p for p in [str(Path.home() / ".pyenv/versions/3.12.1/bin/python")] if Path(p).exists()]


@pytest.fixture
def mounted_bundle(tmp_path: Path) -> Bundle:
    functions = tmp_path / "functions"
    (functions / "gcfkit" / "migrations").mkdir(parents=True)
    (functions / "main.py").write_text("def api(request):\n    return 'ok'\n")
    (functions / "requirements.txt").write_text("# nothing to install\n")
    (functions / "gcfkit" / "__init__.py").write_text("")
    (functions / "gcfkit" / "migrations" / "__init__.py").write_text("")
    (functions / "gcfkit" / "migrations" / "__main__.py").write_text(RECORDER)
    bundle = build_bundle(tmp_path / "build", functions)
    mounted = tmp_path / "mnt" / bundle.object_name  # the job mounts the bucket; objects appear as files
    mounted.parent.mkdir(parents=True)
    mounted.write_bytes(bundle.path.read_bytes())
    return Bundle(path=mounted, sha256=bundle.sha256, files=bundle.files, entry_points=bundle.entry_points)


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
