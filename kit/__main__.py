"""`python -m kit <command>`: what the Makefile's deploy, down and status targets run."""

from __future__ import annotations

import argparse
import os
import sys

from kit.bundle import BundleError
from kit.config import ConfigError
from kit.emulator import EmulatorError
from kit.stages import StageFailed

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    deploy = commands.add_parser("deploy", help="deploy an environment (local: emulator + functions-framework)")
    deploy.add_argument("env", nargs="?", default="local")
    deploy.add_argument("--auto-approve", action="store_true", help="cloud: terraform apply without asking")
    for name, text in (("down", "stop a local environment"), ("status", "show a local environment")):
        commands.add_parser(name, help=text).add_argument("env", nargs="?", default="local")
    commands.add_parser("validate", help="validate every environment file (and that functions/main.py defines "
                                         "their entry points)")
    args = parser.parse_args(argv)

    from kit import cloud, config, local
    try:
        if args.command == "deploy":
            environment = config.load_environment(args.env)
            if environment.is_local:
                local.deploy_local(args.env)
            else:
                cloud.deploy_cloud(args.env, auto_approve=args.auto_approve)
        elif args.command == "down":
            local.down(args.env)
        elif args.command == "status":
            return local.status(args.env)
        elif args.command == "validate":
            validate()
    except (ConfigError, BundleError, StageFailed, EmulatorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def validate() -> None:
    """Every environment file, and what they run against the sources (parsed, never imported)."""
    from kit.bundle import bundle_files, check_environments, top_level_names
    from kit.config import FUNCTIONS_DIR, load_all

    environments = load_all()
    check_environments(environments.values(), bundle_files(), top_level_names(FUNCTIONS_DIR / "main.py"))
    for name, env in environments.items():
        print(f"{name:<10} ok  project={env.project} functions={', '.join(env.functions)}")


if __name__ == "__main__":
    sys.exit(main())
