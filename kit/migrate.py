"""Migrations for an environment: the deploy gate, approved runs, new revision files, example data.

The engine (functions/gcfkit/migrations) knows nothing about environments; this module gives it the
environment's database and adds what a deploy needs:

- `gate` (every deploy runs it first, through kit/hooks.py; alone: `make migrate-plan ENV=x`): a dry run
  of every pending migration, validated, written to a plan file. Drift, an error, a failed validation, a
  running migration or an irreversible migration nobody approved raise StageFailed, so the deploy stops.
- `apply` (`make migrate ENV=x`): needs approval (typing the environment's name in a terminal, or in CI
  GCF_KIT_MIGRATE_APPROVED=<env>, set only by the job bound to the protected GitHub environment) and applies
  exactly the versions, file checksums and irreversible approvals of the plan file, or refuses.
- `new_revision` (`make migration NAME=...`): renders templates/migration.py.j2 as the next version.
- `seed` (`make seed`): the example data, in its pre-migration shape, into a local environment's emulator.
- `status`, `validate` (read only), `down`, `stamp`, `restamp` (approved like `apply`) for an environment.

`python -m kit.migrate <plan|apply|status|validate|down|stamp|restamp|new|seed> ...` is what the Makefile runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kit.config import ROOT, ConfigError, Environment, load_environment, use_runtime_package
from kit.emulator import FirestoreEmulator
from kit.stages import StageFailed, Stages

TEMPLATE = ROOT / "templates" / "migration.py.j2"
APPROVAL_VARIABLE = "GCF_KIT_MIGRATE_APPROVED"
IRREVERSIBLE_VARIABLE = "GCF_KIT_APPROVE_IRREVERSIBLE"

use_runtime_package()  # the engine ships in the function bundle; the kit runs it from there

from gcfkit import migrations as engine  # noqa: E402
from gcfkit.migrations import command  # noqa: E402


def plan_path(env: Environment) -> Path:
    state = Path(os.environ.get("GCF_KIT_STATE_DIR", ROOT / ".local"))
    return state / env.name / "migration-plan.json"


def approved_irreversible(extra: frozenset[str] = frozenset()) -> frozenset[str]:
    """`extra` (APPROVE_IRREVERSIBLE=..., parsed by argparse) and GCF_KIT_APPROVE_IRREVERSIBLE, parsed alike."""
    try:
        return command.versions(os.environ.get(IRREVERSIBLE_VARIABLE, "")) | extra
    except argparse.ArgumentTypeError as exc:
        raise StageFailed(f"{IRREVERSIBLE_VARIABLE}: {exc}") from None


@contextmanager
def database(env: Environment) -> Iterator:
    """A Firestore client for `env`: a local environment's emulator, or the cloud project's database."""
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if env.local is not None:
        emulator = FirestoreEmulator(env.local.host, env.local.firestore_port)
        if not emulator.ready():
            raise StageFailed(f"the Firestore emulator of {env.name} is not running on {emulator.address} "
                              f"(local.firestore_port in environments/{env.name}.yaml); `make deploy` starts it")
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.address
    elif previous and not env.project.startswith("demo-"):  # demo- projects can only ever be emulated
        raise StageFailed(f"FIRESTORE_EMULATOR_HOST={previous} is set, so migrations of {env.name} would reach that "
                          f"emulator instead of project {env.project}; unset it (or use a local environment)")
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import firestore

    try:
        client = firestore.Client(project=env.project)
    except DefaultCredentialsError as exc:
        _restore(previous)
        raise StageFailed(f"no Google credentials to reach Firestore in project {env.project}: {exc}\n"
                          "run `gcloud auth application-default login` (CI: workload identity federation)") from None
    try:
        yield client
    finally:
        client.close()
        _restore(previous)


def _restore(emulator_host: str | None) -> None:
    if emulator_host is None:
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
    else:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host


@contextmanager
def _reported(env: Environment, what: str) -> Iterator[None]:
    """Engine and API errors become StageFailed naming the environment (and what was, or was not, done)."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except engine.MigrationError as exc:
        raise StageFailed(f"migrations of {env.name} ({what}): {exc}") from None
    except (GoogleAPICallError, RetryError) as exc:
        raise StageFailed(f"migrations of {env.name} ({what}): Firestore in project {env.project} answered: "
                          f"{exc}") from None
    except GoogleAuthError as exc:
        raise StageFailed(f"migrations of {env.name} ({what}): the Google credentials for project {env.project} "
                          f"failed ({exc}); run `gcloud auth application-default login` (CI: workload identity "
                          "federation)") from None


