"""The environment loader: every shipped file is valid, and each kind of mistake is named precisely."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kit.config import ConfigError, Ingress, environment_names, load_all, load_environment

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
    assert (fn.cpu, fn.memory, fn.concurrency, fn.timeout_seconds) == ("0.583", "512Mi", 1, 60)
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
