"""`python -m stacks` synthesizes every environment; what each YAML says shows up in the JSON, safely.

The inventories (test_inventories.py) pin every attribute; these tests state the rules that must hold for any
environment: relative bundle paths, no basic roles, secret-level secret access, deploy ordering, job command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.config import ROOT, load_all
from stacks.job_bootstrap import __doc__ as BOOTSTRAP_DOC
from stacks.migration_job import BOOTSTRAP

FIXTURES = Path(__file__).parent / "fixtures"


def run_synth(outdir: Path, *args: str, env_dir: Path | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    if env_dir:
        environ["GCF_KIT_ENVIRONMENTS_DIR"] = str(env_dir)
    return subprocess.run([sys.executable, "-m", "stacks", "--outdir", str(outdir), *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=300)


def all_stacks(synthesized, showcase) -> list[tuple[str, dict]]:
    return [(name, s.json(name)) for s in (synthesized, showcase) for name in s.stacks]


def test_every_environment_gets_a_stack_named_env_functions(synthesized):
    expected = {f"{name}-functions" for name in load_all()}
    assert {p.name for p in (synthesized.outdir / "stacks").iterdir()} == expected
    assert set(json.loads((synthesized.outdir / "manifest.json").read_text())["stacks"]) == expected


@pytest.mark.parametrize("env_name", ["local", "dev", "staging", "prod"])
def test_function_settings_come_from_the_environment_file(synthesized, env_name):
    env = load_all()[env_name]
    tf = synthesized.json(f"{env_name}-functions")
    assert tf["provider"]["google"][0]["project"] == env.project
    assert tf["terraform"]["backend"]["gcs"] == {"bucket": env.state.bucket,
                                                 "prefix": f"{env.state.prefix}/{env_name}-functions"}
    functions = tf["resource"]["google_cloudfunctions2_function"]
    assert set(functions) == set(env.functions)
    for name, fn in env.functions.items():
        service = functions[name]["service_config"]
        assert (service["min_instance_count"], service["max_instance_count"]) == (fn.min_instances, fn.max_instances)
        assert service["available_memory"] == fn.memory
        assert service["environment_variables"]["LOG_EXECUTION_ID"] == "true"
    assert ("google_cloud_run_v2_job" in tf["resource"]) == (env.migration_job is not None)


def test_the_bundle_path_is_relative_to_the_stack_folder(synthesized, showcase):
    for s in (synthesized, showcase):
        for name, folder in s.stacks.items():
            source = s.json(name)["resource"]["google_storage_bucket_object"]["bundle"]["source"]
            assert source.startswith("${path.module}/../../bundle/functions-"), source
            assert (folder / source.removeprefix("${path.module}/")).is_file()  # where terraform will look


def test_no_basic_role_and_no_project_wide_secret_access(synthesized, showcase):
    for name, tf in all_stacks(synthesized, showcase):
        text = json.dumps(tf)
        for role in ("roles/owner", "roles/editor", "roles/viewer"):
            assert f'"{role}"' not in text, f"{name} grants {role}"
        project_roles = {m["role"] for m in tf["resource"]["google_project_iam_member"].values()}
        assert "roles/secretmanager.secretAccessor" not in project_roles, name


def test_shipped_environments_grant_nobody_anonymous_access(synthesized):
    for name in synthesized.stacks:
        assert "allUsers" not in json.dumps(synthesized.json(name)), name


def test_each_function_reads_only_its_own_secrets(showcase):
    grants = showcase.json("showcase-functions")["resource"]["google_secret_manager_secret_iam_member"]
    # api names signing-key twice (two versions) and db-password once: one grant per secret, api's SA only.
    assert sorted((g["secret_id"], g["member"]) for g in grants.values()) == [
        ("db-password", "${google_service_account.api_runtime.member}"),
        ("signing-key", "${google_service_account.api_runtime.member}")]


def test_a_function_deploys_after_its_grants(showcase):
    depends = showcase.json("showcase-functions")["resource"]["google_cloudfunctions2_function"]["api"]["depends_on"]
    assert {"google_project_service.apis", "google_secret_manager_secret_iam_member.api_secret_signing-key",
            "google_secret_manager_secret_iam_member.api_secret_db-password",
            "google_project_iam_member.cloud_build_artifactregistry_writer"} <= set(depends)


def test_the_migration_job_runs_the_bootstrap_from_stacks_job_bootstrap(synthesized):
    job = synthesized.json("prod-functions")["resource"]["google_cloud_run_v2_job"]["migration_job"]
    container = job["template"]["template"]["containers"][0]
    assert container["command"] == ["python", "-c", BOOTSTRAP] and container["args"] == ["up"]
    assert BOOTSTRAP.startswith("import hashlib") and BOOTSTRAP_DOC not in BOOTSTRAP
    assert compile(BOOTSTRAP, "job_bootstrap", "exec")


def test_one_environment_can_be_synthesized_alone(tmp_path):
    result = run_synth(tmp_path / "out", "--env", "prod")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "out" / "stacks").iterdir()] == ["prod-functions"]


def test_a_config_typo_stops_synth_before_anything_is_written(tmp_path):
    env_dir = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", env_dir)
    prod = env_dir / "prod.yaml"
    prod.write_text(prod.read_text().replace("min_instances:", "min_instanses:"))
    result = run_synth(tmp_path / "out", env_dir=env_dir)
    assert result.returncode == 2
    assert "prod.yaml" in result.stderr and "functions.api.min_instanses: unknown key" in result.stderr
    assert "did you mean 'min_instances'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_entry_point_missing_from_main_py_stops_synth(tmp_path):
    from kit.config import ConfigError
    from stacks.app import synth

    env_dir = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", env_dir)
    dev = env_dir / "dev.yaml"
    dev.write_text(dev.read_text().replace("entry_point: api", "entry_point: apii"))
    with pytest.raises(ConfigError) as caught:
        synth(["dev"], outdir=tmp_path / "out", environments_dir=env_dir)
    assert "dev.yaml: functions.api.entry_point: 'apii' is not defined at the top level of functions/main.py " \
           "(did you mean 'api'?)" in str(caught.value)
    assert not (tmp_path / "out" / "stacks").exists()


def test_bundles_no_stack_uses_any_more_are_removed(tmp_path):
    from stacks.app import synth

    functions, envs, out = tmp_path / "functions", tmp_path / "environments", tmp_path / "out"
    shutil.copytree(FIXTURES / "functions", functions)
    shutil.copytree(FIXTURES / "environments", envs)
    shutil.copy(envs / "showcase.yaml", envs / "other.yaml")
    bundles = lambda: sorted(p.name for p in (out / "bundle").glob("*.zip"))  # noqa: E731
    synth(["showcase", "other"], out, envs, functions)
    old = bundles()
    (functions / "main.py").write_text((functions / "main.py").read_text() + "\n# changed\n")
    synth(["showcase"], out, envs, functions)
    assert len(bundles()) == 2 and set(old) < set(bundles())  # other-functions still uploads the old one
    synth(["showcase", "other"], out, envs, functions)
    assert len(bundles()) == 1 and bundles() != old


def test_a_migration_job_needs_the_engine_in_the_bundle(tmp_path):
    from kit.config import ConfigError
    from stacks.app import synth

    functions = tmp_path / "functions"
    shutil.copytree(FIXTURES / "functions", functions)
    shutil.rmtree(functions / "gcfkit" / "migrations")
    with pytest.raises(ConfigError, match=r"showcase\.yaml: migration_job: the bundle has no "
                                          r"gcfkit/migrations/__main__\.py, which the job runs"):
        synth(["showcase"], tmp_path / "out", FIXTURES / "environments", functions)


def test_any_valid_function_name_synthesizes_even_one_named_like_another_construct(tmp_path):
    """Construct ids share one namespace per stack: functions named after the stack's own constructs (source,
    bundle, apis, google, backend), and a topic named like a function's trigger account, used to crash synth."""
    from stacks.app import synth

    names = ["source", "bundle", "apis", "google", "backend", "cloud", "migration", "function"]
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    functions = "".join(f"  {name}: {{entry_point: api}}\n" for name in names)
    (env_dir / "clash.yaml").write_text(
        "project: acme-clash\nregion: europe-west1\nstate: {bucket: acme-clash-tfstate}\nfunctions:\n" + functions
        + "  topic: {entry_point: on_order, trigger: {type: event, topic: trigger}}\nmigration_job: {}\n")
    stacks = synth(["clash"], tmp_path / "out", env_dir, FIXTURES / "functions")
    tf = json.loads((stacks["clash-functions"] / "cdk.tf.json").read_text())
    resources = tf["resource"]
    assert sorted(resources["google_cloudfunctions2_function"]) == sorted([*names, "topic"])
    assert set(resources["google_storage_bucket"]) == {"source"} and set(resources["google_project_service"]) == {
        "apis"}
    assert resources["google_pubsub_topic"]["topic_trigger"]["name"] == "trigger"
    assert resources["google_cloudfunctions2_function"]["topic"]["event_trigger"]["pubsub_topic"] == \
        "${google_pubsub_topic.topic_trigger.id}"
    assert resources["google_service_account"]["topic_trigger"]["account_id"] == "trig-topic"
    assert tf["output"]["bundle_url"]["value"] == "${google_cloudfunctions2_function.bundle.url}"


