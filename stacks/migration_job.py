"""The opt-in migration job (`migration_job:` in an env file): a Cloud Run Job running the migrations engine
from the same bundle the functions were built from, split into parallel tasks.

How the job gets the code: a stock Python image (`python:<runtime version>-slim` by default, or the env file's
`migration_job.image`) mounts the source bucket read-only as a Cloud Storage volume; `stacks/job_bootstrap.py`
(embedded in the job's command) verifies the hashed bundle's sha256, unpacks it, installs its requirements.txt
and runs `python -m gcfkit.migrations up` in the unpacked `functions/`. So the job runs exactly the bytes the
functions run, and a code change updates the job in the same apply (the bundle name and hash change).

What the job applies: exactly the reviewed plan uploaded to `gs://<source bucket>/migration-plan.json`
(GCFKIT_MIGRATION_PLAN points `up` at it through the same mount), or nothing: with no plan there, a plan for
other versions or files, or an irreversible migration the plan did not approve, `up` refuses. Uploading
that object is the approval, so only the deployer may write the bucket; the job's and the build's accounts only
read it (stacks/iam.py).
Applying the stack defines the job; it runs when executed:
`gcloud run jobs execute gcf-kit-migrations --region R --wait` (add `--args=plan` for a dry run).
"""

from __future__ import annotations

from pathlib import Path

from cdktn import TerraformOutput, TerraformStack
from cdktn_provider_google.cloud_run_v2_job import (
    CloudRunV2Job,
    CloudRunV2JobTemplate,
    CloudRunV2JobTemplateTemplate,
    CloudRunV2JobTemplateTemplateContainers,
    CloudRunV2JobTemplateTemplateContainersEnv,
    CloudRunV2JobTemplateTemplateContainersResources,
    CloudRunV2JobTemplateTemplateContainersVolumeMounts,
    CloudRunV2JobTemplateTemplateVolumes,
    CloudRunV2JobTemplateTemplateVolumesGcs,
)
from cdktn_provider_google.storage_bucket_iam_member import StorageBucketIamMember

from kit.bundle import Bundle
from kit.config import Environment, MigrationJob
from stacks import iam
from stacks.source import Source, bucket_name

JOB_NAME = "gcf-kit-migrations"
BUNDLE_MOUNT = "/bundle"
PLAN_OBJECT = "migration-plan.json"  # in the source bucket: the reviewed plan an execution applies
ARGS = ["up"]  # an execution may override them (`--args=plan`, `--args=status`)
# The bootstrap's code without its module docstring (the job spec carries the code, the repository the docs).
_, _, BOOTSTRAP = (Path(__file__).parent / "job_bootstrap.py").read_text(encoding="utf-8").partition('"""\n\n')
IMAGES = {"python312": "docker.io/library/python:3.12-slim", "python313": "docker.io/library/python:3.13-slim"}


def image_for(env: Environment, job: MigrationJob) -> str:
    """The env file's image, or the stock Python image matching the functions' runtime."""
    return job.image or IMAGES[env.runtime]


def job_environment(env: Environment, bundle: Bundle) -> dict[str, str]:
    """The job's variables: which bundle to run (and its hash), and which plan `up` applies."""
    return {
        "GCF_KIT_BUNDLE": f"{BUNDLE_MOUNT}/{bundle.object_name}",
        "GCF_KIT_BUNDLE_SHA256": bundle.sha256,
        "GCFKIT_MIGRATION_PLAN": f"{BUNDLE_MOUNT}/{PLAN_OBJECT}",
        "GOOGLE_CLOUD_PROJECT": env.project,
    }


def add_migration_job(stack: TerraformStack, env: Environment, job: MigrationJob, *, bundle: Bundle,
                      source: Source, depends_on: list) -> CloudRunV2Job:
    project = env.project
    account = iam.service_account(
        stack, "migration_job_runtime", project=project, account="gcf-migrations", display_name="gcf-kit: migrations",
        description="Runs the Firestore migrations (Cloud Run Job)", depends_on=depends_on)
    grants = iam.grant_project_roles(stack, "migration_job", project=project, account=account,
                                     roles=iam.MIGRATION_JOB_ROLES)
    # Bucket-level, read-only: the job reads the bundle and nothing else in storage.
    reader = StorageBucketIamMember(stack, "migration_job_source_reader", bucket=source.bucket.name,
                                    role=iam.SOURCE_READER, member=account.member)
    TerraformOutput(stack, "migration_plan_object", value=f"gs://{bucket_name(env)}/{PLAN_OBJECT}",
                    description="upload the reviewed plan (make migrate-plan PLAN=...) here; the job applies it")
    return CloudRunV2Job(
        stack, "migration_job", project=project, name=JOB_NAME, location=env.region,
        # The job holds no data; recreating it is harmless, and turning migration_job off must be able to delete it.
        deletion_protection=False,
        template=CloudRunV2JobTemplate(
            task_count=job.tasks, parallelism=job.parallelism or job.tasks,
            template=CloudRunV2JobTemplateTemplate(
                service_account=account.email, max_retries=job.max_retries, timeout=f"{job.timeout_seconds}s",
                execution_environment="EXECUTION_ENVIRONMENT_GEN2",  # Cloud Storage volumes need gen2
                volumes=[CloudRunV2JobTemplateTemplateVolumes(
                    name="bundle", gcs=CloudRunV2JobTemplateTemplateVolumesGcs(
                        bucket=source.bucket.name, read_only=True))],
                containers=[CloudRunV2JobTemplateTemplateContainers(
                    name="migrations", image=image_for(env, job),
                    command=["python", "-c", BOOTSTRAP], args=ARGS,
                    env=[CloudRunV2JobTemplateTemplateContainersEnv(name=k, value=v)
                         for k, v in job_environment(env, bundle).items()],
                    resources=CloudRunV2JobTemplateTemplateContainersResources(
                        limits={"cpu": job.cpu, "memory": job.memory}),
                    volume_mounts=[CloudRunV2JobTemplateTemplateContainersVolumeMounts(
                        name="bundle", mount_path=BUNDLE_MOUNT)])])),
        depends_on=[*depends_on, *grants, reader, source.bundle])
