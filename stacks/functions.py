"""Per-environment function stack: provider, GCS state backend, source bucket, bundle, functions."""

from __future__ import annotations

from cdktn import GcsBackend, TerraformOutput, TerraformStack
from cdktn_provider_google.cloudfunctions2_function import (
    Cloudfunctions2Function,
    Cloudfunctions2FunctionBuildConfig,
    Cloudfunctions2FunctionBuildConfigSource,
    Cloudfunctions2FunctionBuildConfigSourceStorageSource,
    Cloudfunctions2FunctionEventTrigger,
    Cloudfunctions2FunctionServiceConfig,
    Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables,
)
from cdktn_provider_google.provider import GoogleProvider
from cdktn_provider_google.storage_bucket import StorageBucket
from cdktn_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct

from kit.bundle import Bundle
from kit.config import Environment, EventTrigger, Function


class FunctionsStack(TerraformStack):
    def __init__(self, scope: Construct, stack_id: str, *, env: Environment, bundle: Bundle):
        super().__init__(scope, stack_id)
        self.env = env
        GoogleProvider(self, "google", project=env.project, region=env.region,
                       default_labels={"managed-by": "gcf-kit", **env.labels})
        GcsBackend(self, bucket=env.state.bucket, prefix=f"{env.state.prefix}/{stack_id}")

        self.source_bucket = StorageBucket(
            self, "source", name=f"{env.project}-gcf-source", location=env.region,
            uniform_bucket_level_access=True, public_access_prevention="enforced", force_destroy=False)
        self.bundle_object = StorageBucketObject(
            self, "bundle", bucket=self.source_bucket.name, name=bundle.object_name,
            source=f"${{path.module}}/../../bundle/{bundle.path.name}")  # terraform runs in stacks/<stack>/
        TerraformOutput(self, "bundle_sha256", value=bundle.sha256)

        for name, function in env.functions.items():
            resource = self._function(name, function)
            if function.is_http:
                TerraformOutput(self, f"{name}_url", value=resource.url)

    def _function(self, name: str, fn: Function) -> Cloudfunctions2Function:
        env = self.env
        event_trigger = None
        if isinstance(fn.trigger, EventTrigger):
            event_trigger = Cloudfunctions2FunctionEventTrigger(
                event_type=fn.trigger.event_type, trigger_region=env.region,
                pubsub_topic=f"projects/{env.project}/topics/{fn.trigger.topic}",
                retry_policy="RETRY_POLICY_RETRY" if fn.trigger.retry else "RETRY_POLICY_DO_NOT_RETRY")
        return Cloudfunctions2Function(
            self, f"function_{name}", name=name, location=env.region, description=fn.description or None,
            build_config=Cloudfunctions2FunctionBuildConfig(
                runtime=env.runtime, entry_point=fn.entry_point,
                source=Cloudfunctions2FunctionBuildConfigSource(
                    storage_source=Cloudfunctions2FunctionBuildConfigSourceStorageSource(
                        bucket=self.source_bucket.name, object=self.bundle_object.name))),
            service_config=Cloudfunctions2FunctionServiceConfig(
                min_instance_count=fn.min_instances, max_instance_count=fn.max_instances,
                max_instance_request_concurrency=fn.concurrency, available_cpu=fn.cpu,
                available_memory=fn.memory, timeout_seconds=fn.timeout_seconds,
                ingress_settings=fn.ingress.api_value,
                environment_variables={"LOG_EXECUTION_ID": "true", **fn.env},
                secret_environment_variables=[
                    Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables(
                        key=key, project_id=env.project, secret=ref.secret, version=ref.version)
                    for key, ref in fn.secrets.items()] or None),
            event_trigger=event_trigger,
            labels={"function": name})
