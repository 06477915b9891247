"""The CDK Terrain app: every requested environment's stacks in one `App`, synthesized into cdktf.out/."""

from __future__ import annotations

from pathlib import Path

from cdktn import App

from kit.bundle import FUNCTIONS_DIR, build_bundle, check_environments
from kit.config import ENVIRONMENTS_DIR, SYNTH_OUTDIR, ConfigError, Environment, load_environment
from stacks import iam
from stacks.functions import FunctionsStack
from stacks.source import bucket_name


def synth(env_names: list[str], outdir: str | Path | None = None, environments_dir: Path = ENVIRONMENTS_DIR,
          functions_dir: Path = FUNCTIONS_DIR) -> dict[str, Path]:
    """Validate every environment first (nothing is written on a config error), then synthesize.

    One bundle of `functions_dir` serves every environment. Returns stack name -> the folder holding its
    cdk.tf.json (where terraform runs).
    """
    environments = [load_environment(name, environments_dir) for name in env_names]
    return synth_environments(environments, outdir, environments_dir, functions_dir)


def synth_environments(environments: list[Environment], outdir: str | Path | None = None,
                       environments_dir: Path = ENVIRONMENTS_DIR, functions_dir: Path = FUNCTIONS_DIR
                       ) -> dict[str, Path]:
    """`synth` of environments the caller has already loaded (and validated)."""
    for env in environments:
        check_source_bucket(env, environments_dir)
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


def check_source_bucket(env: Environment, environments_dir: Path) -> None:
    """The build may write Cloud Functions' gcf-v2-* buckets; the kit's source bucket must never be one of them."""
    if bucket_name(env).startswith(iam.BUILD_BUCKET_PREFIXES):
        raise ConfigError(environments_dir / f"{env.name}.yaml", [
            f": project: {env.project!r} makes the source bucket {bucket_name(env)!r}, a name Cloud Functions "
            f"reserves for its own buckets ({', '.join(p + '*' for p in iam.BUILD_BUCKET_PREFIXES)}), which the "
            "build may write; allowed: a project id that does not start with those"])
