"""Environment files -> typed, validated configuration.

`environments/<env>.yaml` is the only place where values differ between environments. Everything
else (stacks, the local runner, the deploy gates) receives an `Environment` from `load_environment`
and never reads YAML itself.

Errors are part of the interface: every problem is reported as
``environments/prod.yaml:14: functions.api.min_instances: <what is wrong>; allowed: <what is>``
and all problems of a file are reported at once.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROOT = Path(__file__).resolve().parent.parent
# Overridable so tests (and experiments) can point the whole tool at a copy of the environment files.
ENVIRONMENTS_DIR = Path(os.environ.get("GCF_KIT_ENVIRONMENTS_DIR", ROOT / "environments"))
SYNTH_OUTDIR = Path(os.environ.get("GCF_KIT_OUTDIR", ROOT / "cdktf.out"))
STATE_DIR = Path(os.environ.get("GCF_KIT_STATE_DIR", ROOT / ".local"))  # what deploys record, per environment
FUNCTIONS_DIR = ROOT / "functions"  # exactly what is bundled and deployed


def use_runtime_package() -> None:
    """Make `gcfkit` (which ships inside functions/) importable by the kit, which checks and runs its parts."""
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))

# Cloud Functions 2nd gen runs on Cloud Run; these are the sizes the API accepts.
MEMORY_SIZES_MIB = {"128Mi": 128, "256Mi": 256, "512Mi": 512, "1Gi": 1024, "2Gi": 2048,
                    "4Gi": 4096, "8Gi": 8192, "16Gi": 16384, "32Gi": 32768}
CPU_VALUES = ("0.083", "0.167", "0.333", "0.583", "1", "2", "4", "6", "8")
# What Cloud Functions gives a function that sets only its memory; the kit's default cpu is the same.
DEFAULT_CPU_FOR_MEMORY = {"128Mi": "0.083", "256Mi": "0.167", "512Mi": "0.333", "1Gi": "0.583", "2Gi": "1",
                          "4Gi": "2", "8Gi": "2", "16Gi": "4", "32Gi": "8"}
# Cloud Run's CPU/memory rules (docs: "Configure CPU limits", "Configure memory limits"):
# memory MiB above the first value needs at least the second vCPUs ...
MIN_CPU_FOR_MEMORY = ((512, 0.5), (1024, 1.0), (4096, 2.0), (8192, 4.0), (16384, 6.0), (24576, 8.0))
# ... and at least the first value of vCPUs needs at least the second MiB of memory.
MIN_MEMORY_FOR_CPU = ((4.0, 2048), (6.0, 4096))


def min_cpu_for(memory_mib: int) -> float:
    """The fewest vCPUs Cloud Run allows with this much memory (the strictest rule that applies)."""
    return max((cpu for above, cpu in MIN_CPU_FOR_MEMORY if memory_mib > above), default=0.0)


def min_memory_for(cpu: float) -> int:
    """The least memory (MiB) Cloud Run allows with this many vCPUs."""
    return max((mib for at_least, mib in MIN_MEMORY_FOR_CPU if cpu >= at_least), default=0)


def cpu_memory_problem(cpu: str, memory: str, sizes: tuple[str, ...] = tuple(MEMORY_SIZES_MIB)) -> str | None:
    """Why Cloud Run would reject this cpu/memory pair (naming the minimum cpu or the memory range), or None."""
    vcpus, mib = float(cpu), MEMORY_SIZES_MIB[memory]
    fits = [size for size in sizes if min_cpu_for(MEMORY_SIZES_MIB[size]) <= vcpus
            and MEMORY_SIZES_MIB[size] >= min_memory_for(vcpus)]
    with_cpu = f"memory {fits[0]}..{fits[-1]} with cpu {cpu}" if fits else f"no memory size with cpu {cpu}"
    if vcpus < (needed := min_cpu_for(mib)):
        return f"memory {memory} needs cpu >= {needed:g} (got {cpu}); allowed: cpu {needed:g} or more, or {with_cpu}"
    if mib < (least := min_memory_for(vcpus)):
        least_size = next(size for size, size_mib in MEMORY_SIZES_MIB.items() if size_mib >= least)
        return f"cpu {cpu} needs memory >= {least_size} (got {memory}); allowed: {with_cpu}"
    return None


# Cloud Functions adds LOG_EXECUTION_ID itself when it is missing, which Terraform then sees as drift on every
# plan; setting it keeps plans clean (and puts the execution id on every log line).
FIXED_ENV = {"LOG_EXECUTION_ID": "true"}
_PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "GCFKIT_REGION")


def platform_env(project: str, region: str, fixed: dict[str, str] = FIXED_ENV) -> dict[str, str]:
    """What the kit sets on every function, deployed (stacks/function.py) or served (kit/local.py): the python312+
    runtimes no longer set the project id, which gcfkit needs for trace ids and Cloud Monitoring, and the
    region for the Monitoring resource."""
    return {**fixed, **dict(zip(_PROJECT_ENV, (project, region), strict=True))}


# Set by Cloud Functions itself, or by the kit for every function (platform_env).
RESERVED_ENV_VARS = {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET",
                     "FUNCTION_SIGNATURE_TYPE", "FUNCTION_NAME", "FUNCTION_REGION", "GOOGLE_FUNCTION_SOURCE",
                     *FIXED_ENV, *_PROJECT_ENV}
# An environment's name is its file name; stacks are named `<env>-functions`, so no hyphen (or anything a
# folder, a Terraform state prefix or a GitHub environment would read differently).
ENVIRONMENT_NAME = r"^[a-z][a-z0-9]*$"
ENV_VAR_NAME = r"^[A-Z_][A-Z0-9_]*$"
PROJECT_ID = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
REGION = r"^[a-z]+-[a-z]+[0-9]+$"
FUNCTION_NAME = r"^[a-z][a-z0-9-]{0,47}[a-z0-9]$"
PYTHON_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_ID = r"^[A-Za-z0-9_-]{1,255}$"
BUCKET_NAME = r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$"
MEMBER = r"^(user|serviceAccount|group|domain|principal|principalSet):.+$"
IMAGE = r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$"


class ConfigError(Exception):
    """Environment files are missing or invalid. `lines` holds one `file[:line]: key: problem` per problem."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        shown = _display(path)
        self.lines = [f"{shown}{problem}" for problem in problems]
        super().__init__("\n".join(self.lines))

    @classmethod
    def combined(cls, errors: list[ConfigError]) -> ConfigError:
        """One error carrying the problems of several files (each line keeps its own file name)."""
        error = cls(errors[0].path, [])
        error.lines = [line for each in errors for line in each.lines]
        error.args = ("\n".join(error.lines),)
        return error


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Ingress(StrEnum):
    all = "all"
    internal = "internal"
    internal_and_gclb = "internal-and-gclb"

    @property
    def api_value(self) -> str:
        return {"all": "ALLOW_ALL", "internal": "ALLOW_INTERNAL_ONLY",
                "internal-and-gclb": "ALLOW_INTERNAL_AND_GCLB"}[self.value]


PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def memory_size(value: Any, sizes: tuple[str, ...], what: str) -> str:
    """`value` if it is one of `sizes`; otherwise a ValueError listing them (also for a bare number)."""
    if not isinstance(value, str) or value not in sizes:
        raise ValueError(f"{value!r} is not {what}; allowed: {', '.join(sizes)}")
    return value


class HttpTrigger(_Model):
    type: Literal["http"]


class EventTrigger(_Model):
    """An Eventarc trigger. `topic` is created by the stack unless `create_topic` is false."""

    type: Literal["event"]
    # The stack wires every event trigger to its Pub/Sub topic, so this is the one event type it supports.
    event_type: Literal["google.cloud.pubsub.topic.v1.messagePublished"] = PUBSUB_PUBLISHED
    topic: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$")]
    create_topic: bool = True
    retry: bool = False


Trigger = Annotated[HttpTrigger | EventTrigger, Field(discriminator="type")]


class SecretRef(_Model):
    secret: Annotated[str, Field(pattern=SECRET_ID)]
    version: Annotated[str, Field(pattern=r"^(latest|[1-9][0-9]*)$")] = "latest"

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Function(_Model):
    entry_point: Annotated[str, Field(pattern=PYTHON_IDENTIFIER)]
    trigger: Trigger = HttpTrigger(type="http")
    description: str = ""
    min_instances: Annotated[int, Field(ge=0, le=1000)] = 0
    max_instances: Annotated[int, Field(ge=1, le=1000)] = 10
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    cpu: str = DEFAULT_CPU_FOR_MEMORY["512Mi"]  # set from memory when the file leaves it out (below)
    memory: str = "512Mi"
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    ingress: Ingress = Ingress.internal
    public: bool = False
    invokers: tuple[Annotated[str, Field(pattern=MEMBER)], ...] = ()
    # Strict: YAML turns unquoted 1.10 into 1.1 and 0012 into 10; only text is accepted (a number written
    # exactly as YAML reads it back, like 100, is made text by the loader: _exact_numbers_as_text).
    env: dict[Annotated[str, Field(pattern=ENV_VAR_NAME)], Annotated[str, Field(strict=True)]] = Field(
        default_factory=dict)
    secrets: dict[Annotated[str, Field(pattern=ENV_VAR_NAME)], SecretRef] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_cpu_from_memory(cls, data: Any) -> Any:
        """Like Cloud Functions: a function that sets only `memory` gets the CPU that goes with it."""
        if isinstance(data, dict) and "cpu" not in data and isinstance(data.get("memory"), str):
            return {**data, "cpu": DEFAULT_CPU_FOR_MEMORY.get(data["memory"], cls.model_fields["cpu"].default)}
        return data

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> Any:
        text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        if text not in CPU_VALUES:
            raise ValueError(f"{value!r} is not a Cloud Functions CPU value; allowed: {', '.join(CPU_VALUES)}")
        return text

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str:
        return memory_size(value, tuple(MEMORY_SIZES_MIB), "a valid memory size")

    @field_validator("env")
    @classmethod
    def _runtime_accepts_env(cls, value: dict[str, str]) -> dict[str, str]:
        # The runtime's own parser (gcfkit.settings): what passes here cannot stop the function at start.
        use_runtime_package()
        from gcfkit.settings import problems_in

        if problems := problems_in(value):
            raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Function:
        problems = []
        if self.min_instances > self.max_instances:
            problems.append(f"min_instances ({self.min_instances}) is greater than max_instances "
                            f"({self.max_instances}); allowed: min_instances <= max_instances")
        cpu = float(self.cpu)
        if self.concurrency > 1 and cpu < 1:
            problems.append(f"concurrency {self.concurrency} needs cpu >= 1 (got {self.cpu}); "
                            "allowed: concurrency 1 with fractional CPU, or cpu '1' and above")
        if problem := cpu_memory_problem(self.cpu, self.memory):
            problems.append(problem)
        if isinstance(self.trigger, EventTrigger) and self.timeout_seconds > 540:
            problems.append(f"timeout_seconds {self.timeout_seconds} is too long for an event function; "
                            "allowed: 1..540")
        for name in (*self.env, *self.secrets):
            if name in RESERVED_ENV_VARS:
                problems.append(f"{name} is set by Cloud Functions or the kit itself; reserved: "
                                f"{', '.join(sorted(RESERVED_ENV_VARS))}")
        if overlap := set(self.env) & set(self.secrets):
            problems.append(f"{', '.join(sorted(overlap))} set in both env and secrets; allowed: one of them")
        if self.public and isinstance(self.trigger, EventTrigger):
            problems.append("public: true only applies to http functions")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_http(self) -> bool:
        return isinstance(self.trigger, HttpTrigger)

    @property
    def memory_mib(self) -> int:
        return MEMORY_SIZES_MIB[self.memory]