def _engine(client) -> engine.Engine:
    """The engine for `client`, with its settings from the GCFKIT_MIGRATION_* variables (a bad one: StageFailed)."""
    try:
        settings = engine.Settings.from_env()
    except ValueError as exc:
        raise StageFailed(f"{exc} (an environment variable of this shell; docs/migrations.md lists them)") from None
    return engine.Engine(client, command.migrations_directory(), settings)


def _say(stages: Stages | None, text: str) -> None:
    for line in text.rstrip("\n").splitlines():
        if stages is None:
            print(line, flush=True)
        else:
            stages.note(line)


def deploy_approval(env: Environment) -> Callable[[str], str]:
    """How a `make deploy` user approves irreversible migration `version` (make forwards no APPROVE_ variable)."""
    return lambda version: (f"`{IRREVERSIBLE_VARIABLE}={version} make deploy ENV={env.name}` (CI: the deploy "
                            "workflow's approve_irreversible input)")


def plan_approval(env: Environment) -> Callable[[str], str]:
    """How a `make migrate-plan` user approves irreversible migration `version`."""
    return lambda version: (f"`make migrate-plan ENV={env.name} APPROVE_IRREVERSIBLE={version}` (CI: the deploy "
                            "workflow's approve_irreversible input)")


def gate(env: Environment, stages: Stages | None = None, *, approved: frozenset[str] = frozenset(),
         out: Path | None = None, approve_with: Callable[[str], str] | None = None) -> engine.Plan:
    """The dry-run gate. Writes the plan file; StageFailed (with every problem) unless the plan is clean.
    `approve_with(version)` says how the calling command approves an irreversible migration: by default as
    `make deploy` does, which runs this gate through kit/hooks.py."""
    with database(env) as client, _reported(env, "dry run; nothing was written"):
        plan = _engine(client).plan(None, approved, approve_with or deploy_approval(env))
    rendered = io.StringIO()
    command.render_plan(plan, rendered)
    _say(stages, rendered.getvalue())
    path = out or plan_path(env)
    with _reported(env, "dry run; nothing was written"):
        command.write_plan(plan, path)
    _say(stages, f"plan file: {path}")
    if not plan.ok:
        raise StageFailed(f"the migration plan of {env.name} has {len(plan.problems)} problem(s); nothing was "
                          "deployed or migrated:\n  - " + "\n  - ".join(plan.problems))
    return plan


def apply(env: Environment, plan_file: Path | None = None, *, stages: Stages | None = None,
          interactive: bool | None = None, confirm: Callable[[str], str] = input) -> list:
    """The real run of a reviewed plan: approval first, then exactly the plan's versions and checksums."""
    path = plan_file or plan_path(env)
    with database(env) as client:
        with _reported(env, "nothing was applied"):
            plan = command.read_plan(path, client, make_plan=f"`make migrate-plan ENV={env.name}`")
        versions = ", ".join(plan.versions) or "none"
        irreversible = f", irreversible: {', '.join(sorted(plan.approved_irreversible))}" \
            if plan.approved_irreversible else ""
        if plan.versions:
            _approve(env, f"apply migration(s) {versions} (plan {plan.plan_id}{irreversible}) to project "
                     f"{env.project}", interactive, confirm)
        with _reported(env, "see the engine's message for what was applied"):
            records = command.apply_plan(_engine(client), plan)
    applied = ", ".join(record.version for record in records)
    _say(stages, f"{env.name}: applied {applied} exactly as planned ({plan.plan_id})" if records
         else f"{env.name}: nothing to apply")
    return records


