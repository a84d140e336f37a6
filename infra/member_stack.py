"""Organization mode: the member template (the StackSet that places it is ``organization_members.py``).

The member template (``MemberStack``) is what one (account, region) needs for a run there: the
agent document (the central one's content, under a name the runner can compute), the instances'
managed policy, and the execution role only the central runner may assume, with the same
SendCommand scoping as the runner's own role. It is a CDK stack of its own, synthesized in a
separate app (no bootstrap in member accounts: ``BootstraplessSynthesizer``; cdk-nag checks it
like the central stack), and handed to an ``AWS::CloudFormation::StackSet`` with service-managed
permissions and automatic deployment (``OrganizationMembers``), which the central stack holds.

IAM is global and a StackSet places one stack per account *and region*: the role and the managed
policy are created only by the stack in one region of each account (``IamRegion``: the first of
``memberRegions``, else the central region), and their permissions cover every region.

With ``newInstances`` each member stack also forwards its instances' ``running`` and target-tag
events, bus to bus, to the central stack's ``MemberEvents`` bus (``CentralEventBusArn``), through a
role of its own (``events.amazonaws.com`` for this account only; ``events:PutEvents`` on that bus
only) under the path ``forwarder_role_path``, which the central bus's policy names: EventBridge
needs a role for a rule whose target is an event bus in another account or region (EventBridge User
Guide, "Sending and receiving events between AWS accounts"; "Sending and receiving events between
AWS Regions"). Not in the central account and region, whose own rules see those events already.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import (
    ArnFormat,
    Aws,
    CfnCondition,
    CfnParameter,
    Fn,
    RemovalPolicy,
    Stack,
    aws_events,
    aws_iam,
    aws_logs,
)
from constructs import Construct

from ecr_fleet_auth.shared import contract, settings

from .config import DeploymentConfig
from .document.construct import AgentDocument, agent_document_content, content_named
from .instance_access import InstanceAccessPolicy
from .nag import acknowledge, add_checks, wildcard_arn_finding
from .runner_function import run_command_statements

# CreateStackSet/UpdateStackSet: TemplateBody holds at most 51,200 bytes, TemplateURL (S3) 1 MB.
TEMPLATE_BODY_LIMIT = 51_200
# The member stack's construct id in its own app (its template's name in that app's assembly).
MEMBER_STACK_ID = "Members"


def stack_set_name(stack_name: str) -> str:
    """The organization's StackSet (the runner's STACK_SET_NAME)."""
    return f"{stack_name}-Members"


def member_document_name(config: DeploymentConfig) -> str:
    """The agent document's name in every member account and region (the runner's
    MEMBER_DOCUMENT_NAME): ``<stackName>-Agent-<sha8 of its content>``."""
    return content_named(
        _document_name_prefix(config.stack_name), agent_document_content(config.execution_timeout_seconds)
    )


def _document_name_prefix(stack_name: str) -> str:
    return f"{stack_name}-Agent"


def forwarder_role_path(stack_name: str) -> str:
    """The IAM path of every member stack's event-forwarding role (the central bus policy names it)."""
    return f"/ecr-fleet-auth/{stack_name}/"


def forwarder_role_arns(scope: Construct, stack_name: str) -> str:
    """What the central bus's policy lets put events: the forwarding roles of any member account."""
    return Stack.of(scope).format_arn(
        service="iam",
        region="",
        account="*",
        resource="role",
        resource_name=forwarder_role_path(stack_name).lstrip("/") + "*",
    )


def iam_region(config: DeploymentConfig) -> str:
    """The region whose member stack creates the account's IAM role and policy."""
    return config.member_regions[0] if config.member_regions else Aws.REGION


@dataclass(frozen=True)
class _MemberParameters:
    """The member template's parameters (values the StackSet passes from the central stack)."""

    central_account: str
    central_region: str
    runner_role_arn: str
    output_group: str
    iam_region: str
    central_event_bus_arn: str | None  # with newInstances: where member events are forwarded