class State(_Model):
    """Where Terraform keeps this environment's state (a GCS backend; its native locking protects applies)."""

    bucket: Annotated[str, Field(pattern=BUCKET_NAME)]
    prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]*$")] = "gcf-kit"


class NotificationChannel(_Model):
    type: Literal["email", "slack", "pagerduty", "webhook"]
    address: Annotated[str, Field(min_length=3)]
    display_name: str = ""


class Slo(_Model):
    availability: Annotated[float, Field(gt=0.5, lt=1)] = 0.995
    latency_ms: Annotated[int, Field(ge=1)] = 1000
    latency_target: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    window_days: Annotated[int, Field(ge=1, le=30)] = 28


class Alerting(_Model):
    notification_channels: tuple[NotificationChannel, ...] = ()
    error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 5.0
    latency_p95_ms: Annotated[int, Field(ge=1)] = 2000
    min_instances_alert: bool = True
    slo: Slo = Slo()


class Local(_Model):
    """Only in environments served on this machine (local.yaml): the emulator and loopback ports."""

    host: Literal["127.0.0.1", "localhost"] = "127.0.0.1"
    firestore_port: Annotated[int, Field(ge=1024, le=65535)] = 8787
    base_port: Annotated[int, Field(ge=1024, le=65000)] = 8081


