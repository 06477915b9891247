"""The pre-deploy hook: runs before anything of a deploy changes, for every environment.

Every deploy (`make deploy`, the CI pipeline) calls `pre_deploy` first; if it raises StageFailed the
deploy stops before the emulator's functions or any infrastructure are touched.

What it runs is the migration gate (kit/migrate.py, alone: `make migrate-plan ENV=x`): a dry run of every
pending migration against the environment's Firestore, validated. Checksum drift, an error, a failed
validation, a migration running right now, or an irreversible migration nobody approved (versions in
GCF_KIT_APPROVE_IRREVERSIBLE; in CI the deploy workflow's approve_irreversible input) stop the deploy with
the reason. A local environment then applies the plan
it just dry-ran (the emulator's data is disposable); a cloud environment leaves that to the approved
`make migrate ENV=x` (in CI: the job bound to the protected GitHub environment).
"""

from __future__ import annotations

from kit.config import Environment
from kit.stages import Stages


def pre_deploy(env: Environment, stages: Stages) -> None:
    """Checks that must pass before `env` changes. Raises StageFailed with the reason to block the deploy."""
    from kit import migrate  # imports the Firestore client: only deploys pay for it

    plan = migrate.gate(env, stages, approved=migrate.approved_irreversible())
    if not plan.migrations:
        return
    if env.is_local:
        migrate.apply(env, stages=stages)
    else:
        stages.note(f"{len(plan.migrations)} migration(s) pending in {env.name}; they run with the approved "
                    f"`make migrate ENV={env.name}` (CI: the protected migrate job), not with this deploy")
