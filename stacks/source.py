"""Where the code comes from: the source bucket, the hashed bundle in it, the identity Cloud Build uses.

The bundle's object name carries its content hash (`bundles/functions-<hash>.zip`): new code is a new object,
which changes every function's build source and redeploys it; unchanged code synthesizes the same name, so
Terraform plans no change. Terraform deletes the previous object when the name changes; with versioning on,
it stays restorable as a noncurrent version until the lifecycle rule removes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cdktn import TerraformStack
from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
    StorageBucketVersioning,
)
from cdktn_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from cdktn_provider_google.storage_bucket_object import StorageBucketObject

from kit.bundle import Bundle
from kit.config import Environment
from stacks import iam

# How long a replaced bundle stays restorable (as a noncurrent version) before the lifecycle rule deletes it.
NONCURRENT_BUNDLE_DAYS = 30


@dataclass(frozen=True)
class Source:
    bucket: StorageBucket
    bundle: StorageBucketObject
    build_account: ServiceAccount
    build_grants: list


def bucket_name(env: Environment) -> str:
    # Project ids are globally unique (and at most 30 characters), so this bucket name is too.
    return f"{env.project}-gcf-source"


def add_source(stack: TerraformStack, env: Environment, bundle: Bundle, stack_dir: Path,
               depends_on: list) -> Source:
    bucket = StorageBucket(
        stack, "source", project=env.project, name=bucket_name(env), location=env.region,
        uniform_bucket_level_access=True, public_access_prevention="enforced", force_destroy=False,
        versioning=StorageBucketVersioning(enabled=True),
        lifecycle_rule=[StorageBucketLifecycleRule(
            action=StorageBucketLifecycleRuleAction(type="Delete"),
            condition=StorageBucketLifecycleRuleCondition(
                matches_prefix=["bundles/"], with_state="ARCHIVED",
                days_since_noncurrent_time=NONCURRENT_BUNDLE_DAYS))],
        depends_on=depends_on)
    # Relative to the stack folder, where terraform runs: the synthesized JSON works from any checkout path.
    relative = Path(os.path.relpath(bundle.path, stack_dir)).as_posix()
    bundle_object = StorageBucketObject(
        stack, "bundle", bucket=bucket.name, name=bundle.object_name, source=f"${{path.module}}/{relative}",
        content_type="application/zip")
    build_account = iam.service_account(
        stack, "cloud_build", project=env.project, account="gcf-build", display_name="gcf-kit: Cloud Build",
        description="Builds the function images from the source bundle (Cloud Functions build service account)",
        depends_on=depends_on)
    grants = iam.grant_project_roles(stack, "cloud_build", project=env.project, account=build_account,
                                     roles=iam.BUILD_ROLES)
    grants.append(iam.grant_build_storage(stack, "cloud_build", project=env.project, account=build_account))
    # Read-only on the kit's bucket: the bundle is the build's source; writing here is the deployer's alone.
    grants.append(StorageBucketIamMember(stack, "cloud_build_source_reader", bucket=bucket.name,
                                         role=iam.SOURCE_READER, member=build_account.member))
    return Source(bucket=bucket, bundle=bundle_object, build_account=build_account, build_grants=grants)
