"""The names, values and patterns that the SSM document, the runner and the agent share.

This module is the single source of truth: the document construct builds the
document's parameters from ``DOCUMENT_PARAMETERS``, the runner validates events
with the same patterns, and a test checks the self-contained on-instance agent
against them. Patterns avoid look-arounds and other engine-specific syntax so
that SSM's ``allowedPattern`` evaluates them exactly as Python's ``re`` does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

# --- document parameter names (SSM exposes each to the agent as $SSM_<Name>) ---
ACTION: Final = "Action"
REGISTRIES: Final = "Registries"
USERS: Final = "Users"
HELPER_VERSION: Final = "HelperVersion"
RELEASE_BASE_URL: Final = "ReleaseBaseUrl"
KEEP_USER_DOCKER_LOGIN: Final = "KeepUserDockerLogin"

# Each closed set of values is a Literal type (what the event model and settings are typed
# with) and, derived from it, the tuple of its values (what the document and checks list).
Action = Literal["refresh", "helper", "check"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
AUTO_USERS: Final = "auto"
# A boolean document parameter's values (the document's allowedValues; the setting's true/false).
BOOLEAN_VALUES: Final = ("false", "true")
# The credential-helper release the release-binary install fetches by default. The release bucket
# publishes versioned paths only (<base>/<X.Y.Z>/linux-<amd64|arm64>/docker-credential-ecr-login and
# its .sha256); there is no `latest` path, so the default is a pinned release (0.12.0, February 2026).
DEFAULT_HELPER_VERSION: Final = "0.12.0"
DEFAULT_RELEASE_BASE_URL: Final = "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com"

# --- building blocks ---
# Partition DNS suffixes: aws and aws-us-gov, aws-cn, aws-iso, aws-iso-b,
# aws-iso-e, aws-iso-f, aws-eusc.
PARTITION_DOMAINS: Final = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
)
REGION_RE: Final = r"[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2}"
# Dual-stack (IPv4 and IPv6) names: private registries `<account>.dkr-ecr[-fips].<region>.on.aws`
# (China: on.amazonwebservices.com.cn), ECR Public `ecr-public.aws.com` (AWS General Reference,
# "Amazon ECR endpoints and quotas"; ECR User Guide, "Making requests to Amazon ECR registries").
# Their tokens come from the dual-stack API (ecr.<region>.api.aws, ecr-public.us-east-1.api.aws).
DUALSTACK_DOMAINS: Final = ("on.aws", "on.amazonwebservices.com.cn")
PUBLIC_REGISTRY: Final = "public.ecr.aws"
DUALSTACK_PUBLIC_REGISTRY: Final = "ecr-public.aws.com"
PUBLIC_REGISTRIES: Final = (PUBLIC_REGISTRY, DUALSTACK_PUBLIC_REGISTRY)
IPV4_REGISTRY_RE: Final = (
    r"[0-9]{12}\.dkr\.ecr(?:-fips)?\."
    + REGION_RE
    + r"\.(?:"
    + "|".join(re.escape(domain) for domain in PARTITION_DOMAINS)
    + ")"
)
DUALSTACK_REGISTRY_RE: Final = (
    r"[0-9]{12}\.dkr-ecr(?:-fips)?\."
    + REGION_RE
    + r"\.(?:"
    + "|".join(re.escape(domain) for domain in DUALSTACK_DOMAINS)
    + ")"
)
PRIVATE_REGISTRY_RE: Final = r"(?:" + IPV4_REGISTRY_RE + "|" + DUALSTACK_REGISTRY_RE + ")"
REGISTRY_RE: Final = (
    r"(?:" + "|".join(re.escape(name) for name in PUBLIC_REGISTRIES) + "|" + PRIVATE_REGISTRY_RE + ")"
)
# A private registry's account and region, either form (the instance policy's repository ARNs).
PRIVATE_REGISTRY_PARTS_RE: Final = (
    r"^(?P<account>[0-9]{12})\.dkr[.-]ecr(?:-fips)?\.(?P<region>" + REGION_RE + r")\."
)
MAX_REGISTRIES: Final = 20
# POSIX portable user names (no leading hyphen), as useradd accepts by default.
USER_NAME_RE: Final = r"[A-Za-z_][A-Za-z0-9._-]{0,31}"
MAX_USERS: Final = 50
HELPER_SEMVER_RE: Final = r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}"
INSTANCE_ID_RE: Final = r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})"


def _list_of(item: str, most: int) -> str:
    return rf"{item}(?:,{item}){{0,{most - 1}}}"


# --- whole-value patterns (anchored; match with re.fullmatch) ---
REGISTRIES_PATTERN: Final = rf"^{_list_of(REGISTRY_RE, MAX_REGISTRIES)}$"
USERS_PATTERN: Final = rf"^(?:{AUTO_USERS}|{_list_of(USER_NAME_RE, MAX_USERS)})$"
HELPER_VERSION_PATTERN: Final = rf"^{HELPER_SEMVER_RE}$"
RELEASE_BASE_URL_PATTERN: Final = (
    r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~-]+)*/?$"
)
REGISTRY_PATTERN: Final = rf"^{REGISTRY_RE}$"
USER_NAME_PATTERN: Final = rf"^{USER_NAME_RE}$"
INSTANCE_ID_PATTERN: Final = rf"^{INSTANCE_ID_RE}$"
# SendCommand's own MaxConcurrency / MaxErrors forms (botocore's service model).
MAX_CONCURRENCY_PATTERN: Final = r"^(?:[1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"
MAX_ERRORS_PATTERN: Final = r"^(?:[1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%)$"


def matches(pattern: str, value: str) -> bool:
    """Whole-string match, immune to ``$`` accepting a trailing newline."""
    return re.fullmatch(pattern, value) is not None


def check_users(users: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError unless ``users`` is ["auto"] or a list of user names.

    The document's pattern alone would take "auto,ubuntu" ("auto" is a valid user
    name too); whoever writes that means something else, so it is refused.
    """
    if AUTO_USERS in users and len(users) > 1:
        raise ValueError(f"'{AUTO_USERS}' cannot be combined with user names")
    if not matches(USERS_PATTERN, ",".join(users)):
        raise ValueError("not accepted")