JOB_MEMORY_SIZES = tuple(size for size, mib in MEMORY_SIZES_MIB.items() if mib >= 512)  # gen2 execution


class MigrationJob(_Model):
    """A Cloud Run Job that runs `python -m gcfkit.migrations up` from the function bundle, in parallel tasks.

    The engine splits the work by CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT (one id range per task).
    `image` is a stock Python image (default: the one matching `runtime`); the job fetches the hashed bundle.
    """

    tasks: Annotated[int, Field(ge=1, le=10000)] = 4
    parallelism: Annotated[int, Field(ge=1, le=10000)] | None = None  # None: every task at once
    cpu: Literal["1", "2", "4", "6", "8"] = "1"
    memory: str = "1Gi"
    timeout_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    max_retries: Annotated[int, Field(ge=0, le=10)] = 0
    image: Annotated[str, Field(pattern=IMAGE)] | None = None

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str:
        return memory_size(value, JOB_MEMORY_SIZES, "a Cloud Run job memory size")

    @model_validator(mode="after")
    def _consistent(self) -> MigrationJob:
        if self.parallelism is not None and self.parallelism > self.tasks:
            raise ValueError(f"parallelism ({self.parallelism}) is greater than tasks ({self.tasks}); "
                             "allowed: parallelism <= tasks")
        if problem := cpu_memory_problem(self.cpu, self.memory, JOB_MEMORY_SIZES):
            raise ValueError(problem)
        return self


class Environment(_Model):
    name: str
    project: Annotated[str, Field(pattern=PROJECT_ID)]
    region: Annotated[str, Field(pattern=REGION)]
    state: State
    runtime: Literal["python312", "python313"] = "python312"
    labels: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")],
                 Annotated[str, Field(pattern=r"^[a-z0-9_-]{0,63}$")]] = Field(default_factory=dict)
    functions: Annotated[dict[Annotated[str, Field(pattern=FUNCTION_NAME)], Function], Field(min_length=1)]
    alerting: Alerting = Alerting()
    migration_job: MigrationJob | None = None  # opt-in: provisions the Cloud Run Job for migrations
    local: Local | None = None

    @property
    def is_local(self) -> bool:
        return self.local is not None

    @model_validator(mode="after")
    def _local_only_in_demo_projects(self) -> Environment:
        if self.local is not None and not self.project.startswith("demo-"):
            raise ValueError(f"project {self.project!r}: an environment with a local: section runs on the "
                             "emulator and must use a demo- project id (as the Firebase emulators require), "
                             "so it can never reach a real project")
        if self.local is not None and self.migration_job is not None:
            raise ValueError("migration_job: a local environment runs migrations on this machine (against the "
                             "emulator); allowed: migration_job only in cloud environments")
        return self


