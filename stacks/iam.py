"""Service accounts and the roles they get: one identity per workload, named predictably, never a basic role.

Every role the stacks grant is listed here, so a reviewer reads the whole permission surface in one place.
"""

from __future__ import annotations

import hashlib

from cdktn import TerraformStack
from cdktn_provider_google.project_iam_member import ProjectIamMember, ProjectIamMemberCondition
from cdktn_provider_google.service_account import ServiceAccount

# What a function's own identity needs at project level. Secret access is NOT here: it is granted per secret
# (secret-level IAM), only on the secrets the function's env file entry names.
FUNCTION_ROLES = (
    "roles/datastore.user",           # read/write Firestore documents (no admin, no index changes)
    "roles/logging.logWriter",        # structured logs and error reports
    "roles/monitoring.metricWriter",  # custom metrics (gcfkit's Cloud Monitoring exporter)
)
# The migration job runs the same runtime code as the functions.
MIGRATION_JOB_ROLES = FUNCTION_ROLES
# Cloud Build builds each function's image with this identity instead of the project's default compute
# account (which new projects leave without build permissions and old ones give Editor). Google documents
# these roles for a user-specified build service account of Cloud Run functions ...
BUILD_ROLES = (
    "roles/logging.logWriter",         # build logs
    "roles/artifactregistry.writer",   # push the built image to gcf-artifacts
)
# ... plus roles/storage.objectAdmin "to retrieve the function source", documented project-wide. Project-wide
# it could write the kit's source bucket, whose migration-plan.json *is* the migration job's approval (only
# the deployer may write it). So the build gets objectAdmin only on the buckets Cloud Functions manages itself
# (it copies a deploy's source into gcf-v2-sources-<project number>-<region>; gcf-v2-uploads-* holds
# uploaded sources), and only read access to the kit's source bucket.
BUILD_STORAGE_ROLE = "roles/storage.objectAdmin"
BUILD_BUCKET_PREFIXES = ("gcf-v2-sources-", "gcf-v2-uploads-")
BUILD_STORAGE_CONDITION = " || ".join(f'resource.name.startsWith("projects/_/buckets/{prefix}")'
                                      for prefix in BUILD_BUCKET_PREFIXES)
SOURCE_READER = "roles/storage.objectViewer"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
INVOKER = "roles/run.invoker"
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})

ACCOUNT_ID_MAX = 30  # IAM: 6-30 characters, [a-z][-a-z0-9]*[a-z0-9]


def account_id(prefix: str, name: str) -> str:
    """`<prefix>-<name>`, or a truncated form with a hash of the full one when that exceeds 30 characters.

    Each kind of account has its own prefix (func-, trig-, gcf-), so no function name can collide with
    another kind's account. Function names are 2-49 characters, so the short form is always >= 6.
    """
    full = f"{prefix}-{name}"
    if len(full) <= ACCOUNT_ID_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:ACCOUNT_ID_MAX - 9].rstrip('-')}-{digest}"


def service_account(stack: TerraformStack, resource_id: str, *, project: str, account: str,
                    display_name: str, description: str, depends_on: list) -> ServiceAccount:
    return ServiceAccount(stack, resource_id, project=project, account_id=account, display_name=display_name,
                          description=description, depends_on=depends_on)


def grant_project_roles(stack: TerraformStack, owner_id: str, *, project: str, account: ServiceAccount,
                        roles: tuple[str, ...]) -> list[ProjectIamMember]:
    """Non-authoritative project-level grants (one member each): other bindings in the project stay untouched."""
    grants = []
    for role in roles:
        if role in BASIC_ROLES:
            raise ValueError(f"{owner_id}: {role} is a basic role; grant a predefined role instead")
        grants.append(ProjectIamMember(stack, f"{owner_id}_{role_suffix(role)}", project=project, role=role,
                                       member=account.member))
    return grants


def grant_build_storage(stack: TerraformStack, owner_id: str, *, project: str,
                        account: ServiceAccount) -> ProjectIamMember:
    """objectAdmin for the build, limited by an IAM condition to Cloud Functions' own gcf-v2-* buckets."""
    return ProjectIamMember(
        stack, f"{owner_id}_{role_suffix(BUILD_STORAGE_ROLE)}", project=project, role=BUILD_STORAGE_ROLE,
        member=account.member, condition=ProjectIamMemberCondition(
            title="Cloud Functions buckets only",
            description="The function build reads and writes only the gcf-v2-sources-*/gcf-v2-uploads-* buckets "
                        "Cloud Functions manages, never the kit's source bucket (its migration plan is an approval)",
            expression=BUILD_STORAGE_CONDITION))


def role_suffix(role: str) -> str:
    """roles/datastore.user -> datastore_user (for readable Terraform addresses)."""
    return role.removeprefix("roles/").replace(".", "_")
