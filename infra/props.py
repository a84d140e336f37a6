"""The props of ``EcrFleetAuth``, generated from the settings table by ``make props``: do not edit.

Each prop of a setting is its row of ``SETTINGS`` in ``ecr_fleet_auth/shared/settings.py``: its
name in snake_case, default, accepted form and meaning (the type is ``DeploymentConfig``'s). A
prop left out takes its default; every value is validated when the construct is created. The
props after them hand the construct what the app already has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypedDict

from ecr_fleet_auth.shared import contract

from .resource_props import ImportedOnUse

if TYPE_CHECKING:
    from aws_cdk import aws_iam, aws_kms, aws_sns
else:
    # The CDK's modules are imported when an annotation naming them is evaluated
    # (typing.get_type_hints), not with this module: the docs build reads it without the CDK.
    aws_iam = ImportedOnUse("aws_cdk.aws_iam")
    aws_kms = ImportedOnUse("aws_cdk.aws_kms")
    aws_sns = ImportedOnUse("aws_cdk.aws_sns")


class EcrFleetAuthProps(TypedDict, total=False):
    """Keyword arguments of ``EcrFleetAuth(scope, id, **props)``; every one is optional."""

    target_tag_key: str
    """Tag key that selects the instances to manage.

    Default: `'ecr-fleet-auth'`; accepted: a tag key (1-128 characters, not aws:...); cdk.json:
    `targetTagKey`."""

    target_tag_values: Sequence[str]
    """Accepted values of the target tag.

    Default: `['enabled']`; accepted: a list of 1-5 tag values (no commas, up to 256 characters);
    cdk.json: `targetTagValues`."""

    action: contract.Action
    """What scheduled runs do (the document's own default is `check`: see The document's own defaults
    (docs/reference/configuration.md)).

    Default: `'refresh'`; accepted: one of refresh, helper, check; cdk.json: `action`."""

    schedule_expression: str
    """When scheduled runs happen (EventBridge Scheduler).

    Default: `'rate(6 hours)'`; accepted: rate(N minutes|hours|days), cron(<6 fields>) or
    at(yyyy-mm-ddThh:mm:ss); cdk.json: `scheduleExpression`."""

    schedule_time_zone: str
    """Time zone of `cron()` and `at()` expressions.

    Default: `'UTC'`; accepted: an IANA time zone such as Europe/Paris; cdk.json: `scheduleTimeZone`."""

    schedule_enabled: bool
    """`false` deploys the schedule disabled (manual runs only).

    Default: `True`; accepted: true or false; cdk.json: `scheduleEnabled`."""

    registries: Sequence[str]
    """ECR registries to authenticate; empty means the account's own registry in each stack's region.

    Default: `[]`; accepted: a list of up to 20 hosts of the form
    123456789012.dkr.ecr.eu-west-1.amazonaws.com (dual-stack: 123456789012.dkr-ecr.eu-west-1.on.aws),
    public.ecr.aws or ecr-public.aws.com (empty: the account's own registry); cdk.json: `registries`."""

    users: Sequence[str]
    """Whose container clients' credentials to manage: `auto` = root, members of the `docker` group and users
    of rootless clients.

    Default: `['auto']`; accepted: 'auto' or 1 to 50 comma-separated POSIX user names; cdk.json: `users`."""

    helper_version: str
    """Credential-helper version for the release-binary install (used only where no package manager provides
    it): the agent fetches `<releaseBaseUrl>/<version>/linux-<amd64\\|arm64>/docker-credential-ecr-login`
    and installs it only if it matches `<same URL>.sha256`. The release bucket publishes versioned paths
    only, so there is no `latest`; the default is the newest release (February 2026).

    Default: `'0.12.0'`; accepted: a release version X.Y.Z such as 0.12.0; cdk.json: `helperVersion`."""

    release_base_url: str
    """Where release binaries and their `.sha256` files are fetched
    (`<base>/<version>/linux-<arch>/docker-credential-ecr-login`); point it at a mirror.

    Default: `'https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com'`; accepted: an
    https:// URL without query, fragment or credentials; cdk.json: `releaseBaseUrl`."""

    keep_user_docker_login: bool
    """With the helper action: users' own `docker login` to the registries it manages keeps succeeding (a
    no-op: pulls use the helper). The agent sets `AWS_ECR_IGNORE_CREDS_STORAGE=true` in `/etc/environment`
    (login sessions, ssh, su, cron) and requires helper 0.9.0+, which honours it; services started by
    systemd need it in their unit. Off: such a login fails (`not implemented`), as the helper's README
    says. See The agent (docs/how-it-works/agent.md).

    Default: `False`; accepted: true or false; cdk.json: `keepUserDockerLogin`."""

    max_concurrency: str
    """Run Command rate control, promised for the whole run (not per batch).

    Default: `'10%'`; accepted: a number of instances or a percentage (1%-100%); cdk.json:
    `maxConcurrency`."""

    max_errors: str
    """Errors after which Run Command stops sending to more instances.

    Default: `'10%'`; accepted: a number of errors (0 or more) or a percentage (0%-100%); cdk.json:
    `maxErrors`."""

    delivery_timeout_seconds: int
    """How long Run Command tries to deliver to an instance.

    Default: `600`; accepted: a whole number from 30 to 2592000; cdk.json: `deliveryTimeoutSeconds`."""

    execution_timeout_seconds: int
    """How long the agent may run on an instance (the document step's timeout).

    Default: `600`; accepted: a whole number from 30 to 3600; cdk.json: `executionTimeoutSeconds`."""

    wait_seconds: int
    """How long a run waits for results; instances still running are reported `pending`.

    Default: `600`; accepted: a whole number from 0 to 840; cdk.json: `waitSeconds`."""

    notification_email: str
    """Subscribes this address to the notification topic (confirm the e-mail AWS sends).

    Default: `''`; accepted: an e-mail address, or empty for none; cdk.json: `notificationEmail`."""

    chat_channel: str
    """Also sends the topic's messages (run reports, alarms) to this Slack or Microsoft Teams channel through
    AWS Chatbot; the workspace or team must be authorized in the Chatbot console first. Commercial Regions
    only (Chatbot has no China or GovCloud Region: synth refuses the setting there). The channel gets
    notifications only: its guardrail policy denies every AWS action (see Notifications
    (docs/operating/notifications.md)).

    Default: `''`; accepted: slack:<workspace id>/<channel id>, teams:<tenant id>/<team id>/<channel id>
    (the channel id URL-encoded as in the channel's link, 19%3a...%40thread.tacv2), or empty for none;
    cdk.json: `chatChannel`."""

    notify_policy: contract.NotifyPolicy
    """When the runner publishes its report to the topic.

    Default: `'failures'`; accepted: one of failures, always, never; cdk.json: `notifyPolicy`."""

    log_retention_days: int
    """Retention of the runner's and the Run Command output log groups.

    Default: `30`; accepted: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
    1827, 2192, 2557, 2922, 3288, 3653; cdk.json: `logRetentionDays`."""

    reserved_concurrency: int
    """Concurrency reserved for the runner; `0` reserves none, so the stack deploys on any account (see
    Reserved concurrency (docs/reference/configuration.md)).

    Default: `0`; accepted: a whole number from 0 (none) to 1000; cdk.json: `reservedConcurrency`."""

    new_instances: bool
    """Covers a tagged instance as soon as it enters `running` or gains the target tag, without waiting for
    the schedule (see New instances (docs/how-it-works/new-instances.md)); `false` deploys no rules and no
    queue.

    Default: `True`; accepted: true or false; cdk.json: `newInstances`."""

    new_instance_action: contract.Action | Literal[""]
    """What runs of instance events do; empty: the same as scheduled runs (`action`).

    Default: `''`; accepted: one of refresh, helper, check, or empty for `action`; cdk.json:
    `newInstanceAction`."""

    new_instance_max_concurrency: str
    """Run Command rate control of runs of instance events, over each run's instances (`maxErrors` still
    applies); `50`: a burst of new instances runs 50 at a time, one SendCommand's worth (see Latency and
    limits (docs/how-it-works/new-instances.md)); empty: the same as `maxConcurrency`.

    Default: `'50'`; accepted: a number of instances or a percentage (1%-100%), or empty for
    `maxConcurrency`; cdk.json: `newInstanceMaxConcurrency`."""

    new_instance_readiness_seconds: int
    """How long after its event a new instance may take to come online in SSM; one still not `Online` then is
    reported `unreachable` / `not_online_in_time` (once).

    Default: `900`; accepted: a whole number from 60 to 3600; cdk.json: `newInstanceReadinessSeconds`."""

    organizational_unit_ids: Sequence[str]
    """Organization units whose accounts the runner covers, through a StackSet with automatic deployment (see
    Organizations (docs/how-it-works/organizations.md)); empty: the stack covers its own account and
    region, as a single-account deployment.

    Default: `[]`; accepted: a list of organization root or OU ids (r-..., ou-...-...); empty: this
    account only; cdk.json: `organizationalUnitIds`."""

    member_accounts: Sequence[str]
    """Narrows `organizationalUnitIds` to these accounts (StackSets' `INTERSECTION`); accounts added to the
    units later are then not covered automatically.

    Default: `[]`; accepted: a list of 12-digit account ids (empty: every account in the units); cdk.json:
    `memberAccounts`."""

    member_regions: Sequence[str]
    """Regions of the member accounts the StackSet deploys to and the runner covers.

    Default: `[]`; accepted: a list of region names such as eu-west-1 (empty: the stack's region);
    cdk.json: `memberRegions`."""

    member_role_name: str
    """Name of the role the StackSet creates in each member account; only the runner can assume it.

    Default: `'EcrFleetAuthMember'`; accepted: an IAM role name (1-64 of letters, digits, +=,.@_-);
    cdk.json: `memberRoleName`."""

    organization_id: str
    """The organization's id (`aws organizations describe-organization --query Organization.Id`): only its
    accounts may forward their new instances' events to this stack (needed with `organizationalUnitIds`
    and `newInstances`; see Member accounts (docs/how-it-works/new-instances.md)).

    Default: `''`; accepted: an organization id (o-...), or empty; cdk.json: `organizationId`."""

    stack_set_call_as: Literal["DELEGATED_ADMIN", "SELF"]
    """Whether the stack is deployed from a StackSets delegated administrator account (`DELEGATED_ADMIN`) or
    the organization's management account (`SELF`).

    Default: `'DELEGATED_ADMIN'`; accepted: one of DELEGATED_ADMIN, SELF; cdk.json: `stackSetCallAs`."""

    # What the app already has (not settings: no cdk.json key).

    name: str
    """The name this deployment goes by: the runner's metrics' `service` dimension (its alarms read only its
    own), the dashboard `<name>-<region>`, and in organization mode the StackSet `<name>-Members` and the
    member accounts' `<name>-Agent-...` document and `<name>-InstanceAccess` policy. Default: the stack's
    name, followed by `-<construct id>` unless the id is `Default`; the form of `stackName` (letters,
    digits, -)."""

    topic: aws_sns.ITopic
    """An existing SNS topic for the run reports and the alarms, instead of the encrypted topic the construct
    creates (then it creates no topic and no key). The runner may `sns:Publish` to it. CloudWatch alarms
    publish to it as the service `cloudwatch.amazonaws.com`: if it is encrypted, its key policy must allow
    that service `kms:Decrypt` and `kms:GenerateDataKey*` (the construct adds the statement to a key of
    the same app, not to an imported one)."""

    topic_key: aws_kms.IKey
    """The KMS key `topic` is encrypted with: the runner may `kms:GenerateDataKey*` and `kms:Decrypt` with it
    to publish. Only with `topic`. Default: the key the topic names (`master_key`: a topic of the same
    app, or imported with `Topic.from_topic_attributes(..., key_arn=...)`); a topic imported by its ARN
    alone names none, so give its key here if it is encrypted."""

    instance_roles: Sequence[aws_iam.IRole]
    """Instance roles to attach the instances' managed policy to (ECR tokens, pulls, Run Command output);
    they need `AmazonSSMManagedInstanceCore` too. Default: none (attach the policy,
    `EcrFleetAuth.instance_policy`, yourself)."""

    permissions_boundary: aws_iam.IManagedPolicy
    """A permissions boundary for every IAM role the construct creates (the runner's, the schedule's, the
    stack's shared AwsCustomResource provider's). Member accounts' roles in organization mode are created
    by the StackSet and do not get it."""

    tags: Mapping[str, str]
    """Tags for every taggable resource the construct creates (and the StackSet, which passes them to the
    member stacks' resources). Keys and values as AWS accepts them."""
