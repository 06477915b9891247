"""The CDK Terrain app: every requested environment's stacks in one `App`, synthesized into cdktf.out/."""

from __future__ import annotations

from pathlib import Path

from cdktn import App

from kit.bundle import FUNCTIONS_DIR, build_bundle, check_environments
from kit.config import ENVIRONMENTS_DIR, SYNTH_OUTDIR, load_environment
from stacks.functions import FunctionsStack


def synth(env_names: list[str], outdir: str | Path | None = None, environments_dir: Path = ENVIRONMENTS_DIR,
          functions_dir: Path = FUNCTIONS_DIR) -> dict[str, Path]:
    """Validate every environment first (nothing is written on a config error), then synthesize.

    One bundle of `functions_dir` serves every environment. Returns stack name -> the folder holding its
    cdk.tf.json (where terraform runs).
    """
    environments = [load_environment(name, environments_dir) for name in env_names]
    out = Path(outdir) if outdir else SYNTH_OUTDIR
    bundle = build_bundle(out / "bundle", functions_dir)
    check_environments(environments, bundle.files, bundle.entry_points, environments_dir)
    app = App(outdir=str(out))
    stacks = {}
    for env in environments:
        stack_id = f"{env.name}-functions"  # kit/cloud.py applies exactly the stacks returned here
        stacks[stack_id] = out / "stacks" / stack_id
        FunctionsStack(app, stack_id, env=env, bundle=bundle, stack_dir=stacks[stack_id])
    app.synth()
    prune_bundles(out)
    return stacks


def prune_bundles(out: Path) -> None:
    """Each code change leaves a new functions-<hash>.zip; keep only those a synthesized stack still uploads
    (a stack synthesized earlier, e.g. with --env, keeps the bundle it references)."""
    stack_files = [p.read_text(encoding="utf-8") for p in (out / "stacks").glob("*/cdk.tf.json")]
    for bundle in (out / "bundle").glob("functions-*.zip"):
        if not any(f"/bundle/{bundle.name}" in text for text in stack_files):
            bundle.unlink()
