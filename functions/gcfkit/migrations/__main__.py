"""python -m gcfkit.migrations <command>: Firestore data migrations (run with functions/ on sys.path).

  status                      every migration, its state, checksum, when and by whom it ran
  plan [--to V] [--out F]     dry run: what up would change (samples of diffs), validated; writes nothing
  up [--to V] [--plan F]      apply pending migrations (with --plan: exactly the planned versions and files)
  down --to V                 revert migrations above V, newest first
  validate                    run validate() of every applied migration against the data now
  stamp V                     record V and below as applied without running them
  restamp V                   accept V's file as it is now (after an intended edit), touching no other version

An irreversible migration runs only if approved: `--approve-irreversible V` on `up`, or on the `plan`
whose file `up --plan` applies. `up` reads the plan file from GCFKIT_MIGRATION_PLAN when --plan is not
given: the Cloud Run job sets it, so an execution applies exactly the reviewed plan uploaded for it.
The project is --project, else GOOGLE_CLOUD_PROJECT; FIRESTORE_EMULATOR_HOST selects the emulator.
In a Cloud Run job, CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT split the work: every task runs `up`.
Exit codes: 0 ok, 1 a migration, validation or plan failed, 2 bad input, 3 locked by another runner.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gcfkit.migrations import command
from gcfkit.migrations.engine import Engine
from gcfkit.migrations.errors import MigrationError
from gcfkit.migrations.runtime import Settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gcfkit.migrations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", help="the revision files (default: functions/migrations, or GCFKIT_MIGRATIONS_DIR)")
    p.add_argument("--project", help="GCP project (default: GOOGLE_CLOUD_PROJECT)")
    p.add_argument("--database", help="Firestore database id (default: (default))")
    p.add_argument("--workers", type=command.positive,
                   help="parallel range workers, at least 1 (default 4, GCFKIT_MIGRATION_WORKERS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="show every migration and its state")
    plan = commands.add_parser("plan", help="dry run: what `up` would change; writes nothing")
    plan.add_argument("--to", type=command.version, help="plan up to this version")
    plan.add_argument("--out", type=Path, help="write the plan as JSON (for `up --plan`)")
    approve = {"type": command.versions, "default": frozenset(), "metavar": "V,...",
               "help": "versions of irreversible migrations you approve (their data cannot be restored)"}
    plan.add_argument("--approve-irreversible", **approve)
    up = commands.add_parser("up", help="apply pending migrations")
    up.add_argument("--to", type=command.version, help="stop after this version")
    up.add_argument("--plan", type=Path, default=os.environ.get("GCFKIT_MIGRATION_PLAN") or None,
                    help="apply exactly this plan's versions and files, or refuse (default: GCFKIT_MIGRATION_PLAN)")
    up.add_argument("--approve-irreversible", **approve)
    up.add_argument("--no-revert", action="store_true", help="when validation fails, keep the data (do not run down)")
    down = commands.add_parser("down", help="revert migrations above a version, newest first")
    down.add_argument("--to", type=command.version, required=True,
                      help="the version to go back to (0000: revert everything)")
    down.add_argument("--allow-irreversible", action="store_true", help="allow crossing irreversible migrations")
    down.add_argument("--allow-partial", action="store_true",
                      help="also revert a migration whose up stopped part-way (its down runs on every document)")
    commands.add_parser("validate", help="validate every applied migration against the data now")
    stamp = commands.add_parser("stamp", help="mark a version (and below) applied without running anything")
    stamp.add_argument("version", type=command.version)
    stamp.add_argument("--mark-later-pending", action="store_true",
                       help="also record applied versions above it as pending, although their data stays")
    restamp = commands.add_parser("restamp", help="accept one version's file as it is now (after an intended edit)")
    restamp.add_argument("version", type=command.version)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "up" and args.plan and args.to:
        p.error("up: --plan applies the plan up to its own --to; give --to when planning, not here")
    try:
        overrides: dict = {"progress": False} if args.no_progress else {}
        if args.workers is not None:
            overrides["workers"] = args.workers
        if getattr(args, "no_revert", False):
            overrides["revert_on_failure"] = False
        try:
            settings = Settings.from_env(**overrides)
        except ValueError as exc:  # a GCFKIT_MIGRATION_* / CLOUD_RUN_* variable
            print(f"error: {exc}", file=sys.stderr)
            return 2
        with command.reported_errors(args.project):
            engine = Engine(command.make_client(args.project, args.database), command.migrations_directory(args.dir),
                            settings)
            return run(engine, args)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def run(engine: Engine, args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.command == "status":
        return command.status(engine, out)
    if args.command == "plan":
        plan = engine.plan(args.to, args.approve_irreversible)
        command.render_plan(plan, out)
        if args.out:
            command.write_plan(plan, args.out)
            print(f"plan written to {args.out}", file=sys.stderr)
        return 0 if plan.ok else 1
    if args.command == "up":
        if args.plan:
            plan = command.read_plan(args.plan, engine.client, _make_plan(args.plan))
            command.apply_plan(engine, plan, args.approve_irreversible)
        else:
            engine.up(args.to, None, args.approve_irreversible)
        return 0
    if args.command == "down":
        engine.down(args.to, args.allow_irreversible, args.allow_partial)
        return 0
    if args.command == "validate":
        return command.validate(engine, out)
    if args.command == "restamp":
        engine.restamp(args.version)
        return 0
    engine.stamp(args.version, args.mark_later_pending)
    return 0


def _make_plan(path: Path) -> str | None:
    """How to make the plan `up` looks for: a plan at GCFKIT_MIGRATION_PLAN (the migration job's) is uploaded."""
    if Path(os.environ.get("GCFKIT_MIGRATION_PLAN") or "-") != path:
        return None  # read_plan's own advice: `plan --out <path>`
    return ("`make migrate-plan ENV=<env> PLAN=plan.json`, uploaded to the Terraform output migration_plan_object "
            "(the object GCFKIT_MIGRATION_PLAN names here)")


if __name__ == "__main__":
    sys.exit(main())