@dataclass(frozen=True)
class DocumentParameter:
    name: str
    description: str
    default: str | None = None
    allowed_values: tuple[str, ...] | None = None
    allowed_pattern: str | None = None
    accepted_form: str = ""

    def accepts(self, value: str) -> bool:
        if self.allowed_values is not None:
            return value in self.allowed_values
        assert self.allowed_pattern is not None
        return matches(self.allowed_pattern, value)


# The document's own defaults apply only when someone runs the document by hand (Run Command
# console, aws ssm send-command) and leaves a parameter out: the runner always sends all five,
# from the stack's settings (settings.py). Action defaults to the read-only ``check`` there on
# purpose — a hand-run that names no action changes nothing — while the stack's ``action``
# setting defaults to ``refresh``. The others equal the settings' defaults; Registries has
# none (the stack's default, the account's own registry, is a deploy-time value). The configuration
# reference ("The document's own defaults") renders this table; tests/infra/test_settings.py checks it.
DOCUMENT_PARAMETERS: Final = (
    DocumentParameter(
        name=ACTION,
        description=(
            "refresh: docker login with a fresh ECR token; helper: install and "
            "configure amazon-ecr-credential-helper; check: read-only report. "
            "Defaults to check (read-only) when the document is run by hand."
        ),
        default="check",
        allowed_values=ACTIONS,
        accepted_form="one of " + ", ".join(ACTIONS),
    ),
    DocumentParameter(
        name=REGISTRIES,
        description=(
            "Comma-separated ECR registry hosts: "
            "<account>.dkr.ecr[-fips].<region>.<partition domain> (dual-stack: dkr-ecr[-fips]...on.aws), "
            "public.ecr.aws or ecr-public.aws.com."
        ),
        allowed_pattern=REGISTRIES_PATTERN,
        accepted_form=(
            f"1 to {MAX_REGISTRIES} comma-separated hosts of the form "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com, 123456789012.dkr-ecr.eu-west-1.on.aws, "
            "public.ecr.aws or ecr-public.aws.com"
        ),
    ),
    DocumentParameter(
        name=USERS,
        description=(
            "auto (root, the docker group, users of rootless container clients) or comma-separated "
            "user names."
        ),
        default=AUTO_USERS,
        allowed_pattern=USERS_PATTERN,
        accepted_form=f"'auto' or 1 to {MAX_USERS} comma-separated POSIX user names",
    ),
    DocumentParameter(
        name=HELPER_VERSION,
        description="Credential-helper version for the release-binary install.",
        default=DEFAULT_HELPER_VERSION,
        allowed_pattern=HELPER_VERSION_PATTERN,
        accepted_form="a release version X.Y.Z such as " + DEFAULT_HELPER_VERSION,
    ),
    DocumentParameter(
        name=RELEASE_BASE_URL,
        description=(
            "Base URL of the credential-helper release binaries and their .sha256 "
            "files (<base>/<version>/linux-<arch>/docker-credential-ecr-login)."
        ),
        default=DEFAULT_RELEASE_BASE_URL,
        allowed_pattern=RELEASE_BASE_URL_PATTERN,
        accepted_form="an https:// URL without query, fragment or credentials",
    ),
    DocumentParameter(
        name=KEEP_USER_DOCKER_LOGIN,
        description=(
            "true: helper also sets AWS_ECR_IGNORE_CREDS_STORAGE=true in /etc/environment, so that "
            "users' own docker login to helper-managed registries succeeds (helper 0.9.0+)."
        ),
        default="false",
        allowed_values=BOOLEAN_VALUES,
        accepted_form="true or false",
    ),
)
PARAMETERS_BY_NAME: Final = {parameter.name: parameter for parameter in DOCUMENT_PARAMETERS}

