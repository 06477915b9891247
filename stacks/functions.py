"""`<env>-functions`: everything one environment file declares, in the env's project and region.

Provider and GCS state backend -> required APIs -> source bucket + hashed bundle + build identity -> Pub/Sub
topics -> one function (identity, grants, trigger, invokers) per `functions:` entry -> optional migration job
-> outputs. Every value comes from the typed `Environment`; nothing here reads YAML.
"""

from __future__ import annotations

from pathlib import Path

from cdktn import GcsBackend, TerraformIterator, TerraformOutput, TerraformStack, Token
from cdktn_provider_google.project_service import ProjectService
from cdktn_provider_google.provider import GoogleProvider
from constructs import Construct

from kit.bundle import Bundle
from kit.config import Environment, EventTrigger
from stacks.function import add_function, add_topics
from stacks.migration_job import JOB_NAME, add_migration_job
from stacks.source import add_source, bucket_name

BASE_APIS = (
    "artifactregistry.googleapis.com",     # function images
    "cloudbuild.googleapis.com",           # builds them from the bundle
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",  # project-level IAM grants
    "firestore.googleapis.com",
    "iam.googleapis.com",                  # service accounts
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",                  # 2nd gen functions (and the migration job) run on Cloud Run
    "storage.googleapis.com",              # the source bucket
)
EVENT_APIS = ("eventarc.googleapis.com", "pubsub.googleapis.com")
SECRET_APIS = ("secretmanager.googleapis.com",)


def required_apis(env: Environment) -> list[str]:
    apis = set(BASE_APIS)
    if any(isinstance(fn.trigger, EventTrigger) for fn in env.functions.values()):
        apis.update(EVENT_APIS)
    if any(fn.secrets for fn in env.functions.values()):
        apis.update(SECRET_APIS)
    return sorted(apis)


class FunctionsStack(TerraformStack):
    def __init__(self, scope: Construct, stack_id: str, *, env: Environment, bundle: Bundle, stack_dir: Path):
        super().__init__(scope, stack_id)
        provider = GoogleProvider(self, "google", project=env.project, region=env.region)
        # Set as a raw override: the provider block's keys go through CDK Terrain's snake_case conversion,
        # which would turn a label key like `managed-by` into `managed_by`.
        provider.add_override("default_labels", {"managed-by": "gcf-kit", **env.labels})
        GcsBackend(self, bucket=env.state.bucket, prefix=f"{env.state.prefix}/{stack_id}")

        apis_list = TerraformIterator.from_list(required_apis(env))
        # Never disabled on destroy: other workloads in the project may use the same APIs.
        apis = ProjectService(self, "apis", for_each=apis_list, project=env.project,
                              service=Token.as_string(apis_list.value),
                              disable_on_destroy=False, disable_dependent_services=False)
        after_apis = [apis]

        source = add_source(self, env, bundle, stack_dir, depends_on=after_apis)
        topics = add_topics(self, env, depends_on=after_apis)
        TerraformOutput(self, "bundle_sha256", value=bundle.sha256,
                        description="sha256 of the deployed bundle (make deploy records it: .local/<env>/)")
        TerraformOutput(self, "bundle_object", value=f"gs://{bucket_name(env)}/{bundle.object_name}")

        for name, fn in env.functions.items():
            deployed = add_function(self, env, name, fn, source=source, topics=topics, depends_on=after_apis)
            if fn.is_http:
                TerraformOutput(self, f"{name}_url", value=deployed.function.url)
            TerraformOutput(self, f"{name}_service_account", value=deployed.account.email)

        if env.migration_job is not None:
            add_migration_job(self, env, env.migration_job, bundle=bundle, source=source, depends_on=after_apis)
            TerraformOutput(self, "migration_job_name", value=JOB_NAME)
            TerraformOutput(self, "migration_job_execute",
                            value=f"gcloud run jobs execute {JOB_NAME} --project {env.project} "
                                  f"--region {env.region} --wait")
