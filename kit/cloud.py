"""Deploy a cloud environment: validate -> pre-deploy hook -> synth -> terraform init/apply per stack -> record.

Every stage must pass before the next starts, so a failed gate stops before anything changes. Terraform runs
in exactly the stack folders synthesized for this environment (never a folder another run left behind).
After a successful apply, `terraform output -json` of each stack (the bundle's sha256 among them) is
written to `.local/<env>/deployed.json` and, in GitHub Actions, to the job summary: the record of which
bundle is deployed, so a rollback knows which commit to deploy again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from kit import hooks
from kit.bundle import BundleError
from kit.config import STATE_DIR, ConfigError, load_all
from kit.stages import StageFailed, Stages

SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"  # set by GitHub Actions: markdown appended here shows on the run page


def deploy_cloud(env_name: str, auto_approve: bool = False) -> None:
    stages = Stages(f"deploy {env_name} (cloud)", total=5)
    with stages.stage("validate environment files"):
        environments = load_all()
        if env_name not in environments:
            raise StageFailed(f"no environment {env_name!r}; known: {', '.join(environments)}")
        env = environments[env_name]
        if env.is_local:
            raise StageFailed(f"{env_name} is a local environment; `make deploy ENV={env_name}` serves it locally")
        terraform = shutil.which("terraform") or shutil.which("tofu")
        if terraform is None:
            raise StageFailed("terraform (or tofu) is not on PATH; install it to deploy cloud environments")

    with stages.stage(f"pre-deploy hook against project {env.project}"):
        hooks.pre_deploy(env, stages)

    with stages.stage("synthesize"):
        from stacks.app import synth_environments  # imports CDK Terrain (and its node runtime): deploys only

        try:
            stacks = synth_environments([env])  # as validated above
        except (ConfigError, BundleError) as exc:
            raise StageFailed(f"synthesis failed; nothing was applied:\n{exc}") from None
        for name, stack_dir in stacks.items():
            stages.note(f"{name} -> {stack_dir}")

    with stages.stage("terraform init + apply"):
        for name, stack_dir in stacks.items():
            stages.note(f"{name}: terraform init")
            if subprocess.run([terraform, "init", "-input=false"], cwd=stack_dir).returncode != 0:
                raise StageFailed(f"terraform init failed in {stack_dir} (needs the google provider from the "
                                  "Terraform registry and access to the state bucket)")
            apply = [terraform, "apply", "-input=false"] + (["-auto-approve"] if auto_approve else [])
            if subprocess.run(apply, cwd=stack_dir).returncode != 0:
                raise StageFailed(f"terraform apply failed for {name}")

    with stages.stage("record what was deployed"):
        outputs = {name: _outputs(terraform, name, stack_dir) for name, stack_dir in stacks.items()}
        record = STATE_DIR / env_name / "deployed.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"env": env_name, "project": env.project,
                                      "applied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      "stacks": outputs}, indent=2) + "\n")
        stages.note(f"outputs of {', '.join(outputs)} -> {record}")
        if summary := os.environ.get(SUMMARY_VARIABLE):
            with Path(summary).open("a", encoding="utf-8") as out:
                out.write(_summary(env_name, env.project, outputs))
            stages.note(f"and to the job summary (${SUMMARY_VARIABLE})")
    stages.finish()


def _outputs(terraform: str, name: str, stack_dir: Path) -> dict:
    """`terraform output -json` as name -> value; a sensitive value is never written down."""
    result = subprocess.run([terraform, "output", "-json"], cwd=stack_dir, capture_output=True, text=True)
    if result.returncode != 0:
        raise StageFailed(f"{name} was applied, but `terraform output -json` failed in {stack_dir}:\n"
                          f"{result.stderr[-2000:]}")
    try:
        outputs = json.loads(result.stdout)
    except ValueError:
        raise StageFailed(f"{name} was applied, but `terraform output -json` printed no JSON") from None
    return {key: "<sensitive>" if body.get("sensitive") else body.get("value") for key, body in outputs.items()}


def _summary(env_name: str, project: str, outputs: dict[str, dict]) -> str:
    lines = [f"### Deployed `{env_name}` (project `{project}`)", ""]
    for name, values in outputs.items():
        lines += [f"**{name}**", "", "| output | value |", "|---|---|"]
        lines += [f"| `{key}` | `{value if isinstance(value, str) else json.dumps(value)}` |"
                  for key, value in sorted(values.items())]
        lines.append("")
    return "\n".join(lines) + "\n"