# --- agent result line (docs/reference/contract.md, "The agent's result line") ---
RESULT_SCHEMA: Final = 1
Outcome = Literal["changed", "unchanged", "skipped", "failed"]
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)
# shadowed: a client reads a token the agent does not keep fresh before the file (or helper) that
# holds the fresh one (docs/how-it-works/agent.md, "Which file each client reads").
RegistryState = Literal["helper", "logged_in", "stale_auth", "none", "helper_unavailable", "shadowed"]
REGISTRY_STATES: Final[tuple[RegistryState, ...]] = get_args(RegistryState)
RESULT_LINE_MAX_BYTES: Final = 2000

# --- runner report (docs/reference/contract.md, "The report") ---
InstanceStatus = Literal["succeeded", "failed", "unreachable", "skipped", "pending"]
INSTANCE_STATUSES: Final[tuple[InstanceStatus, ...]] = get_args(InstanceStatus)
NotifyPolicy = Literal["failures", "always", "never"]
NOTIFY_POLICIES: Final[tuple[NotifyPolicy, ...]] = get_args(NotifyPolicy)

# --- what started a run (the report's and the event's ``source``) ---
# The schedule marks its invocations; manual ones carry no source. A run of instance events
# (docs/how-it-works/new-instances.md) says which kind named its instances: an instance entering `running`,
# the target tag gained, or both kinds in one batch.
Source = Literal["schedule", "manual", "instance_running", "tag_change", "instance_events"]
SOURCES: Final[tuple[Source, ...]] = get_args(Source)
SOURCE_SCHEDULE: Final[Source] = "schedule"
SOURCE_MANUAL: Final[Source] = "manual"
SOURCE_INSTANCE_RUNNING: Final[Source] = "instance_running"
SOURCE_TAG_CHANGE: Final[Source] = "tag_change"
SOURCE_INSTANCE_EVENTS: Final[Source] = "instance_events"
SCHEDULED_EVENT: Final = {"source": SOURCE_SCHEDULE}
# Runs of instance events are for the stack's own account and region: its rules saw the events.
INSTANCE_EVENT_SOURCES: Final[tuple[Source, ...]] = (
    SOURCE_INSTANCE_RUNNING,
    SOURCE_TAG_CHANGE,
    SOURCE_INSTANCE_EVENTS,
)

# --- organization scale (docs/how-it-works/organizations.md): the report's ``targets``, one per pair ---
TargetStatus = Literal["reached", "unreachable"]
TARGET_STATUSES: Final[tuple[TargetStatus, ...]] = get_args(TargetStatus)

