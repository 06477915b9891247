"""The pre-deploy hook: runs before anything of a deploy changes, for every environment.

Every deploy (`make deploy`, the CI pipeline) calls `pre_deploy` first; if it raises StageFailed the
deploy stops before the emulator, functions or infrastructure are touched. This is the place where the
migration dry-run gate plugs in.
"""

from __future__ import annotations

from kit.config import Environment
from kit.stages import Stages


def pre_deploy(env: Environment, stages: Stages) -> None:
    """Checks that must pass before `env` changes. Raise StageFailed with the reason to block the deploy."""
    stages.note(f"{env.name}: no pre-deploy checks registered (migrations plug in here)")
