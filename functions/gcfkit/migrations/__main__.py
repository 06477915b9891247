"""python -m gcfkit.migrations <command>: Firestore data migrations (run with functions/ on sys.path).

  status                      every migration, its state, checksum and when it ran
  plan [--to V] [--out F]     dry run: what up would change (samples of diffs), validated; writes nothing
  up [--to V] [--plan F]      apply pending migrations (with --plan: exactly the planned versions and files)
  down --to V                 revert migrations above V, newest first
  validate                    run validate() of every applied migration against the data now
  stamp V                     record V and below as applied without running them

The project is --project, else GOOGLE_CLOUD_PROJECT; FIRESTORE_EMULATOR_HOST selects the emulator.
In a Cloud Run job, CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT split the work: every task runs `up`.
Exit codes: 0 ok, 1 a migration, validation or plan failed, 2 bad input, 3 locked by another runner.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gcfkit.migrations import command
from gcfkit.migrations.engine import Engine
from gcfkit.migrations.errors import MigrationError, PlanMismatch
from gcfkit.migrations.runtime import Settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcfkit.migrations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", help="the revision files (default: functions/migrations, or GCF_KIT_MIGRATIONS_DIR)")
    p.add_argument("--project", help="GCP project (default: GOOGLE_CLOUD_PROJECT)")
    p.add_argument("--database", help="Firestore database id (default: (default))")
    p.add_argument("--workers", type=int, help="parallel range workers (default 4, GCF_KIT_MIGRATION_WORKERS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="show every migration and its state")
    plan = commands.add_parser("plan", help="dry run: what `up` would change; writes nothing")
    plan.add_argument("--to", type=command.version, help="plan up to this version")
    plan.add_argument("--out", type=Path, help="write the plan as JSON (for `up --plan`)")
    plan.add_argument("--approve-irreversible", default="", metavar="V,...",
                      help="versions of irreversible migrations you approve")
    up = commands.add_parser("up", help="apply pending migrations")
    up.add_argument("--to", type=command.version, help="stop after this version")
    up.add_argument("--plan", type=Path, help="refuse unless exactly this plan's versions and files would run")
    up.add_argument("--no-revert", action="store_true", help="when validation fails, keep the data (do not run down)")
    down = commands.add_parser("down", help="revert migrations above a version, newest first")
    down.add_argument("--to", type=command.version, required=True,
                      help="the version to go back to (0000: revert everything)")
    down.add_argument("--allow-irreversible", action="store_true", help="allow crossing irreversible migrations")
    commands.add_parser("validate", help="validate every applied migration against the data now")
    stamp = commands.add_parser("stamp", help="mark a version (and below) applied without running anything")
    stamp.add_argument("version", type=command.version)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        overrides = {"progress": False} if args.no_progress else {}
        if args.workers:
            overrides["workers"] = args.workers
        if getattr(args, "no_revert", False):
            overrides["revert_on_failure"] = False
        settings = Settings.from_env(**overrides)
        engine = Engine(command.make_client(args.project, args.database), command.migrations_directory(args.dir),
                        settings)
        return run(engine, args)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # settings from the environment
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(engine: Engine, args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.command == "status":
        return command.status(engine, out)
    if args.command == "plan":
        approved = frozenset(v.strip() for v in args.approve_irreversible.split(",") if v.strip())
        plan = engine.plan(args.to, approved)
        command.render_plan(plan, out)
        if args.out:
            command.write_plan(plan, args.out)
            print(f"plan written to {args.out}", file=sys.stderr)
        return 0 if plan.ok else 1
    if args.command == "up":
        pinned = None
        if args.plan:
            plan = command.read_plan(args.plan)
            target = [engine.client.project, engine.client._database]
            if [plan["project"], plan["database"]] != target:
                raise PlanMismatch(f"{args.plan} was made for {plan['project']} ({plan['database']}), not "
                                   f"{target[0]} ({target[1]}); make a plan for this database")
            if plan.get("problems"):
                raise PlanMismatch(f"{args.plan} has problems, so it cannot be applied: {'; '.join(plan['problems'])}")
            pinned = command.pinned_versions(plan)
        engine.up(args.to, pinned)
        return 0
    if args.command == "down":
        engine.down(args.to, args.allow_irreversible)
        return 0
    if args.command == "validate":
        return command.validate(engine, out)
    engine.stamp(args.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
