"""Deploy a cloud environment: validate -> pre-deploy hook -> synth -> terraform init/apply per stack.

Every stage must pass before the next starts, so a failed gate stops before anything changes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from kit import hooks
from kit.config import ROOT, SYNTH_OUTDIR, load_all
from kit.stages import StageFailed, Stages


def deploy_cloud(env_name: str, auto_approve: bool = False) -> None:
    stages = Stages(f"deploy {env_name} (cloud)", total=4)
    with stages.stage("validate environment files"):
        environments = load_all()
        if env_name not in environments:
            raise StageFailed(f"no environment {env_name!r}; known: {', '.join(environments)}")
        env = environments[env_name]
        if env.is_local:
            raise StageFailed(f"{env_name} is a local environment; `make deploy ENV={env_name}` serves it locally")

    with stages.stage(f"pre-deploy hook against project {env.project}"):
        hooks.pre_deploy(env, stages)

    with stages.stage("synthesize"):
        result = subprocess.run([sys.executable, "-m", "stacks", "--env", env_name], cwd=ROOT)
        if result.returncode != 0:
            raise StageFailed("synthesis failed; nothing was applied")

    with stages.stage("terraform init + apply"):
        terraform = shutil.which("terraform") or shutil.which("tofu")
        if terraform is None:
            raise StageFailed("terraform (or tofu) is not on PATH; install it to deploy cloud environments")
        for stack_dir in sorted((SYNTH_OUTDIR / "stacks").glob(f"{env_name}-*")):
            stages.note(f"{stack_dir.name}: terraform init")
            if subprocess.run([terraform, "init", "-input=false"], cwd=stack_dir).returncode != 0:
                raise StageFailed(f"terraform init failed in {stack_dir} (needs the google provider from the "
                                  "Terraform registry and access to the state bucket)")
            apply = [terraform, "apply", "-input=false"] + (["-auto-approve"] if auto_approve else [])
            if subprocess.run(apply, cwd=stack_dir).returncode != 0:
                raise StageFailed(f"terraform apply failed for {stack_dir.name}")
    stages.finish()