# --- the EventBridge events that name new instances (AWS's names; the rules and the runner's parser) ---
EC2_EVENT_SOURCE: Final = "aws.ec2"
STATE_CHANGE_DETAIL_TYPE: Final = "EC2 Instance State-change Notification"
TAG_EVENT_SOURCE: Final = "aws.tag"
TAG_CHANGE_DETAIL_TYPE: Final = "Tag Change on Resource"


def instance_running_pattern() -> dict[str, Any]:
    """EventBridge pattern: any instance entering ``running`` (the event carries no tags)."""
    return {
        "source": [EC2_EVENT_SOURCE],
        "detail-type": [STATE_CHANGE_DETAIL_TYPE],
        "detail": {"state": ["running"]},
    }


def tag_gained_pattern(tag_key: str, tag_values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """EventBridge pattern: an EC2 instance whose target tag changed and now holds an accepted value.

    ``detail.tags`` holds the tags after the change, so a removed tag or another value does
    not match; ``changed-tag-keys`` leaves out changes of other tags on an already tagged instance."""
    return {
        "source": [TAG_EVENT_SOURCE],
        "detail-type": [TAG_CHANGE_DETAIL_TYPE],
        "detail": {
            "service": ["ec2"],
            "resource-type": ["instance"],
            "changed-tag-keys": [tag_key],
            "tags": {tag_key: list(tag_values)},
        },
    }


# --- metrics (Powertools EMF; the stack's alarm and dashboard read these) ---
METRIC_NAMESPACE: Final = "EcrFleetAuth"
# Every metric's service dimension is the stack's name (the runner's STACK_NAME), so two stacks
# in one region and namespace never feed each other's alarms. METRIC_SERVICE is Powertools'
# service name for the runner's logs and traces (and its metrics outside a stack).
METRIC_SERVICE_DIMENSION: Final = "service"
METRIC_SERVICE: Final = "ecr-fleet-auth"
METRIC_ACTION_DIMENSION: Final = "action"
# Organization mode logs each account's instance counts as one record per account (no metric per
# account: their cost grows with the organization); the dashboard's per-account widgets are Logs
# Insights queries over these records (``ACCOUNT_REPORT_FIELD``: account_id, run_id, action, counts).
ACCOUNT_REPORT_LOG_MESSAGE: Final = "account report"
ACCOUNT_REPORT_FIELD: Final = "account_report"


def status_metric_name(status: str) -> str:
    """Count of instances that ended a run in ``status``, e.g. ``InstancesFailed``."""
    if status not in INSTANCE_STATUSES:
        raise ValueError(f"unknown instance status {status!r}")
    return "Instances" + status.capitalize()


RUN_DURATION_METRIC: Final = "RunDurationSeconds"
# 1 for a run that stopped before it could report per instance (``error`` in its report), else 0.
RUNS_FAILED_METRIC: Final = "RunsFailed"
# An organization's run: the (account, region) pairs it could not reach (its report's ``targets``
# with status unreachable), 0 or more; dimension service only. The stack's TargetsUnreachable
# alarm reads it.
TARGETS_UNREACHABLE_METRIC: Final = "TargetsUnreachable"
# Records of instance events the runner could not act on (not an instance event, or from an account or
# region the stack does not cover); dimension service only. They go back to SQS, then to the dead letters.
INSTANCE_EVENTS_REJECTED_METRIC: Final = "InstanceEventsRejected"
# Events the runner rejected (the caller's error; dimension service only). The stack's
# function-error alarm subtracts them, so a mistyped console event does not page anyone.
EVENTS_REJECTED_METRIC: Final = "EventsRejected"
# The message of the runner's one structured log record per run (the dashboard's query reads it).
RUN_REPORT_LOG_MESSAGE: Final = "run report"
# Instances whose SSM Compliance this run could not write (refused, or no time left); dimensions
# service and action (beside the run's counts), 0 when every write went through.
COMPLIANCE_NOT_WRITTEN_METRIC: Final = "ComplianceNotWritten"


# --- SSM Compliance (docs/operating/compliance.md): the runner writes each instance's state there ---
COMPLIANCE_TYPE_PREFIX: Final = "Custom:"
# PutComplianceItems' ComplianceTypeName: at most 100 characters, "Custom:" then [A-Za-z0-9_-] and \w+.
_COMPLIANCE_NAME_CHARS: Final = 100 - len(COMPLIANCE_TYPE_PREFIX)


def compliance_type(deployment_name: str) -> str:
    """The compliance type a deployment writes, ``Custom:<its name>`` (``Custom:EcrFleetAuth`` for the
    default stack): its own, so two deployments covering one instance never overwrite each other's items.
    A character the type's pattern refuses after the first (``-``) becomes ``_``; a one-letter name
    gets a ``_`` (the pattern wants two characters at least); a name longer than the type allows keeps
    its start and ``_`` and 8 hex digits of the SHA-256 of the whole name, so two long names that share
    their start still get types of their own."""
    name = deployment_name[:1] + re.sub(r"[^A-Za-z0-9_]", "_", deployment_name[1:])
    name = name if len(name) >= 2 else name + "_"
    if len(name) > _COMPLIANCE_NAME_CHARS:
        digest = hashlib.sha256(deployment_name.encode()).hexdigest()[:8]
        name = f"{name[: _COMPLIANCE_NAME_CHARS - 9]}_{digest}"
    return COMPLIANCE_TYPE_PREFIX + name


# --- agent documents named by their content (each member account's: ``<prefix>-<sha8 of the content>``)
# A content change is a new document, never a new version; every version shares the prefix, so the
# runner finds a member pair's documents by it (ListDocuments' Name filter takes a prefix).
CONTENT_DIGEST_CHARS: Final = 8


def content_version_name(prefix: str, sha256_hex: str) -> str:
    """The name of the document of this content: ``<prefix>-<first 8 hex of its SHA-256>``."""
    return f"{prefix}-{sha256_hex[:CONTENT_DIGEST_CHARS]}"


def content_version_family(name: str) -> str:
    """What every content version of the document named ``name`` starts with (``<prefix>-``)."""
    return name[:-CONTENT_DIGEST_CHARS]


def is_content_version(name: str, family: str) -> bool:
    """Whether ``name`` is a content version of ``family`` (``<prefix>-`` and 8 hex digits)."""
    return name.startswith(family) and re.fullmatch(r"[0-9a-f]{8}", name[len(family) :]) is not None


# --- the new-instance claim table (DynamoDB; the stack creates it, ``claims`` writes it) ---
# The partition key: one claim per instance, ``<account>/<region>/<instance id>`` (a run of instance events
# covers every member account and region in an organization; an instance is known by all three).
CLAIM_KEY: Final = "instance"
CLAIM_TTL_ATTRIBUTE: Final = "expires_at"  # epoch seconds; DynamoDB's TTL attribute


# --- an organization's run beyond one invocation (docs/how-it-works/organizations.md)
# The state machine's name is fixed by the stack's name, so the runner knows its executions' ARNs without
# being told (its environment stays the single-account stack's): ``<stackName>-OrganizationRun``, cut and
# marked with a digest of the whole name when that is longer than Step Functions allows.
STATE_MACHINE_SUFFIX: Final = "-OrganizationRun"
MAX_STATE_MACHINE_NAME: Final = 80  # CreateStateMachine: name, 1-80 characters
# The field that marks an event as a step of that state machine, and its steps.
STEP_FIELD: Final = "state_machine_step"
Step = Literal["plan", "child", "merge"]
STEPS: Final[tuple[Step, ...]] = get_args(Step)


def state_machine_name(stack_name: str) -> str:
    """The organization's state machine of the stack (or construct) named ``stack_name``."""
    name = stack_name + STATE_MACHINE_SUFFIX
    if len(name) <= MAX_STATE_MACHINE_NAME:
        return name
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:CONTENT_DIGEST_CHARS]
    keep = MAX_STATE_MACHINE_NAME - len(STATE_MACHINE_SUFFIX) - CONTENT_DIGEST_CHARS - 1
    return f"{stack_name[:keep]}-{digest}{STATE_MACHINE_SUFFIX}"
