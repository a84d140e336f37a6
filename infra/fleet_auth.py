"""``EcrFleetAuth``: the whole of ecr-fleet-auth in one construct, composing the others (one per concern).

It goes into any stack beside other resources, and two go into one stack or app side by side:
every name it gives a resource starts with its ``name`` (the stack's name, followed by the
construct's id unless that is ``Default``), and everything else is named by CloudFormation.
The cdk-nag acknowledgments it needs are made on its own resources, each with its reason, so a
stack holding it stays clean under ``AwsSolutionsChecks``.
"""

from __future__ import annotations

import itertools
import json
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from aws_cdk import CfnOutput, RemovalPolicy, Stack, Tags, Token, aws_iam, aws_logs
from constructs import Construct, IConstruct

from ecr_fleet_auth.shared import contract, settings

from .claim_table import ClaimTable
from .config import TITLE, DeploymentConfig
from .console_events import AWS_CUSTOM_RESOURCE_PROVIDER_ID, ConsoleTestEvents
from .dashboard import RunnerDashboard
from .document.construct import AgentDocument
from .instance_access import InstanceAccessPolicy, own_registry
from .member_stack import forwarder_role_arns, member_document_name, stack_set_name
from .new_instances import NewInstanceTriggers
from .notifications import Notifications
from .organization_members import OrganizationMembers
from .organization_state_machine import OrganizationStateMachine
from .props import EcrFleetAuthProps
from .runner_function import RunnerFunction
from .schedule import RunnerSchedule

if TYPE_CHECKING:
    from typing_extensions import Unpack

# An id CDK leaves out of construct paths, logical ids and names: EcrFleetAuth(stack, "Default")
# builds exactly the resources the stack itself would.
DEFAULT_ID = "Default"


