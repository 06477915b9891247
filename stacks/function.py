"""One function from an environment file: its identity, its grants, its trigger, the function, who may invoke it.

Terraform addresses start with the function's name: `google_cloudfunctions2_function.api`,
`google_service_account.api_runtime`, `google_project_iam_member.api_datastore_user`,
`google_secret_manager_secret_iam_member.api_secret_<secret>`, `google_cloud_run_service_iam_binding.api_invokers`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TypeVar

from cdktn import TerraformElement, TerraformStack
from cdktn_provider_google.cloud_run_service_iam_binding import CloudRunServiceIamBinding
from cdktn_provider_google.cloudfunctions2_function import (
    Cloudfunctions2Function,
    Cloudfunctions2FunctionBuildConfig,
    Cloudfunctions2FunctionBuildConfigSource,
    Cloudfunctions2FunctionBuildConfigSourceStorageSource,
    Cloudfunctions2FunctionEventTrigger,
    Cloudfunctions2FunctionServiceConfig,
    Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables,
)
from cdktn_provider_google.data_google_pubsub_topic import DataGooglePubsubTopic
from cdktn_provider_google.pubsub_topic import PubsubTopic
from cdktn_provider_google.secret_manager_secret_iam_member import SecretManagerSecretIamMember
from cdktn_provider_google.service_account import ServiceAccount

from kit.config import FIXED_ENV, Environment, EventTrigger, Function, platform_env
from stacks import iam
from stacks.source import Source

PUBLIC = "allUsers"
T = TypeVar("T", bound=TerraformElement)


@dataclass(frozen=True)
class DeployedFunction:
    function: Cloudfunctions2Function
    account: ServiceAccount


def add_topics(stack: TerraformStack, env: Environment, depends_on: list) -> dict[str, str]:
    """Topic name -> topic id, for every event function. A topic is created when any function on it asks
    (`create_topic: true`, the default); otherwise it is read, so a missing topic fails the plan, not the deploy.
    """
    created: dict[str, bool] = {}
    for fn in env.functions.values():
        if isinstance(fn.trigger, EventTrigger):
            created[fn.trigger.topic] = created.get(fn.trigger.topic, False) or fn.trigger.create_topic
    ids = {}
    for topic, create in sorted(created.items()):
        if create:
            element = PubsubTopic(stack, f"topic:{topic}", project=env.project, name=topic, depends_on=depends_on)
        else:
            element = DataGooglePubsubTopic(stack, f"topic:{topic}", project=env.project, name=topic)
        ids[topic] = addressed(element, _resource_id("topic", topic)).id
    return ids


def add_function(stack: TerraformStack, env: Environment, name: str, fn: Function, *, source: Source,
                 topics: dict[str, str], depends_on: list) -> DeployedFunction:
    project = env.project
    account = iam.service_account(
        stack, f"{name}_runtime", project=project, account=iam.account_id("func", name),
        display_name=f"gcf-kit: function {name}", description=f"Runtime identity of the {name} function",
        depends_on=depends_on)
    grants = iam.grant_project_roles(stack, name, project=project, account=account, roles=iam.FUNCTION_ROLES)
    # Secret-level grants: the function can read exactly the secrets its entry names, nothing else.
    secret_grants = [
        SecretManagerSecretIamMember(stack, f"{name}_secret_{secret}", project=project, secret_id=secret,
                                     role=iam.SECRET_ACCESSOR, member=account.member)
        for secret in sorted({ref.secret for ref in fn.secrets.values()})]

    event_trigger, trigger_account = None, None
    if isinstance(fn.trigger, EventTrigger):
        # Eventarc pushes events with its own identity, which needs run.invoker on this function only.
        trigger_account = iam.service_account(
            stack, f"{name}_trigger", project=project, account=iam.account_id("trig", name),
            display_name=f"gcf-kit: trigger of {name}", description=f"Eventarc identity that delivers {name}'s events",
            depends_on=depends_on)
        event_trigger = Cloudfunctions2FunctionEventTrigger(
            event_type=fn.trigger.event_type, pubsub_topic=topics[fn.trigger.topic], trigger_region=env.region,
            service_account_email=trigger_account.email,
            retry_policy="RETRY_POLICY_RETRY" if fn.trigger.retry else "RETRY_POLICY_DO_NOT_RETRY")

    function = Cloudfunctions2Function(
        stack, f"function:{name}", project=project, name=name, location=env.region, description=fn.description or None,
        build_config=Cloudfunctions2FunctionBuildConfig(
            runtime=env.runtime, entry_point=fn.entry_point, service_account=source.build_account.id,
            source=Cloudfunctions2FunctionBuildConfigSource(
                storage_source=Cloudfunctions2FunctionBuildConfigSourceStorageSource(
                    bucket=source.bucket.name, object=source.bundle.name))),
        service_config=Cloudfunctions2FunctionServiceConfig(
            service_account_email=account.email,
            min_instance_count=fn.min_instances, max_instance_count=fn.max_instances,
            max_instance_request_concurrency=fn.concurrency, available_cpu=fn.cpu,
            available_memory=fn.memory, timeout_seconds=fn.timeout_seconds,
            ingress_settings=fn.ingress.api_value,
            environment_variables={**fn.env, **platform_env(env.project, env.region, FIXED_ENV)},
            secret_environment_variables=[
                Cloudfunctions2FunctionServiceConfigSecretEnvironmentVariables(
                    key=key, project_id=project, secret=ref.secret, version=ref.version)
                for key, ref in sorted(fn.secrets.items())] or None),
        event_trigger=event_trigger,
        labels={"function": name},
        # The build needs its roles and the first revision needs its secrets before the deploy starts.
        depends_on=[*depends_on, *source.build_grants, *secret_grants, *grants])
    addressed(function, name)

    members = sorted({*fn.invokers, *([PUBLIC] if fn.public else [])})
    if trigger_account is not None:
        members.append(trigger_account.member)
    if members:
        # Authoritative for run.invoker on this function's Cloud Run service: exactly the declared members,
        # so an invoker removed from the env file (or added by hand) loses access on the next apply.
        # The v1 resource manages the same IAM policy as the v2 one; checkov inspects only the v1 resource
        # for public (allUsers) access, so this keeps a public function visible to the scan.
        CloudRunServiceIamBinding(
            stack, f"{name}_invokers", project=project, location=env.region,
            service=function.service_config.service, role=iam.INVOKER, members=members)
    return DeployedFunction(function=function, account=account)


def addressed(element: T, address_name: str) -> T:
    """Give `element` the Terraform name `address_name`, whatever its construct id.

    A function's and a topic's construct ids carry a `function:`/`topic:` prefix, because construct ids share
    one namespace per stack: a function named `source`, `bundle`, `apis` or `google` (or a topic named like
    a function's `<fn>_trigger` account) would otherwise collide with another construct. Terraform names only
    need to be unique per resource type, so the addresses keep the plain names.
    """
    element.override_logical_id(address_name)
    return element


def _resource_id(prefix: str, name: str) -> str:
    """A Terraform resource name for `name`; characters Terraform refuses become _, plus a hash if any did."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if safe != name:
        safe += "_" + hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{prefix}_{safe}"
