"""`make deploy ENV=<cloud env>` end to end, with a stand-in `terraform` on PATH (the google provider cannot be
fetched here, so the stand-in records where it ran and answers `output -json` from the synthesized stack).

The cloud environment is played by a demo- project without a local: section: its migration gate runs on the
test emulator (demo- projects can only be emulated), everything else is the real deploy path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kit.config import ROOT

pytestmark = pytest.mark.firestore

FAKE_TERRAFORM = '''\
#!{python}
"""Records `<folder> <args>`; `output -json` answers with the literal outputs of the stack's cdk.tf.json."""
import json, os, sys
with open(os.environ["FAKE_TERRAFORM_LOG"], "a") as log:
    log.write(os.path.basename(os.getcwd()) + " " + " ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:] == ["output", "-json"]:
    outputs = json.load(open("cdk.tf.json")).get("output", {{}})
    print(json.dumps({{name: {{"sensitive": False, "type": "string", "value": body["value"]}}
                      for name, body in outputs.items() if "${{" not in str(body["value"])}}))
'''
CLOUD = """\
project: demo-gcf-kit-cloud
region: europe-west1
state: {bucket: demo-gcf-kit-cloud-tfstate}
functions:
  api: {entry_point: api}
"""


@pytest.fixture
def cloud(tmp_path, firestore_emulator):
    env_dir, out, state = tmp_path / "environments", tmp_path / "cdktf.out", tmp_path / "state"
    shutil.copytree(ROOT / "environments", env_dir)
    (env_dir / "cloud.yaml").write_text(CLOUD)
    (tmp_path / "migrations").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    terraform = bin_dir / "terraform"
    terraform.write_text(FAKE_TERRAFORM.format(python=sys.executable))
    terraform.chmod(0o755)
    environ = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "GCF_KIT_ENVIRONMENTS_DIR": str(env_dir), "GCF_KIT_OUTDIR": str(out), "GCF_KIT_STATE_DIR": str(state),
               "GCFKIT_MIGRATIONS_DIR": str(tmp_path / "migrations"), "FAKE_TERRAFORM_LOG": str(tmp_path / "tf.log"),
               "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
               "FIRESTORE_EMULATOR_HOST": firestore_emulator.address}

    def deploy(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kit", "deploy", *args], cwd=ROOT, env=environ,
                              capture_output=True, text=True, timeout=300)

    deploy.tmp, deploy.out, deploy.state = tmp_path, out, state  # type: ignore[attr-defined]
    return deploy


def test_a_cloud_deploy_applies_exactly_the_stacks_synthesized_for_it_and_records_the_outputs(cloud):
    # A stack folder another run left behind (an environment `cloud-eu` that was renamed, say): never applied.
    stale = cloud.out / "stacks" / "cloud-eu-functions"
    stale.mkdir(parents=True)
    (stale / "cdk.tf.json").write_text("{}")

    result = cloud("cloud", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = (cloud.tmp / "tf.log").read_text().splitlines()
    assert ran == ["cloud-functions init -input=false", "cloud-functions apply -input=false -auto-approve",
                   "cloud-functions output -json"]

    synthesized = json.loads((cloud.out / "stacks" / "cloud-functions" / "cdk.tf.json").read_text())
    sha256 = synthesized["output"]["bundle_sha256"]["value"]
    record = json.loads((cloud.state / "cloud" / "deployed.json").read_text())
    assert (record["env"], record["project"]) == ("cloud", "demo-gcf-kit-cloud")
    assert record["stacks"]["cloud-functions"]["bundle_sha256"] == sha256
    summary = (cloud.tmp / "summary.md").read_text()
    assert "### Deployed `cloud` (project `demo-gcf-kit-cloud`)" in summary
    assert f"| `bundle_sha256` | `{sha256}` |" in summary


def test_a_failed_apply_records_nothing(cloud):
    failing = cloud.tmp / "bin" / "terraform"
    failing.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.exit(1 if sys.argv[1] == "apply" else 0)
        """))
    result = cloud("cloud", "--auto-approve")
    assert result.returncode == 2
    assert "terraform apply failed for cloud-functions" in result.stderr
    assert not (cloud.state / "cloud" / "deployed.json").exists()
    assert not Path(cloud.tmp / "summary.md").exists()