class MemberStack(Stack):
    """One (account, region) of the organization. Its parameters come from the StackSet."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, registries: list[str]
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=cdk.BootstraplessSynthesizer(),
            analytics_reporting=False,
            description=f"ecr-fleet-auth member of {config.stack_name}: agent document, instance policy, "
            "execution role for the central runner",
        )
        parameters = self._parameters(config)
        document = AgentDocument(
            self,
            "AgentDocument",
            execution_timeout_seconds=config.execution_timeout_seconds,
            name_prefix=_document_name_prefix(config.stack_name),
        )
        # Resources only outside the central account and region, which has them already (the central
        # account may be in a target OU, and its other regions are member regions then).
        self.outside_central = CfnCondition(
            self,
            "OutsideTheCentralStack",
            expression=Fn.condition_not(
                Fn.condition_and(
                    Fn.condition_equals(Aws.ACCOUNT_ID, parameters.central_account),
                    Fn.condition_equals(Aws.REGION, parameters.central_region),
                )
            ),
        )
        self._output_group(config, parameters)
        if parameters.central_event_bus_arn is not None:
            self._forward_instance_events(config, parameters.central_event_bus_arn)
        # IAM is global: only the stack in the account's IAM region creates the role and the policy.
        creates_iam = CfnCondition(
            self, "CreatesIam", expression=Fn.condition_equals(Aws.REGION, parameters.iam_region)
        )
        access = self._instance_access(config, registries, parameters)
        role, policy = self._execution_role(config, document.document_name, parameters)
        for construct in (access, role, policy):
            resource = construct.node.default_child
            assert isinstance(resource, cdk.CfnResource)
            resource.cfn_options.condition = creates_iam

    def _parameters(self, config: DeploymentConfig) -> _MemberParameters:
        def parameter(name: str, description: str, pattern: str | None = None) -> str:
            return CfnParameter(
                self, name, type="String", description=description, allowed_pattern=pattern
            ).value_as_string

        return _MemberParameters(
            central_account=parameter(
                "CentralAccountId",
                "The account of the central ecr-fleet-auth stack (its runner assumes the role)",
                settings.ACCOUNT_ID_PATTERN,
            ),
            central_region=parameter("CentralRegion", "The region of the central stack"),
            runner_role_arn=parameter(
                "RunnerRoleArn",
                "The central runner's role: the only principal that may assume the execution role",
                r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+$",
            ),
            output_group=parameter(
                "RunCommandOutputLogGroup",
                "The central stack's Run Command output log group: the same name in every member",
            ),
            iam_region=parameter(
                "IamRegion",
                "The region whose stack creates the account's IAM role and policy (IAM is global)",
            ),
            central_event_bus_arn=parameter(
                "CentralEventBusArn",
                "The central stack's event bus for member accounts' new instances",
                r"^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/\S+$",
            )
            if config.new_instances
            else None,
        )

    def _instance_access(
        self, config: DeploymentConfig, registries: list[str], parameters: _MemberParameters
    ) -> aws_iam.ManagedPolicy:
        """The instances' policy, as the central stack's, for every region of the account."""
        access = InstanceAccessPolicy(
            self,
            "InstanceAccess",
            registries=registries,
            command_output_arn=self.format_arn(
                service="logs",
                region="*",
                resource="log-group",
                resource_name=f"{parameters.output_group}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
            all_regions=True,
            managed_policy_name=f"{config.stack_name}-InstanceAccess",
        )
        acknowledge(
            access.policy,
            "AwsSolutions-IAM5",
            applies_to=[
                wildcard_arn_finding(
                    self, service="logs", resource="log-group:<RunCommandOutputLogGroup>:*", region="*"
                )
            ],
            reason=(
                "Writing log streams of the Run Command output group, in every region of the account: the "
                "policy is one per account (IAM is global) and the group is one per region."
            ),
        )
        return access.policy

    def _output_group(self, config: DeploymentConfig, parameters: _MemberParameters) -> None:
        """The Run Command output log group, under the central group's name so the runner sends the
        same OUTPUT_LOG_GROUP everywhere; not where the central stack already has it (the central
        account may be in a target OU)."""
        group = aws_logs.CfnLogGroup(
            self,
            "RunCommandOutput",
            log_group_name=parameters.output_group,
            retention_in_days=config.log_retention_days,
        )
        # Deleted with the stack instance (an account leaving the OUs): a retained group of this
        # name would make the stack fail to create if the account came back.
        group.apply_removal_policy(RemovalPolicy.DESTROY)
        group.cfn_options.condition = self.outside_central

    def _forward_instance_events(self, config: DeploymentConfig, central_bus_arn: str) -> None:
        """This account and region's ``running`` and target-tag events, to the central stack's bus."""
        forwarder = aws_iam.Role(
            self,
            "EventForwarder",
            path=forwarder_role_path(config.stack_name),
            assumed_by=aws_iam.ServicePrincipal(
                "events.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description=f"ecr-fleet-auth: forwards new instances' events to the central {config.stack_name}",
            inline_policies={
                "ForwardToTheCentralStack": aws_iam.PolicyDocument(
                    statements=[
                        aws_iam.PolicyStatement(actions=["events:PutEvents"], resources=[central_bus_arn])
                    ]
                )
            },
        )
        role = forwarder.node.default_child
        assert isinstance(role, cdk.CfnResource)
        role.cfn_options.condition = self.outside_central
        patterns = {
            "InstanceRunning": contract.instance_running_pattern(),
            "TagGained": contract.tag_gained_pattern(config.target_tag_key, config.target_tag_values),
        }
        for name, pattern in patterns.items():
            rule = aws_events.CfnRule(
                self,
                f"{name}Forwarded",
                description=f"ecr-fleet-auth: {name} events of this account, to the central stack",
                event_pattern=pattern,
                state="ENABLED",
                targets=[
                    aws_events.CfnRule.TargetProperty(
                        id="CentralStack", arn=central_bus_arn, role_arn=forwarder.role_arn
                    )
                ],
            )
            rule.cfn_options.condition = self.outside_central

    def _execution_role(
        self, config: DeploymentConfig, document_name: str, parameters: _MemberParameters
    ) -> tuple[aws_iam.Role, aws_iam.Policy]:
        # The central account as principal, narrowed to the runner's role by aws:PrincipalArn: a
        # role ARN as principal would be rewritten to the role's unique id by IAM and break when
        # the runner's role is replaced; the condition keeps matching by ARN.
        role = aws_iam.Role(
            self,
            "ExecutionRole",
            role_name=config.member_role_name,
            assumed_by=aws_iam.AccountPrincipal(parameters.central_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": parameters.runner_role_arn}}
            ),
            description=f"ecr-fleet-auth: the runner of {config.stack_name} runs the agent document here",
            max_session_duration=cdk.Duration.hours(1),
        )
        # Every content version of the agent document (``<stackName>-Agent-<sha8>``): while a StackSet
        # update runs, or after one failed, a region may still have an earlier version, which the
        # runner then sends (ecr_fleet_auth/aws/organization.py, MemberDocuments); IAM is global, so
        # this role may be newer or older than a region's document.
        versions = self.format_arn(
            service="ssm",
            region="*",
            resource="document",
            resource_name=contract.content_version_family(document_name) + "*",
        )
        statements = [
            *run_command_statements(
                document_arn=versions,
                instances_arn=self.format_arn(
                    service="ec2", region="*", resource="instance", resource_name="*"
                ),
                managed_instances_arn=self.format_arn(
                    service="ssm", region="*", resource="managed-instance", resource_name="*"
                ),
                tag_key=config.target_tag_key,
                tag_values=config.target_tag_values,
            ),
            aws_iam.PolicyStatement(
                sid="FindTheAgentDocument",
                actions=["ssm:DescribeDocument", "ssm:GetDocument"],
                resources=[versions],
            ),
            aws_iam.PolicyStatement(
                sid="ListTheAgentDocuments",
                actions=["ssm:ListDocuments"],
                resources=["*"],
            ),
        ]
        policy = aws_iam.Policy(self, "ExecutionPolicy", statements=statements)
        policy.attach_to_role(role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=["Resource::*"],
            reason=(
                "ec2:DescribeInstances, ssm:DescribeInstanceInformation, ssm:List*/GetCommandInvocation "
                "and ssm:ListDocuments do not support resource-level permissions."
            ),
        )
        family = contract.content_version_family(document_name)
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=[
                wildcard_arn_finding(self, service="ec2", resource="instance/*", region="*"),
                wildcard_arn_finding(self, service="ssm", resource="managed-instance/*", region="*"),
                wildcard_arn_finding(self, service="ssm", resource=f"document/{family}*", region="*"),
            ],
            reason=(
                "The role serves every region of the account (IAM is global): SendCommand and "
                "DescribeDocument of this stack's agent document, every content version of it (a region "
                "mid-update has an earlier one), on instances only where they carry the target tag; "
                "PutComplianceItems on the account's instances and managed instances only."
            ),
        )
        return role, policy


def synthesize_member_template(
    config: DeploymentConfig, registries: list[str], outdir: Path
) -> tuple[Path, dict[str, Any]]:
    """The member template's file and content, from its own app synthesized into ``outdir``
    (cdk-nag on: a finding stops the synth; its report is ``outdir/validation-report.json``)."""
    app = cdk.App(
        outdir=str(outdir),
        analytics_reporting=False,
        stack_traces=False,
        # The CLI's context (CDK_CONTEXT_JSON) turns path metadata on; this template goes to a
        # StackSet, not to the CLI, so it carries none.
        post_cli_context={"aws:cdk:enable-path-metadata": False},
    )
    stack = MemberStack(app, MEMBER_STACK_ID, config=config, registries=registries)
    add_checks(app)
    artifact = app.synth().get_stack_artifact(stack.artifact_id)
    return outdir / artifact.template_file, artifact.template
