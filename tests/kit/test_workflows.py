"""The GitHub deploy workflow and the environment files agree."""

from __future__ import annotations

import yaml

from kit.config import ROOT, load_all


def test_the_deploy_workflow_offers_exactly_the_cloud_environments():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    options = triggers["workflow_dispatch"]["inputs"]["environment"]["options"]
    cloud = [name for name, env in load_all().items() if not env.is_local]
    assert options == cloud, "add (or remove) the environment in .github/workflows/deploy.yml's options too"
