"""`python -m stacks [--env NAME ...]`: synthesize into cdktf.out/ (what `make synth` and cdktf.json run)."""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def main(argv: list[str] | None = None) -> int:
    from kit.bundle import BundleError
    from kit.config import ConfigError, environment_names, load_all

    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__)
    parser.add_argument("--env", action="append", dest="envs", metavar="NAME",
                        help="environment to synthesize (repeatable; default: all of "
                             f"{', '.join(environment_names())})")
    parser.add_argument("--outdir", default=None, help="output folder (default: cdktf.out)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        from stacks.app import synth, synth_environments
        # All of them: load_all also checks across files (no environment file at all, a project used twice).
        stacks = synth(args.envs, outdir=args.outdir) if args.envs else \
            synth_environments(list(load_all().values()), outdir=args.outdir)
    except (ConfigError, BundleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, directory in stacks.items():
        print(f"  synthesized {name:<28} -> {directory}")
    print(f"synth: {len(stacks)} stacks in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
