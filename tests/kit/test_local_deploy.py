"""`make deploy` (local) end to end: real emulator, real functions-framework, real HTTP; then `make down`.

Runs `python -m kit` (what the Makefile runs) against a copy of environments/ whose local.yaml uses free
ports, with its own state and output folders, so it never touches a developer's running environment.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from kit.config import ROOT
from kit.emulator import free_port


class Sandbox:
    def __init__(self, tmp: Path):
        self.env_dir = tmp / "environments"
        self.state_dir = tmp / "state"
        shutil.copytree(ROOT / "environments", self.env_dir)
        self.firestore_port, self.base_port = free_port(), free_port()
        local = self.env_dir / "local.yaml"
        local.write_text(local.read_text().replace("firestore_port: 8787", f"firestore_port: {self.firestore_port}")
                         .replace("base_port: 8081", f"base_port: {self.base_port}"))
        self.migrations_dir = tmp / "migrations"
        shutil.copytree(ROOT / "functions" / "migrations", self.migrations_dir,
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.environ = {**os.environ, "GCF_KIT_ENVIRONMENTS_DIR": str(self.env_dir),
                        "GCFKIT_MIGRATIONS_DIR": str(self.migrations_dir),
                        "GCF_KIT_STATE_DIR": str(self.state_dir), "GCF_KIT_OUTDIR": str(tmp / "cdktf.out")}

    def kit(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kit", *args], cwd=ROOT, env=self.environ,
                              capture_output=True, text=True, timeout=180)

    def state(self) -> dict:
        return json.loads((self.state_dir / "local" / "state.json").read_text())


def groups_alive(state: dict) -> list[int]:
    pgids = [state["emulator_pgid"], *(f["pgid"] for f in state["functions"])]
    return [pgid for pgid in pgids if subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).stdout]


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path)
    yield box
    box.kit("down")  # whatever a failed assertion left running


def get_json(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


@pytest.mark.slow
def test_deploy_serves_healthy_functions_and_down_stops_everything(sandbox):
    first = sandbox.kit("deploy")
    assert first.returncode == 0, first.stdout + first.stderr
    url = f"http://127.0.0.1:{sandbox.base_port}/health"
    assert url in first.stdout and "make down" in first.stdout
    assert "[6/6] check health: ok" in first.stdout
    status, body = get_json(url)
    assert status == 200 and body["status"] == "healthy" and body["service"] == "api"
    assert (sandbox.state_dir / "local" / "logs" / "api.log").is_file()
    assert sandbox.kit("status").returncode == 0

    before = sandbox.state()
    second = sandbox.kit("deploy")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "stopped the previous api" in second.stdout and "reusing the running emulator" in second.stdout
    after = sandbox.state()
    assert after["functions"][0]["pgid"] != before["functions"][0]["pgid"]
    assert groups_alive({"emulator_pgid": before["emulator_pgid"], "functions": before["functions"]}) == [
        before["emulator_pgid"]], "the old function server is gone, the emulator (and its data) stays"
    assert get_json(url)[0] == 200

    stopped = sandbox.kit("down")
    assert stopped.returncode == 0 and "stopped api, firestore-emulator" in stopped.stdout
    assert groups_alive(after) == []
    assert sandbox.kit("status").returncode == 1


@pytest.mark.slow
def test_a_blocked_gate_leaves_the_running_functions_untouched(sandbox):
    assert sandbox.kit("deploy").returncode == 0  # applies the shipped migrations to the sandbox's emulator
    before = sandbox.state()
    applied = sorted(sandbox.migrations_dir.glob("0001_*.py"))[0]
    applied.write_text(applied.read_text() + "\n# edited after it was applied\n")  # checksum drift

    blocked = sandbox.kit("deploy")
    assert blocked.returncode == 2
    assert "[4/6] pre-deploy hook (migration gate): FAILED" in blocked.stdout
    assert "0001" in blocked.stderr and "checksum" in blocked.stderr
    assert "stopped the previous api" not in blocked.stdout and "[5/6]" not in blocked.stdout
    assert sandbox.state()["functions"] == before["functions"]
    assert get_json(f"http://127.0.0.1:{sandbox.base_port}/health")[0] == 200, "the old api still serves"


@pytest.mark.slow
def test_a_port_in_use_is_a_clear_error(sandbox):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", sandbox.base_port))
        squatter.listen()
        result = sandbox.kit("deploy")
    assert result.returncode == 2
    assert f"port(s) already in use on 127.0.0.1: api -> {sandbox.base_port}" in result.stderr
    assert "local.base_port in environments/local.yaml" in result.stderr
    assert not (sandbox.state_dir / "local" / "state.json").exists(), "nothing was started"


def test_a_typo_stops_the_deploy_before_anything_starts(sandbox):
    dev = sandbox.env_dir / "dev.yaml"
    dev.write_text(dev.read_text().replace("max_instances: 3", "max_instances: three"))
    result = sandbox.kit("deploy")
    assert result.returncode == 2
    assert "dev.yaml" in result.stderr and "functions.api.max_instances: got 'three'" in result.stderr
    assert "[2/6]" not in result.stdout, "nothing after validation ran"
    assert not (sandbox.state_dir / "local" / "state.json").exists()


def test_a_server_that_dies_fails_the_health_stage_at_once(tmp_path):
    """A function that crashes at import must not be waited for: its exit is noticed, its log shown."""
    from kit.local import Served, _wait_healthy
    from kit.stages import StageFailed

    log = tmp_path / "broken.log"
    log.write_text("Traceback (most recent call last):\nImportError: cannot import name 'nope'\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], start_new_session=True)
    served = Served(name="broken", pgid=process.pid, port=free_port(), url="http://127.0.0.1:1", log=str(log),
                    http=True)
    with pytest.raises(StageFailed) as caught:
        _wait_healthy(served, process, timeout=120)
    assert "broken exited with code 3" in str(caught.value)
    assert "ImportError: cannot import name 'nope'" in str(caught.value)


def test_an_unexported_secret_stops_the_deploy_before_anything_is_touched(sandbox):
    """There is no Secret Manager locally: a secret the shell does not export must stop the deploy at
    validation, not after the running functions were stopped."""
    local = sandbox.env_dir / "local.yaml"
    local.write_text(local.read_text().replace("    env:\n", "    secrets:\n      API_TOKEN: {secret: api-token}\n"
                                                             "    env:\n"))
    sandbox.environ.pop("API_TOKEN", None)
    result = sandbox.kit("deploy")
    assert result.returncode == 2
    assert "[1/6] validate environment files: FAILED" in result.stdout
    assert "functions.api.secrets.API_TOKEN: API_TOKEN is not exported" in result.stderr
    assert not (sandbox.state_dir / "local" / "state.json").exists(), "nothing was started or stopped"
