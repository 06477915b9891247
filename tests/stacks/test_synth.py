"""`python -m stacks` synthesizes every environment; what each YAML says shows up in the JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.config import ROOT, load_all


def run_synth(outdir: Path, *args: str, env_dir: Path | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    if env_dir:
        environ["GCF_KIT_ENVIRONMENTS_DIR"] = str(env_dir)
    return subprocess.run([sys.executable, "-m", "stacks", "--outdir", str(outdir), *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("cdktf") / "cdktf.out"
    result = run_synth(outdir)
    assert result.returncode == 0, result.stderr
    return outdir


def stack_json(outdir: Path, stack: str) -> dict:
    return json.loads((outdir / "stacks" / stack / "cdk.tf.json").read_text())


def test_every_environment_gets_a_stack(synthesized):
    assert sorted(p.name for p in (synthesized / "stacks").iterdir()) == sorted(
        f"{name}-functions" for name in load_all())
    manifest = json.loads((synthesized / "manifest.json").read_text())
    assert set(manifest["stacks"]) == {f"{name}-functions" for name in load_all()}


@pytest.mark.parametrize("env_name", ["local", "dev", "staging", "prod"])
def test_function_settings_come_from_the_environment_file(synthesized, env_name):
    env = load_all()[env_name]
    tf = stack_json(synthesized, f"{env_name}-functions")
    assert tf["provider"]["google"][0]["project"] == env.project
    assert tf["terraform"]["backend"]["gcs"] == {"bucket": env.state.bucket,
                                                 "prefix": f"{env.state.prefix}/{env_name}-functions"}
    functions = tf["resource"]["google_cloudfunctions2_function"]
    assert set(functions) == set(env.functions)
    for name, fn in env.functions.items():
        service = functions[name]["service_config"]
        assert service["min_instance_count"] == fn.min_instances
        assert service["max_instance_count"] == fn.max_instances
        assert service["available_memory"] == fn.memory
        assert service["environment_variables"]["LOG_EXECUTION_ID"] == "true"


def test_prod_keeps_warm_instances(synthesized):
    service = stack_json(synthesized, "prod-functions")["resource"]["google_cloudfunctions2_function"][
        "api"]["service_config"]
    assert service["min_instance_count"] == 2


def test_one_environment_can_be_synthesized_alone(tmp_path):
    result = run_synth(tmp_path / "out", "--env", "prod")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "out" / "stacks").iterdir()] == ["prod-functions"]


def test_a_config_typo_stops_synth_before_anything_is_written(tmp_path):
    env_dir = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", env_dir)
    prod = env_dir / "prod.yaml"
    prod.write_text(prod.read_text().replace("min_instances:", "min_instanses:"))
    result = run_synth(tmp_path / "out", env_dir=env_dir)
    assert result.returncode == 2
    assert "prod.yaml" in result.stderr and "functions.api.min_instanses: unknown key" in result.stderr
    assert "did you mean 'min_instances'" in result.stderr
    assert not (tmp_path / "out").exists()
