"""The CDK Terrain app: every requested environment's stacks in one `App`, synthesized into cdktf.out/."""

from __future__ import annotations

from pathlib import Path

from cdktn import App

from kit.bundle import build_bundle
from kit.config import SYNTH_OUTDIR, load_environment
from stacks.functions import FunctionsStack


def synth(env_names: list[str], outdir: str | Path | None = None) -> dict[str, Path]:
    """Validate every environment first (nothing is written on a config error), then synthesize."""
    environments = [load_environment(name) for name in env_names]
    out = Path(outdir) if outdir else SYNTH_OUTDIR
    bundle = build_bundle(out / "bundle" / "functions.zip")
    app = App(outdir=str(out))
    stacks = {}
    for env in environments:
        stack = FunctionsStack(app, f"{env.name}-functions", env=env, bundle=bundle)
        stacks[stack.node.id] = out / "stacks" / stack.node.id
    app.synth()
    return stacks