@dataclass(frozen=True)
class _Where:
    lines: dict[tuple[str, ...], int]
    texts: dict[tuple[str, ...], str]  # a scalar value as written in the file (before YAML typed it)

    def line(self, loc: tuple[str, ...]) -> int | None:
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML would silently keep the last value)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in first_seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {first_seen[key]}); keep one",
                    key_node.start_mark)
            first_seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def environment_names(directory: Path = ENVIRONMENTS_DIR) -> list[str]:
    """Every environment with a file in `directory`, local first, then alphabetical after a fixed order."""
    order = {"local": 0, "dev": 1, "staging": 2, "prod": 3}
    names = [p.stem for p in directory.glob("*.yaml")]
    return sorted(names, key=lambda n: (order.get(n, 99), n))


def load_environment(name: str, directory: Path = ENVIRONMENTS_DIR) -> Environment:
    """Read and validate `directory/<name>.yaml`. Raises ConfigError naming the file, key and what is allowed."""
    path = directory / f"{name}.yaml"
    if not re.fullmatch(ENVIRONMENT_NAME, name):
        raise ConfigError(path, [f": {name!r} is not a valid environment name (the file name without .yaml); "
                                 "allowed: lowercase letters and digits, starting with a letter (e.g. dev, prod, "
                                 "staging2)"])
    if not path.is_file():
        known = ", ".join(environment_names(directory)) or "none"
        raise ConfigError(path, [f": no such environment file; known environments: {known} "
                                 f"(create {_display(path)} to add one)"])
    text = path.read_text(encoding="utf-8")
    loader = _StrictLoader(text)  # a SafeLoader: no arbitrary objects
    try:  # one parse: the node tree (lines, the text as written) and the data built from it
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(path, [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(path, [": must be a mapping of keys (project, region, state, functions, ...)"])
    where = _lines(node)
    if "name" in data:
        raise ConfigError(path, [f":{where.line(('name',))}: name: the environment's name is its "
                                 f"file name ({name}); remove this key"])
    try:
        env = Environment.model_validate({"name": name, **_exact_numbers_as_text(data, where)})
    except ValidationError as exc:
        raise ConfigError(path, [_describe(err, where) for err in exc.errors()]) from None
    if problems := _local_port_problems(env, where):
        raise ConfigError(path, problems)
    return env


def load_all(directory: Path = ENVIRONMENTS_DIR) -> dict[str, Environment]:
    """Every environment, validated; all files' problems are reported together."""
    names = environment_names(directory)
    if not names:
        state = "has no environment files (*.yaml)" if directory.is_dir() else "does not exist"
        raise ConfigError(directory, [f": {state}; allowed: one <env>.yaml per environment (start from a copy of "
                                      "the kit's environments/dev.yaml)"])
    environments, errors = {}, []
    for name in names:
        try:
            environments[name] = load_environment(name, directory)
        except ConfigError as exc:
            errors.append(exc)
    errors += _shared_projects(environments, directory)
    if errors:
        raise ConfigError.combined(errors)
    return environments


def _local_port_problems(env: Environment, where: _Where) -> list[str]:
    """A served environment's ports: functions get base_port, base_port+1, ...; the emulator must not be one."""
    if env.local is None:
        return []
    first, last = env.local.base_port, env.local.base_port + len(env.functions) - 1
    problems = []
    if first <= env.local.firestore_port <= last:
        taken = list(env.functions)[env.local.firestore_port - first]
        problems.append(f":{where.line(('local', 'firestore_port'))}: local.firestore_port: "
                        f"{env.local.firestore_port} is also function {taken}'s port (functions get base_port, "
                        f"base_port+1, ...: {first}..{last}); allowed: a port outside {first}..{last}")
    if last > 65535:
        problems.append(f":{where.line(('local', 'base_port'))}: local.base_port: {first} leaves no port for "
                        f"{len(env.functions)} functions; allowed: at most {65536 - len(env.functions)}")
    return problems


def _shared_projects(environments: dict[str, Environment], directory: Path) -> list[ConfigError]:
    """Resource names (source bucket, service accounts, functions) do not carry the environment's name, so two
    cloud environments in one project would manage the same resources. Local (emulated) ones are never applied."""
    first_with: dict[str, str] = {}
    errors = []
    for name, env in environments.items():
        if env.is_local:
            continue
        if (other := first_with.setdefault(env.project, name)) != name:
            path = directory / f"{name}.yaml"
            where = _lines(yaml.compose(path.read_text(encoding="utf-8"), Loader=_StrictLoader))
            errors.append(ConfigError(path, [
                f":{where.line(('project',))}: project: {env.project!r} is also the project of "
                f"{_display(directory / f'{other}.yaml')}; allowed: one cloud environment per project (resource "
                "names do not include the environment, so both would apply to the same bucket, accounts and "
                "functions)"]))
    return errors


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _exact_numbers_as_text(data: dict, where: _Where) -> dict:
    """Environment variable values are text. An unquoted number YAML reads back exactly as written
    (`MAX_ITEMS: 100`) is that text; one it would change (`1.10`, `0012`, `1_000`) stays a number, which
    validation rejects with a "quote it" message."""
    functions = data.get("functions")
    if not isinstance(functions, dict):
        return data
    changed = {}
    for function, spec in functions.items():
        env = spec.get("env") if isinstance(spec, dict) else None
        if not isinstance(env, dict):
            continue
        exact = {key: str(value) for key, value in env.items()
                 if isinstance(value, int | float) and not isinstance(value, bool)
                 and where.texts.get(("functions", str(function), "env", str(key))) == str(value)}
        if exact:
            changed[function] = {**spec, "env": {**env, **exact}}
    return {**data, "functions": {**functions, **changed}} if changed else data


def _lines(node: yaml.Node | None) -> _Where:
    lines: dict[tuple[str, ...], int] = {}
    texts: dict[tuple[str, ...], str] = {}

    def walk(n: yaml.Node, loc: tuple[str, ...]) -> None:
        if isinstance(n, yaml.ScalarNode):
            texts[loc] = n.value
        elif isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                child = (*loc, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(n, yaml.SequenceNode):
            for i, value in enumerate(n.value):
                lines[(*loc, str(i))] = value.start_mark.line + 1
                walk(value, (*loc, str(i)))

    if node is not None:
        walk(node, ())
    return _Where(lines, texts)


def _describe(err: dict[str, Any], where: _Where) -> str:
    raw = tuple(str(p) for p in err["loc"])
    loc = _schema(raw).path
    line = where.line(loc)
    prefix = f":{line}: " if line else ": "
    path = ".".join(loc) or "(top level)"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(raw[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else _other_trigger_key(raw)
        return f"{prefix}{path}: unknown key{hint}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{prefix}{path}: required key is missing"
    if kind == "string_pattern_mismatch":
        return f"{prefix}{path}: {err.get('input')!r} has the wrong form; allowed: {_pattern_help(raw, err)}"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return f"{prefix}{path}: type must be one of: {', '.join(_TRIGGER_TAGS)}"
    if kind in ("literal_error", "enum"):
        return f"{prefix}{path}: {err.get('input')!r} is not allowed; {msg[0].lower()}{msg[1:]}"
    shown = err.get("input")
    if kind == "string_type" and loc in where.texts and not isinstance(shown, dict | list):
        written = where.texts[loc]
        return (f"{prefix}{path}: {written} is read by YAML as the {type(shown).__name__} {shown!r}, not as text; "
                f"allowed: text: quote it ({loc[-1]}: \"{written}\")")
    msg = msg.removeprefix("Value error, ")
    if isinstance(shown, str | int | float | bool) and kind != "value_error":
        return f"{prefix}{path}: got {shown!r}; {msg[0].lower()}{msg[1:]}"
    return f"{prefix}{path}: {msg}"


_TRIGGER_TAGS = {"http": HttpTrigger, "event": EventTrigger}  # trigger type -> its model


@dataclass(frozen=True)
class _Schema:
    path: tuple[str, ...]  # the key path a user sees (without pydantic's "[key]" and trigger type tags)
    shape: tuple[str, ...]  # the same with every mapping key and list position as '*' ("[key]" kept)
    types: tuple[Any, ...]  # what the config accepts there


def _schema(loc: tuple[str, ...]) -> _Schema:
    """Follow a pydantic error location through the config's types."""
    types: tuple[Any, ...] = (Environment,)
    shape: list[str] = []
    path: list[str] = []
    for part in loc:
        if part == "[key]":
            shape.append(part)
            types = ()
            continue
        if part in _TRIGGER_TAGS and _TRIGGER_TAGS[part] in types:  # the discriminated trigger's tag
            types = (_TRIGGER_TAGS[part],)
            continue
        path.append(part)
        containers = [t for t in types if get_origin(t) in (dict, tuple)]
        models = [t for t in types if isinstance(t, type) and issubclass(t, BaseModel) and part in t.model_fields]
        if containers:
            shape.append("*")
            kind = containers[0]
            types = _models(get_args(kind)[1] if get_origin(kind) is dict else get_args(kind)[0])
        else:
            shape.append(part)
            types = tuple(t for model in models for t in _models(model.model_fields[part].annotation))
    return _Schema(tuple(path), tuple(shape), types)


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    """The keys a mapping at `loc` accepts, for "unknown key" messages."""
    keys = [k for m in _schema(loc).types if isinstance(m, type) and issubclass(m, BaseModel) for k in m.model_fields]
    return [k for k in dict.fromkeys(keys) if k != "name"]


def _other_trigger_key(raw: tuple[str, ...]) -> str:
    """For an unknown key in a trigger that another trigger type accepts: say which type accepts it."""
    tag = raw[-2] if raw[-3:-2] == ("trigger",) and raw[-2] in _TRIGGER_TAGS else None  # ...trigger.<tag>.<key>
    others = [other for other, model in _TRIGGER_TAGS.items() if other != tag and raw[-1] in model.model_fields]
    return f" ({raw[-1]} belongs to triggers of type {others[0]}; this one is type {tag})" if tag and others else ""


def _models(annotation: Any) -> tuple[Any, ...]:
    """Strip Annotated/Optional; a union of models (the trigger) gives all its members."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return tuple(m for member in members for m in _models(member))
    return (annotation,)


# What each patterned value looks like, by the shape of its location (its last parts; '*' is any mapping key
# or list position, '[key]' the key itself).
_PATTERN_HELP = {
    ("project",): "a GCP project id: 6-30 lowercase letters, digits and hyphens, starting with a letter",
    ("region",): "a GCP region such as europe-west1 or us-central1",
    ("state", "bucket"): "a GCS bucket name: 3-63 lowercase letters, digits, dots, hyphens, underscores",
    ("state", "prefix"): "a path in the state bucket: lowercase letters, digits, /, _ and -, starting with a "
                         "letter or digit",
    ("labels", "*", "[key]"): "label keys: 1-63 lowercase letters, digits, _ and -, starting with a letter",
    ("labels", "*"): "label values: 0-63 lowercase letters, digits, _ and -",
    ("functions", "*", "[key]"): "function names: 2-49 lowercase letters, digits and hyphens, starting with a "
                                 "letter, not ending with a hyphen",
    ("entry_point",): "a Python identifier naming a function in functions/main.py",
    ("topic",): "a Pub/Sub topic id: 3-255 letters, digits and . _ ~ % + -, starting with a letter",
    ("invokers", "*"): "an IAM member such as serviceAccount:name@project.iam.gserviceaccount.com or user:a@b.c",
    ("env", "*", "[key]"): "environment variable names in UPPER_SNAKE_CASE",
    ("secrets", "*", "[key]"): "environment variable names in UPPER_SNAKE_CASE",
    ("secret",): "a Secret Manager secret id: 1-255 letters, digits, _ and -",
    ("version",): "latest or a version number",
    ("image",): "a container image such as docker.io/library/python:3.12-slim or REGISTRY/PATH@sha256:<digest>",
}


def _pattern_help(raw: tuple[str, ...], err: dict[str, Any]) -> str:
    shape = _schema(raw).shape
    matches = [key for key in _PATTERN_HELP if shape[-len(key):] == key]
    if matches:
        return _PATTERN_HELP[max(matches, key=len)]
    return f"text matching {err.get('ctx', {}).get('pattern', 'the documented form')}"
