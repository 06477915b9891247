"""The CDK Terrain app: every requested environment's stacks in one `App`, synthesized into cdktf.out/."""

from __future__ import annotations

import difflib
from pathlib import Path

from cdktn import App

from kit.bundle import FUNCTIONS_DIR, Bundle, build_bundle
from kit.config import ENVIRONMENTS_DIR, SYNTH_OUTDIR, ConfigError, Environment, load_environment
from stacks.functions import FunctionsStack

MIGRATIONS_MAIN = "gcfkit/migrations/__main__.py"  # what the migration job runs


def synth(env_names: list[str], outdir: str | Path | None = None, environments_dir: Path = ENVIRONMENTS_DIR,
          functions_dir: Path = FUNCTIONS_DIR) -> dict[str, Path]:
    """Validate every environment first (nothing is written on a config error), then synthesize.

    One bundle of `functions_dir` serves every environment. Returns stack name -> the folder holding its
    cdk.tf.json (where terraform runs).
    """
    environments = [load_environment(name, environments_dir) for name in env_names]
    out = Path(outdir) if outdir else SYNTH_OUTDIR
    bundle = build_bundle(out / "bundle", functions_dir)
    for env in environments:
        check_bundle(env, bundle, environments_dir)
    app = App(outdir=str(out))
    stacks = {}
    for env in environments:
        stack_id = f"{env.name}-functions"  # kit/cloud.py applies every cdktf.out/stacks/<env>-* folder
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


def check_bundle(env: Environment, bundle: Bundle, environments_dir: Path) -> None:
    """What the env file runs must be in the bundle: a typo fails here, not in a cloud build or a job run."""
    problems = []
    for name, fn in env.functions.items():
        if fn.entry_point not in bundle.entry_points:
            close = difflib.get_close_matches(fn.entry_point, bundle.entry_points, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f": functions.{name}.entry_point: {fn.entry_point!r} is not defined at the top level "
                            f"of functions/main.py{hint}; allowed: a function defined or imported there")
    if env.migration_job is not None and MIGRATIONS_MAIN not in bundle.files:
        problems.append(f": migration_job: the bundle has no {MIGRATIONS_MAIN}, which the job runs "
                        "(python -m gcfkit.migrations up); add the migrations engine or remove migration_job")
    if problems:
        raise ConfigError(environments_dir / f"{env.name}.yaml", problems)