class EcrFleetAuth(Construct):
    """ecr-fleet-auth: the agent document, the runner Lambda and its schedule, the new-instance rules,
    the notifications and alarms, the dashboard and the instances' managed policy (and, in organization
    mode, the StackSet of the member accounts). ``props``: ``EcrFleetAuthProps``, each optional.

    Raises ``ecr_fleet_auth.shared.settings.SettingsError`` naming every bad prop and its accepted form,
    ``TypeError`` for a prop it does not know.
    """

    _created: ClassVar[weakref.WeakSet[EcrFleetAuth]] = weakref.WeakSet()
    # A WeakSet iterates in no fixed order: the order of creation names "the first" in a refusal.
    _creation_order: ClassVar[itertools.count[int]] = itertools.count()

    def __init__(self, scope: Construct, construct_id: str, **props: Unpack[EcrFleetAuthProps]) -> None:
        _check_prop_names(props)
        name, name_shown = _name(scope, construct_id, props.get("name"))
        problems = _resource_problems(props)
        try:
            config = DeploymentConfig.from_props(props, name=name, name_shown=name_shown)
        except settings.SettingsError as error:
            raise settings.SettingsError("\n".join([str(error), *problems])) from None
        if problems:
            raise settings.SettingsError("\n".join([f"{TITLE}:", *problems]))
        _check_not_taken(scope, config)
        _check_shared_provider(scope, props)
        super().__init__(scope, construct_id)
        self.name: str = name
        self.config = config
        self.export_prefix: str | None = None
        self._provider_boundary = props.get("permissions_boundary")
        self._provider_tags: Mapping[str, str] = dict(props.get("tags") or {})
        self._compose(config, props)
        self._created_at = next(EcrFleetAuth._creation_order)
        EcrFleetAuth._created.add(self)

    def _compose(self, config: DeploymentConfig, props: EcrFleetAuthProps) -> None:
        registries = list(config.registries) or [own_registry()]

        document = AgentDocument(
            self, "AgentDocument", execution_timeout_seconds=config.execution_timeout_seconds
        )
        command_output = aws_logs.LogGroup(
            self,
            "RunCommandOutput",
            retention=config.log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        notifications = Notifications(
            self,
            "Notifications",
            email=config.notification_email,
            chat_channel=config.chat_channel,
            topic=props.get("topic"),
            topic_key=props.get("topic_key"),
        )
        # Organization mode: a StackSet places the member template in every account of the units.
        organization = bool(config.organizational_unit_ids)
        # Where runs of instance events claim an instance before commanding it (new instances only).
        claims = ClaimTable(self, "NewInstanceClaims") if config.new_instances else None
        runner = RunnerFunction(
            self,
            "Runner",
            config=config,
            document=document,
            # An organization's runner gets `registries` as set: empty, each pair logs into its own
            # account's registry in its region (RunnerSettings.registries_for).
            registries=list(config.registries) if organization else registries,
            topic=notifications.topic,
            command_output=command_output,
            stack_set_name=stack_set_name(config.stack_name) if organization else "",
            member_document_name=member_document_name(config) if organization else "",
            claim_table_name=claims.table.table_name if claims is not None else "",
        )
        notifications.grant_publish(runner.role)
        triggers = None
        if claims is not None:
            triggers = NewInstanceTriggers(
                self,
                "NewInstances",
                function=runner.function,
                role=runner.role,
                tag_key=config.target_tag_key,
                tag_values=config.target_tag_values,
                topic=notifications.topic,
                claim_table=claims.table,
                # In an organization, member stacks forward their new instances' events here too.
                organization_id=config.organization_id if organization else "",
                forwarder_role_arns=forwarder_role_arns(self, config.stack_name) if organization else "",
            )
        organization_run = None
        if organization:
            member_events = triggers.member_event_bus if triggers is not None else None
            OrganizationMembers(
                self,
                "Members",
                config=config,
                registries=registries,
                runner_role=runner.role,
                command_output=command_output,
                central_event_bus_arn=member_events.event_bus_arn if member_events is not None else None,
            )
            # Beyond one invocation: the schedule starts the state machine, whose children are the runner.
            organization_run = OrganizationStateMachine(
                self,
                "OrganizationRun",
                name=config.stack_name,
                function=runner.function,
                runner_role=runner.role,
                retention_days=config.log_retention_days,
            )
            # The one bucket the state machine's steps may name (step_events refuses any other).
            runner.function.add_environment(
                settings.BY_KEY["runsBucketName"].env, organization_run.bucket.bucket_name
            )
        service = runner.metrics_service
        notifications.alarm_on_instances_left_broken(self, service=service)
        notifications.alarm_on_failed_runs(
            self,
            service=service,
            state_machine=organization_run.state_machine if organization_run is not None else None,
        )
        notifications.alarm_on_runner_errors(self, runner.function, service=service)
        if organization:
            notifications.alarm_on_unreachable_targets(self, service=service)
        RunnerSchedule(
            self,
            "Schedule",
            function=runner.function,
            state_machine=organization_run.state_machine if organization_run is not None else None,
            expression=config.schedule_expression,
            time_zone=config.schedule_time_zone,
            enabled=config.schedule_enabled,
        )
        ConsoleTestEvents(self, "ConsoleTestEvents", function=runner.function)
        dashboard = RunnerDashboard(
            self,
            "Dashboard",
            name=config.stack_name,
            runner_logs=runner.log_group,
            service=service,
            by_accounts=organization,
        )
        access = InstanceAccessPolicy(
            self, "InstanceAccess", registries=registries, command_output_arn=command_output.log_group_arn
        )
        for role in props.get("instance_roles", ()):
            access.policy.attach_to_role(role)

        self.runner = runner
        self.document = document
        self.instance_policy = access.policy
        self.topic = notifications.topic
        self.command_output = command_output
        self.dashboard = dashboard.dashboard
        self.organization_run = organization_run
        self._apply_to_everything_created(props.get("permissions_boundary"), props.get("tags") or {})

    def add_outputs(self, *, export_prefix: str | None = None) -> None:
        """Stack outputs naming what people look for (the function to invoke, the document, the policy
        to attach, ...); with ``export_prefix`` each is exported as ``<export_prefix>-<output>``.
        Export names are one per account and region: a prefix another ``EcrFleetAuth`` of the app
        already exports under, in the same stack or a stack of the same account and region, is refused
        (``SettingsError``)."""
        if export_prefix is not None:
            _check_export_prefix_free(self, export_prefix)
            self.export_prefix = export_prefix
        outputs = {
            "RunnerFunctionName": (self.runner.function.function_name, "Invoke this for a manual run"),
            "DocumentName": (self.document.document_name, "SSM Command document that runs the agent"),
            "InstancePolicyArn": (self.instance_policy.managed_policy_arn, "Attach to your instance roles"),
            "RunCommandOutputLogGroup": (self.command_output.log_group_name, "Full agent output per command"),
            "NotificationTopicArn": (self.topic.topic_arn, "Run reports and alarms"),
            "DashboardName": (self.dashboard.dashboard_name, "Outcomes, durations, latest failures"),
        }
        if self.organization_run is not None:
            outputs["OrganizationRunStateMachineArn"] = (
                self.organization_run.state_machine.state_machine_arn,
                "Start an execution for an organization-wide run of any size (make invoke does)",
            )
        for name, (value, description) in outputs.items():
            CfnOutput(
                self,
                name,
                value=value,
                description=description,
                export_name=None if export_prefix is None else f"{export_prefix}-{name}",
            )

    def _apply_to_everything_created(self, boundary: Any, tags: Mapping[str, str]) -> None:
        """The permissions boundary on every role, the tags on every taggable resource: the construct's
        own, and the stack's shared AwsCustomResource provider (the console events' registry uses it)."""
        scopes: list[IConstruct] = [self]
        provider = Stack.of(self).node.try_find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
        if provider is not None:
            scopes.append(provider)
        for scope in scopes:
            if boundary is not None:
                aws_iam.PermissionsBoundary.of(scope).apply(boundary)
            for key, value in tags.items():
                Tags.of(scope).add(key, value)


def _check_prop_names(props: Mapping[str, object]) -> None:
    unknown = sorted(set(props) - set(EcrFleetAuthProps.__optional_keys__))
    if unknown:
        known = ", ".join(sorted(EcrFleetAuthProps.__optional_keys__))
        raise TypeError(f"EcrFleetAuth got unknown props: {', '.join(unknown)} (its props: {known})")


def _name(scope: Construct, construct_id: str, given: str | None) -> tuple[str, str]:
    """The construct's name and how an error names it: ``given``, or the stack's name followed by
    the construct's path below the stack (``Default`` ids left out, as CDK leaves them out)."""
    if given is not None:
        return given, "name"
    stack = Stack.of(scope)
    if Token.is_unresolved(stack.stack_name):
        raise settings.SettingsError(f"{TITLE}:\n  name: the stack's name is not known at synth; pass name=")
    below = scope.node.path[len(stack.node.path) :].strip("/")
    ids = [*(below.split("/") if below else []), construct_id]
    name = "-".join([stack.stack_name, *(part for part in ids if part != DEFAULT_ID)])
    return name, "name (by default the stack's name and the construct's id)"


def _resource_problems(props: EcrFleetAuthProps) -> list[str]:
    """What is wrong with the resources handed in (one line each, as the settings' problems)."""
    problems = []
    for prop, (attribute, expected) in _RESOURCE_KINDS.items():
        value = props.get(prop)
        if value is not None and (isinstance(value, str) or not hasattr(value, attribute)):
            problems.append(f"  {prop}: {_shown(value)} is not {expected}")
    if props.get("topic_key") is not None and props.get("topic") is None:
        problems.append("  topic_key: given without topic (it is the key of the topic handed in)")
    roles = props.get("instance_roles", ())
    if isinstance(roles, str) or not isinstance(roles, Sequence):
        problems.append("  instance_roles: not a sequence of roles (a list, even of one)")
    else:
        for role in roles:
            if isinstance(role, str) or not hasattr(role, "role_arn"):
                problems.append(
                    f"  instance_roles: {_shown(role)} is not a role; pass an aws_iam.IRole "
                    "(aws_iam.Role.from_role_name(scope, id, name) for an existing one)"
                )
    for key, value in (props.get("tags") or {}).items():
        if not isinstance(key, str) or not contract.matches(settings.TAG_KEY_PATTERN, key):
            problems.append(
                f"  tags: key {key!r} not accepted; expected a tag key (1-128 characters, not aws:...)"
            )
        elif not isinstance(value, str) or not contract.matches(settings.TAG_VALUE_PATTERN, value):
            problems.append(
                f"  tags: {key}={value!r} not accepted; expected a tag value (up to 256 characters)"
            )
    return problems


def _same_place(one: Stack, other: Stack) -> bool:
    """Whether two stacks deploy to the same account and region, as far as synth knows: the same
    values, or both left to the CLI's environment (the same token)."""
    return one is other or (one.account == other.account and one.region == other.region)


def _others(scope: IConstruct) -> list[EcrFleetAuth]:
    root = scope.node.root
    others = [other for other in EcrFleetAuth._created if other.node.root is root and other is not scope]
    return sorted(others, key=lambda other: other._created_at)


# The props that take a CDK object: the attribute every such object has, and what to pass.
_RESOURCE_KINDS = {
    "topic": (
        "topic_arn",
        "a topic; pass an aws_sns.ITopic (aws_sns.Topic.from_topic_arn(scope, id, arn) for an existing one)",
    ),
    "topic_key": (
        "key_arn",
        "a KMS key; pass an aws_kms.IKey (aws_kms.Key.from_key_arn(scope, id, arn) for an existing one)",
    ),
    "permissions_boundary": (
        "managed_policy_arn",
        "a managed policy; pass an aws_iam.IManagedPolicy "
        "(aws_iam.ManagedPolicy.from_managed_policy_name(scope, id, name) for an existing one)",
    ),
}


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str | int | float) else f"a {type(value).__name__}"