def down(env: Environment, to: str, *, allow_irreversible: bool = False, allow_partial: bool = False,
         interactive: bool | None = None, confirm: Callable[[str], str] = input) -> list:
    _approve(env, f"revert every migration above {to} in project {env.project}", interactive, confirm)
    with database(env) as client, _reported(env, "see the engine's message for what was reverted"):
        return _engine(client).down(to, allow_irreversible, allow_partial)


def _approve(env: Environment, action: str, interactive: bool | None, confirm: Callable[[str], str]) -> None:
    if env.is_local:
        return  # the emulator's data is disposable; `make deploy` applies there without asking as well
    if os.environ.get(APPROVAL_VARIABLE) == env.name:
        print(f"approved: {APPROVAL_VARIABLE}={env.name} (set by the job bound to the protected environment)")
        return
    if interactive if interactive is not None else sys.stdin.isatty():
        answer = confirm(f"{action}? Type the environment name ({env.name}) to confirm: ")
        if answer.strip() == env.name:
            return
        raise StageFailed(f"not confirmed (got {answer.strip()!r}); nothing was changed")
    raise StageFailed(f"to {action} needs approval: run it in a terminal and type {env.name!r}, or in CI from the "
                      f"job bound to the protected GitHub environment {env.name!r}, which sets "
                      f"{APPROVAL_VARIABLE}={env.name}. Nothing was changed.")


def status(env: Environment) -> int:
    with database(env) as client, _reported(env, "read only"):
        return command.status(_engine(client), sys.stdout)


def validate(env: Environment) -> int:
    """Run validate() of every applied migration against the environment's data now (read only)."""
    with database(env) as client, _reported(env, "read only"):
        return command.validate(_engine(client), sys.stdout)


def stamp(env: Environment, version: str, *, mark_later_pending: bool = False, interactive: bool | None = None,
          confirm: Callable[[str], str] = input) -> None:
    """Record `version` and below as applied, running nothing. The approval names every applied version above it
    that `mark_later_pending` would record as pending (without the flag the engine refuses them before asking)."""
    with database(env) as client, _reported(env, "nothing was stamped"):
        migrations = _engine(client)
        later = migrations.check_stamp(version, mark_later_pending)  # without the flag: refuses, naming them
        also = (f", and record {', '.join(later)} as PENDING although their data stays as they left it (the next "
                "up applies them again)") if later else ""
        _approve(env, f"record {version} and below as applied in project {env.project}, running nothing{also}",
                 interactive, confirm)
        migrations.stamp(version, mark_later_pending)


def restamp(env: Environment, version: str, *, interactive: bool | None = None,
            confirm: Callable[[str], str] = input) -> None:
    """Accept the file of `version` as it is now (after an intended edit), touching no other version."""
    _approve(env, f"accept the current file of migration {version} in project {env.project} (re-record its checksum;"
             " no data changes, no other version)", interactive, confirm)
    with database(env) as client, _reported(env, "nothing was re-stamped"):
        _engine(client).restamp(version)


def new_revision(name: str, directory: Path | None = None, today: dt.date | None = None) -> Path:
    """Render the next revision file from templates/migration.py.j2 (like `alembic revision -m`)."""
    import jinja2

    directory = directory or command.migrations_directory()
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:48].rstrip("_")
    if not slug:
        raise StageFailed('NAME needs letters or digits, e.g. make migration NAME="add user locale"')
    versions = [int(m[1]) for p in directory.glob("*.py") if (m := re.match(r"(\d{4,})_", p.name))]
    version = f"{max(versions, default=0) + 1:04d}"
    path = directory / f"{version}_{slug}.py"
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                  autoescape=False).from_string(TEMPLATE.read_text(encoding="utf-8"))
    directory.mkdir(parents=True, exist_ok=True)
    # The name goes into a raw docstring (title) and a string literal (repr): no name can break the file.
    title = name.strip().replace('"""', "'''").rstrip("\\")
    path.write_text(template.render(version=version, title=title, name_literal=repr(name.strip()),
                                    created=(today or dt.date.today()).isoformat()), encoding="utf-8")
    try:
        engine.load_revisions(directory)
    except engine.MigrationError as exc:
        path.unlink()
        raise StageFailed(f"the rendered revision did not load, so it was removed: {exc}") from None
    return path


