"""The environment loader: every shipped file is valid, and each kind of mistake is named precisely."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from kit.config import (
    ENVIRONMENT_NAME,
    ENVIRONMENTS_DIR,
    ROOT,
    Alerting,
    ConfigError,
    Environment,
    EventTrigger,
    Function,
    Ingress,
    Local,
    MigrationJob,
    NotificationChannel,
    SecretRef,
    Slo,
    State,
    environment_names,
    load_all,
    load_environment,
)

# Every model an environment file is made of: the keys the docs must show.
FILE_MODELS = (Environment, State, Function, EventTrigger, SecretRef, Alerting, NotificationChannel, Slo,
               MigrationJob, Local)

VALID = """\
project: acme-test-1
region: europe-west1
state: {bucket: acme-test-state}
functions:
  api:
    entry_point: api
    min_instances: 1
    max_instances: 4
"""


def write(tmp_path: Path, text: str, name: str = "test") -> Path:
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text))
    return tmp_path


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment("test", write(tmp_path, text))
    return str(caught.value)


def test_every_shipped_environment_loads():
    environments = load_all()
    assert list(environments) == ["local", "dev", "staging", "prod"] == environment_names()
    assert environments["local"].is_local and not environments["prod"].is_local
    prod = environments["prod"].functions["api"]
    assert (prod.min_instances, prod.max_instances, prod.memory, prod.ingress) == (2, 50, "1Gi",
                                                                                     Ingress.internal_and_gclb)
    assert environments["local"].project.startswith("demo-")


def test_defaults_fill_what_a_file_leaves_out(tmp_path):
    env = load_environment("test", write(tmp_path, VALID))
    fn = env.functions["api"]
    assert fn.is_http and fn.ingress is Ingress.internal and not fn.public
    assert (fn.cpu, fn.memory, fn.concurrency, fn.timeout_seconds) == ("0.333", "512Mi", 1, 60)
    assert env.state.prefix == "gcf-kit" and env.runtime == "python312"


def test_numbers_for_cpu_and_secret_versions_are_accepted(tmp_path):
    env = load_environment("test", write(tmp_path, VALID + "    cpu: 1\n    concurrency: 8\n"
                                         "    secrets: {KEY: {secret: k, version: 3}}\n"))
    assert env.functions["api"].cpu == "1" and env.functions["api"].secrets["KEY"].version == "3"


@pytest.mark.parametrize(("mistake", "expected"), [
    (VALID.replace("min_instances", "min_instance"),
     ["test.yaml:7: functions.api.min_instance: unknown key (did you mean 'min_instances'?)",
      "allowed: entry_point, trigger"]),
    (VALID + "regoin: x\n", ["test.yaml:9: regoin: unknown key", "allowed: project, region, state"]),
    (VALID.replace("min_instances: 1", "min_instances: 9"),
     ["functions.api: min_instances (9) is greater than max_instances (4)", "min_instances <= max_instances"]),
    (VALID.replace("max_instances: 4", "max_instances: four"),
     ["test.yaml:8: functions.api.max_instances: got 'four'", "valid integer"]),
    (VALID + "    memory: 300Mi\n", ["functions.api.memory: '300Mi' is not a valid memory size", "512Mi, 1Gi"]),
    (VALID + "    cpu: 3\n", ["functions.api.cpu", "allowed: 0.083"]),
    (VALID + "    concurrency: 10\n", ["concurrency 10 needs cpu >= 1"]),
    (VALID + "    memory: 16Gi\n    cpu: 2\n", ["memory 16Gi needs cpu >= 4 (got 2)"]),
    (VALID + "    memory: 1024\n", ["test.yaml:9: functions.api.memory: 1024 is not a valid memory size; "
                                   "allowed: 128Mi, 256Mi, 512Mi, 1Gi"]),
    (VALID + "    trigger: {type: event, topic: t1, event_type: google.cloud.storage.object.v1.finalized}\n",
     ["functions.api.trigger.event_type: 'google.cloud.storage.object.v1.finalized' is not allowed; "
      "input should be 'google.cloud.pubsub.topic.v1.messagePublished'"]),
    (VALID + "    ingress: public\n", ["functions.api.ingress: 'public' is not allowed", "'internal-and-gclb'"]),
    (VALID + "    trigger: {type: pubsub}\n", ["functions.api.trigger: type must be one of: http, event"]),
    (VALID + "    trigger: {type: event}\n", ["functions.api.trigger.topic: required key is missing"]),
    (VALID + "    env: {PORT: '1'}\n", ["PORT is set by Cloud Functions or the kit itself"]),
    (VALID + "    env: {GOOGLE_CLOUD_PROJECT: x}\n", ["GOOGLE_CLOUD_PROJECT is set by Cloud Functions or the kit"]),
    (VALID + "    env: {lower: x}\n", ["functions.api.env.lower", "UPPER_SNAKE_CASE"]),
    (VALID + "    env: {GCFKIT_METRICS_EXPORT: bogus, LOG_LEVEL: verbose}\n",
     ["test.yaml:9: functions.api.env: ", "GCFKIT_METRICS_EXPORT: got 'bogus'; allowed: log, monitoring, off",
      "LOG_LEVEL: got 'verbose'; allowed: "]),
    (VALID.replace("acme-test-1", "Acme"), ["test.yaml:1: project: 'Acme' has the wrong form", "GCP project id"]),
    (VALID.replace("state: {bucket: acme-test-state}\n", ""), ["state: required key is missing"]),
    (VALID + "local: {}\n", ["an environment with a local: section", "demo- project id"]),
    (VALID + "alerting: {slo: {window: 7}}\n", ["alerting.slo.window: unknown key (did you mean 'window_days'?)"]),
    ("name: test\n" + VALID, ["test.yaml:1: name: the environment's name is its file name"]),
    ("project: [unclosed\n", ["test.yaml:2: not valid YAML"]),
    ("- a list\n", ["test.yaml: must be a mapping"]),
    (VALID + "    min_instances: 3\n",
     ["test.yaml:9: not valid YAML: key 'min_instances' is given twice (first on line 7)"]),
])
def test_mistakes_name_the_file_the_key_and_what_is_allowed(tmp_path, mistake, expected):
    message = problems(tmp_path, mistake)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    message = problems(tmp_path, VALID.replace("europe-west1", "Europe") + "    memory: 3Gi\n    colour: red\n")
    assert "region" in message and "memory" in message and "colour" in message
    assert len(message.splitlines()) == 3


def test_missing_file_lists_the_known_environments(tmp_path):
    write(tmp_path, VALID, name="dev")
    with pytest.raises(ConfigError) as caught:
        load_environment("prd", tmp_path)
    assert "prd.yaml: no such environment file; known environments: dev" in str(caught.value)


def test_load_all_reports_every_broken_file(tmp_path):
    write(tmp_path, VALID.replace("max_instances: 4", "max_instances: 0"), name="dev")
    write(tmp_path, VALID + "oops: 1\n", name="prod")
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith(f"{tmp_path}/dev.yaml:8: functions.api.max_instances: got 0; ")
    assert lines[1].startswith(f"{tmp_path}/prod.yaml:9: oops: unknown key")
    assert len(lines) == 2


def test_migration_job_is_opt_in_with_defaults(tmp_path):
    assert load_environment("test", write(tmp_path, VALID)).migration_job is None
    job = load_environment("test", write(tmp_path, VALID + "migration_job: {tasks: 6, cpu: 2}\n")).migration_job
    assert (job.tasks, job.parallelism, job.cpu, job.memory, job.max_retries, job.image) == (
        6, None, "2", "1Gi", 0, None)
    assert load_all()["prod"].migration_job is not None and load_all()["local"].migration_job is None


@pytest.mark.parametrize(("mistake", "expected"), [
    ("migration_job: {taks: 4}\n", ["test.yaml:9: migration_job.taks: unknown key (did you mean 'tasks'?)",
                                    "allowed: tasks, parallelism, cpu"]),
    ("migration_job: {tasks: 2, parallelism: 3}\n",
     ["migration_job: parallelism (3) is greater than tasks (2)", "allowed: parallelism <= tasks"]),
    ("migration_job: {memory: 256Mi}\n", ["migration_job.memory: '256Mi' is not a Cloud Run job memory size",
                                          "allowed: 512Mi"]),
    ("migration_job: {memory: 16Gi, cpu: 2}\n", ["migration_job: memory 16Gi needs cpu >= 4 (got 2)"]),
    ("migration_job: {cpu: '0.5'}\n", ["migration_job.cpu: '0.5' is not allowed"]),
    ("migration_job: {image: 'python 3'}\n", ["migration_job.image: 'python 3' has the wrong form",
                                              "docker.io/library/python:3.12-slim"]),
])
def test_migration_job_mistakes_are_named(tmp_path, mistake, expected):
    message = problems(tmp_path, VALID + mistake)
    for part in expected:
        assert part in message


def test_a_local_environment_cannot_declare_a_migration_job(tmp_path):
    local = VALID.replace("acme-test-1", "demo-test-1") + "local: {}\nmigration_job: {}\n"
    assert "migration_job: a local environment runs migrations on this machine" in problems(tmp_path, local)


@pytest.mark.parametrize(("settings", "expected"), [
    # Cloud Run: below 0.5 vCPU at most 512Mi, below 1 vCPU at most 1Gi ...
    ("cpu: '0.333'\n    memory: 1Gi", "functions.api: memory 1Gi needs cpu >= 0.5 (got 0.333); allowed: cpu 0.5 or "
                                      "more, or memory 128Mi..512Mi with cpu 0.333"),
    ("cpu: '0.583'\n    memory: 2Gi", "memory 2Gi needs cpu >= 1 (got 0.583); allowed: cpu 1 or more, or memory "
                                      "128Mi..1Gi with cpu 0.583"),
    # ... above 16Gi at least 6, above 24Gi 8 ...
    ("cpu: 6\n    memory: 32Gi", "memory 32Gi needs cpu >= 8 (got 6); allowed: cpu 8 or more, or memory 4Gi..16Gi"),
    # ... and 4 vCPU need at least 2Gi, 6 or 8 vCPU at least 4Gi.
    ("cpu: 4\n    memory: 1Gi", "cpu 4 needs memory >= 2Gi (got 1Gi); allowed: memory 2Gi..16Gi with cpu 4"),
    ("cpu: 8\n    memory: 2Gi", "cpu 8 needs memory >= 4Gi (got 2Gi); allowed: memory 4Gi..32Gi with cpu 8"),
])
def test_cpu_and_memory_pairs_cloud_run_rejects_are_named(tmp_path, settings, expected):
    assert expected in problems(tmp_path, VALID + f"    {settings}\n")


@pytest.mark.parametrize(("memory", "cpu"), [("128Mi", "0.083"), ("256Mi", "0.167"), ("512Mi", "0.333"),
                                             ("1Gi", "0.583"), ("2Gi", "1"), ("4Gi", "2"), ("8Gi", "2"),
                                             ("16Gi", "4"), ("32Gi", "8")])
def test_memory_alone_gets_the_cpu_cloud_functions_gives_it(tmp_path, memory, cpu):
    fn = load_environment("test", write(tmp_path, VALID + f"    memory: {memory}\n")).functions["api"]
    assert (fn.memory, fn.cpu) == (memory, cpu)


@pytest.mark.parametrize(("job", "expected"), [
    ("{cpu: 4}", "migration_job: cpu 4 needs memory >= 2Gi (got 1Gi); allowed: memory 2Gi..16Gi with cpu 4"),
    ("{cpu: 2, memory: 32Gi}", "migration_job: memory 32Gi needs cpu >= 8 (got 2)"),
    ("{memory: 2048}", "migration_job.memory: 2048 is not a Cloud Run job memory size; allowed: 512Mi, 1Gi"),
])
def test_migration_job_cpu_and_memory_follow_the_same_rules(tmp_path, job, expected):
    assert expected in problems(tmp_path, VALID + f"migration_job: {job}\n")


def test_env_values_are_text_and_a_number_yaml_would_change_must_be_quoted(tmp_path):
    message = problems(tmp_path, VALID + "    env:\n      VERSION: 1.10\n      ACCOUNT: 0012345\n"
                                         "      DEBUG: true\n      NAME: ok\n      MAX_ITEMS: 100\n      RATIO: 0.5\n"
                                         "      BIG: 1_000\n")
    assert 'test.yaml:10: functions.api.env.VERSION: 1.10 is read by YAML as the float 1.1, not as text; ' \
           'allowed: text: quote it (VERSION: "1.10")' in message
    assert 'test.yaml:11: functions.api.env.ACCOUNT: 0012345 is read by YAML as the int 5349' in message
    assert 'test.yaml:12: functions.api.env.DEBUG: true is read by YAML as the bool True' in message
    assert 'test.yaml:16: functions.api.env.BIG: 1_000 is read by YAML as the int 1000' in message
    assert len(message.splitlines()) == 4, "100 and 0.5 read back exactly as written: they are that text"
    env = load_environment("test", write(tmp_path, VALID + "    env: {VERSION: '1.10', ACCOUNT: '0012345', "
                                                           "MAX_ITEMS: 100, RATIO: 0.5}\n"))
    assert env.functions["api"].env == {"VERSION": "1.10", "ACCOUNT": "0012345", "MAX_ITEMS": "100", "RATIO": "0.5"}


@pytest.mark.parametrize(("mistake", "expected"), [
    ("    secrets: {KEY: {secret: 'not ok'}}\n",
     "functions.api.secrets.KEY.secret: 'not ok' has the wrong form; allowed: a Secret Manager secret id"),
    ("    secrets: {secret: {secret: ok}}\n",
     "functions.api.secrets.secret: 'secret' has the wrong form; allowed: environment variable names"),
    ("    trigger: {type: event, topic: '9lives'}\n",
     "functions.api.trigger.topic: '9lives' has the wrong form; allowed: a Pub/Sub topic id"),
    ("    trigger: {type: http, topic: orders}\n",
     "functions.api.trigger.topic: unknown key (topic belongs to triggers of type event; this one is type http); "
     "allowed: type"),
    ("labels: {Team: a}\n", "labels.Team: 'Team' has the wrong form; allowed: label keys: 1-63 lowercase"),
    ("labels: {team: 'Back End'}\n", "labels.team: 'Back End' has the wrong form; allowed: label values: 0-63"),
])
def test_each_patterned_key_says_what_it_accepts(tmp_path, mistake, expected):
    message = problems(tmp_path, VALID + mistake)
    assert expected in message
    assert "environments/dev.yaml" not in message


def test_a_bad_state_prefix_says_what_a_prefix_is(tmp_path):
    message = problems(tmp_path, VALID.replace("{bucket: acme-test-state}", "{bucket: acme-test-state, prefix: /x}"))
    assert "state.prefix: '/x' has the wrong form; allowed: a path in the state bucket" in message


def test_a_function_named_like_a_trigger_type_keeps_its_name_in_messages(tmp_path):
    message = problems(tmp_path, VALID.replace("  api:", "  event:") + "    trigger: {type: http, retry: true}\n")
    assert "functions.event.trigger.retry: unknown key (retry belongs to triggers of type event" in message


@pytest.mark.parametrize("name", ["dev-eu", "Prod", "2nd", "dev_eu"])
def test_environment_names_are_lowercase_letters_and_digits(tmp_path, name):
    write(tmp_path, VALID, name=name)
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path)
    assert f"{name}.yaml: {name!r} is not a valid environment name" in str(caught.value)
    assert "allowed: lowercase letters and digits, starting with a letter" in str(caught.value)


def test_the_shipped_environment_names_are_valid():
    assert all(re.fullmatch(ENVIRONMENT_NAME, name) for name in environment_names())


def test_two_cloud_environments_cannot_share_a_project(tmp_path):
    write(tmp_path, VALID, name="dev")
    write(tmp_path, VALID, name="staging")
    write(tmp_path, VALID.replace("acme-test-1", "demo-test-1") + "local: {}\n", name="local")
    write(tmp_path, VALID.replace("acme-test-1", "demo-test-1") + "local: {}\n", name="local2")
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path)
    assert str(caught.value) == (f"{tmp_path}/staging.yaml:1: project: 'acme-test-1' is also the project of "
                                 f"{tmp_path}/dev.yaml; allowed: one cloud environment per project (resource names "
                                 "do not include the environment, so both would apply to the same bucket, accounts "
                                 "and functions)")


@pytest.mark.parametrize("make", [lambda d: d.mkdir(), lambda d: None])
def test_no_environment_file_is_an_error_not_an_empty_success(tmp_path, make):
    directory = tmp_path / "environments"
    make(directory)
    with pytest.raises(ConfigError, match=r"environments: (has no environment files \(\*\.yaml\)|does not exist); "
                                          r"allowed: one <env>\.yaml per environment"):
        load_all(directory)


@pytest.mark.parametrize(("ports", "expected"), [
    ("{firestore_port: 8081, base_port: 8081}",
     "test.yaml:10: local.firestore_port: 8081 is also function api's port (functions get base_port, base_port+1, "
     "...: 8081..8082); allowed: a port outside 8081..8082"),
    ("{firestore_port: 8082, base_port: 8081}", "8082 is also function worker's port"),
])
def test_the_emulator_port_cannot_be_a_function_port(tmp_path, ports, expected):
    local = VALID.replace("acme-test-1", "demo-test-1") + "  worker: {entry_point: api}\nlocal: " + ports + "\n"
    assert expected in problems(tmp_path, local)
    fine = local.replace("firestore_port: 808", "firestore_port: 809")
    assert load_environment("test", write(tmp_path, fine)).local is not None


def test_dev_yaml_comments_every_key_and_shows_every_key_there_is():
    """README: environments/dev.yaml carries a comment with the allowed values on every key."""
    text = (ENVIRONMENTS_DIR / "dev.yaml").read_text()
    lines = text.splitlines()

    def keys(node: yaml.Node):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                yield key
                yield from keys(value)
        elif isinstance(node, yaml.SequenceNode):
            for value in node.value:
                yield from keys(value)

    uncommented = [f"{key.start_mark.line + 1}: {key.value}" for key in keys(yaml.compose(text))
                   if "#" not in lines[key.start_mark.line]]
    assert uncommented == [], "keys without a comment"
    written = set(re.findall(r"([a-z0-9_]+):", text))
    missing = [f"{m.__name__}.{field}" for m in FILE_MODELS for field in m.model_fields
               if field != "name" and field not in written]
    assert missing == [], "keys dev.yaml does not show (set or commented out)"


def test_the_readme_names_every_key_of_an_environment_file():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Environments"):readme.index("## Layout")]
    section = re.sub(r"```.*?```", "", section, flags=re.S)  # the example errors do not count
    in_code = {word for span in re.findall(r"`([^`]+)`", section) for word in re.findall(r"[a-z0-9_]+", span)}
    missing = [f"{m.__name__}.{field}" for m in FILE_MODELS for field in m.model_fields
               if field != "name" and field not in in_code]
    assert missing == []


def validate(env_dir: Path) -> subprocess.CompletedProcess:
    """`make validate`: `python -m kit validate` on the environment files in env_dir."""
    return subprocess.run([sys.executable, "-m", "kit", "validate"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "GCF_KIT_ENVIRONMENTS_DIR": str(env_dir)}, timeout=120)


def test_validate_checks_entry_points_against_main_py(tmp_path):
    env_dir = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, env_dir)
    assert validate(env_dir).returncode == 0
    dev = env_dir / "dev.yaml"
    dev.write_text(dev.read_text().replace("entry_point: api ", "entry_point: apii"))
    result = validate(env_dir)
    assert result.returncode == 2
    assert "dev.yaml: functions.api.entry_point: 'apii' is not defined at the top level of functions/main.py " \
           "(did you mean 'api'?)" in result.stderr


def test_validate_fails_when_there_is_no_environment_file(tmp_path):
    (tmp_path / "environments").mkdir()
    result = validate(tmp_path / "environments")
    assert result.returncode == 2 and "has no environment files (*.yaml)" in result.stderr