def _check_not_taken(scope: Construct, config: DeploymentConfig) -> None:
    """Two constructs of one app must not give one physical name twice: the same ``name`` in one
    stack, or in two stacks of the same account and region (the names it gives are per account and
    region: dashboard, document, ...), or the same member role in two organization deployments."""
    stack = Stack.of(scope)
    for other in _others(scope):
        if other.name == config.stack_name and _same_place(Stack.of(other), stack):
            where = "in a stack" if Stack.of(other) is stack else "in one account and region"
            raise settings.SettingsError(
                f"{TITLE}:\n  name={config.stack_name!r}: already the name of {other.node.path}; give each "
                f"EcrFleetAuth {where} its own"
            )
        both_organizations = config.organizational_unit_ids and other.config.organizational_unit_ids
        if both_organizations and other.config.member_role_name == config.member_role_name:
            raise settings.SettingsError(
                f"{TITLE}:\n  member_role_name={config.member_role_name!r}: already the member role of "
                f"{other.node.path}; give each organization deployment its own"
            )


def _check_export_prefix_free(fleet: EcrFleetAuth, export_prefix: str) -> None:
    stack = Stack.of(fleet)
    for other in _others(fleet):
        if other.export_prefix == export_prefix and _same_place(Stack.of(other), stack):
            raise settings.SettingsError(
                f"{TITLE}:\n  export_prefix={export_prefix!r}: already the prefix of {other.node.path}'s "
                "exports (export names are one per account and region); give each add_outputs its own"
            )