def test_only_the_deployer_can_write_the_source_bucket(synthesized, showcase):
    """Its migration-plan.json is the migration job's approval: no identity the stacks create may write it, so a
    storage role granted project-wide carries a condition limiting it to Cloud Functions' own gcf-v2-* buckets."""
    for name, tf in all_stacks(synthesized, showcase):
        bucket = tf["resource"]["google_storage_bucket"]["source"]["name"]
        for address, grant in tf["resource"]["google_project_iam_member"].items():
            if grant["role"].startswith("roles/storage."):
                expression = grant.get("condition", {}).get("expression", "")
                prefixes = re.findall(r'resource\.name\.startsWith\("projects/_/buckets/([^"]+)"\)', expression)
                assert prefixes and " || ".join(f'resource.name.startsWith("projects/_/buckets/{p}")'
                                                for p in prefixes) == expression, (name, address, expression)
                assert all(p.startswith("gcf-v2-") for p in prefixes), (name, address, prefixes)
                assert not bucket.startswith(tuple(prefixes)), (name, bucket)
        on_bucket = {g["role"] for g in tf["resource"]["google_storage_bucket_iam_member"].values()}
        assert on_bucket == {"roles/storage.objectViewer"}, name


def test_a_project_whose_source_bucket_looks_like_a_cloud_functions_bucket_is_refused(tmp_path):
    from kit.config import ConfigError
    from stacks.app import synth

    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "odd.yaml").write_text("project: gcf-v2-sources-1\nregion: europe-west1\n"
                                      "state: {bucket: odd-tfstate}\nfunctions:\n  api: {entry_point: api}\n")
    with pytest.raises(ConfigError, match=r"odd\.yaml: project: 'gcf-v2-sources-1' makes the source bucket "
                                          r"'gcf-v2-sources-1-gcf-source', a name Cloud Functions reserves"):
        synth(["odd"], tmp_path / "out", env_dir, FIXTURES / "functions")
    assert not (tmp_path / "out").exists()


def test_synth_of_every_environment_fails_when_there_is_none(tmp_path):
    (tmp_path / "environments").mkdir()
    result = run_synth(tmp_path / "out", env_dir=tmp_path / "environments")
    assert result.returncode == 2 and "has no environment files (*.yaml)" in result.stderr
    assert not (tmp_path / "out").exists()