def seed(env: Environment) -> dict[str, int]:
    """Reset a local environment's emulator to the example data in its original shape."""
    from kit.migrate_seed import example_data, write

    if env.local is None:
        raise StageFailed(f"seed replaces all data, so it only runs on local environments; {env.name} is a cloud one")
    docs = example_data()
    with database(env) as client:
        FirestoreEmulator(env.local.host, env.local.firestore_port).wipe(env.project)
        write(client, docs)
    counts: dict[str, int] = {}
    for path in docs:
        counts[path.split("/")[0]] = counts.get(path.split("/")[0], 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kit.migrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    plan_cmd = sub.add_parser("plan", help="the deploy gate alone: dry run, validate, write the plan file")
    plan_cmd.add_argument("env")
    plan_cmd.add_argument("--out", type=Path, help="plan file (default .local/<env>/migration-plan.json)")
    plan_cmd.add_argument("--approve-irreversible", type=command.versions, default=frozenset(),
                          help="comma-separated versions of irreversible migrations you approve")
    apply_cmd = sub.add_parser("apply", help="apply the reviewed plan (needs approval)")
    apply_cmd.add_argument("env")
    apply_cmd.add_argument("--plan", type=Path, help="plan file (default .local/<env>/migration-plan.json)")
    sub.add_parser("status", help="every migration's state in the environment").add_argument("env")
    down_cmd = sub.add_parser("down", help="revert migrations above a version (needs approval)")
    down_cmd.add_argument("env")
    down_cmd.add_argument("--to", type=command.version, required=True)
    down_cmd.add_argument("--allow-irreversible", action="store_true")
    down_cmd.add_argument("--allow-partial", action="store_true")
    sub.add_parser("validate", help="validate every applied migration against the data now").add_argument("env")
    stamp_cmd = sub.add_parser("stamp", help="record a version and below as applied (needs approval)")
    stamp_cmd.add_argument("env")
    stamp_cmd.add_argument("version", type=command.version)
    stamp_cmd.add_argument("--mark-later-pending", action="store_true")
    restamp_cmd = sub.add_parser("restamp", help="accept one version's edited file (needs approval)")
    restamp_cmd.add_argument("env")
    restamp_cmd.add_argument("version", type=command.version)
    sub.add_parser("new", help="render the next revision file").add_argument("name")
    sub.add_parser("seed", help="example data into a local environment's emulator").add_argument("env")
    args = p.parse_args(argv)
    try:
        if args.command == "new":
            path = new_revision(args.name)
            print(f"created {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: fill in up, down and "
                  "validate, then `make migrate-plan`")
            return 0
        env = load_environment(args.env)
        if args.command == "plan":
            gate(env, approved=approved_irreversible(args.approve_irreversible), out=args.out,
                 approve_with=plan_approval(env))
        elif args.command == "apply":
            apply(env, args.plan)
        elif args.command == "status":
            return status(env)
        elif args.command == "down":
            down(env, args.to, allow_irreversible=args.allow_irreversible, allow_partial=args.allow_partial)
        elif args.command == "validate":
            return validate(env)
        elif args.command == "stamp":
            stamp(env, args.version, mark_later_pending=args.mark_later_pending)
        elif args.command == "restamp":
            restamp(env, args.version)
        elif args.command == "seed":
            counts = seed(env)
            print(f"seeded {', '.join(f'{n} {c}' for c, n in counts.items())} (the shape before any migration) into "
                  f"the emulator of {env.name}; `make migrate-plan` shows what the migrations would change")
    except (StageFailed, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