def _resolved(stack: Stack, value: Any) -> str:
    return json.dumps(stack.resolve(value), sort_keys=True)


def _check_shared_provider(scope: Construct, props: EcrFleetAuthProps) -> None:
    """Every ``EcrFleetAuth`` of a stack shares one role with the rest of the stack: the
    AwsCustomResource provider's (aws-cdk-lib makes it a singleton). It gets the boundary of any that
    gives one and the tags of all; two that want different ones for it are refused, not the last one
    silently winning."""
    stack = Stack.of(scope)
    boundary, tags = props.get("permissions_boundary"), props.get("tags") or {}
    for other in _others(scope):
        if Stack.of(other) is not stack:
            continue
        theirs, their_tags = other._provider_boundary, other._provider_tags
        if boundary is not None and theirs is not None:
            mine_arn, their_arn = (_resolved(stack, b.managed_policy_arn) for b in (boundary, theirs))
            if mine_arn != their_arn:
                raise settings.SettingsError(
                    f"{TITLE}:\n  permissions_boundary: {other.node.path} sets another boundary on the "
                    "stack's shared AwsCustomResource provider role, and a role has one boundary; give "
                    "every EcrFleetAuth of a stack the same boundary (or put them in separate stacks)"
                )
        for key, value in tags.items():
            if key in their_tags and their_tags[key] != value:
                raise settings.SettingsError(
                    f"{TITLE}:\n  tags: {key}={value!r}, but {other.node.path} tags the stack's shared "
                    f"AwsCustomResource provider {key}={their_tags[key]!r}; give every EcrFleetAuth of a "
                    "stack the same value for a tag key (or put them in separate stacks)"
                )
