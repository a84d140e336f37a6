"""The runner Lambda: discovers the tagged fleet, runs the document on it, reports."""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack, aws_iam, aws_lambda, aws_logs, aws_sns, aws_ssm
from constructs import Construct

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS

from .bundled import PINS, RUNNER_ASSET, bundled
from .config import DeploymentConfig
from .document.construct import AgentDocument
from .nag import acknowledge, wildcard_arn_finding

# handler.py and the ecr_fleet_auth package: lambda_src/ in the repository, the wheel's copy of it installed.
LAMBDA_SOURCE = bundled(RUNNER_ASSET)
# Every package the tests, the demo and the benchmarks install is pinned here.
CONSTRAINTS = bundled(PINS)
RUNTIME = aws_lambda.Runtime.PYTHON_3_14
ARCHITECTURE = aws_lambda.Architecture.ARM_64
POWERTOOLS_DISTRIBUTION = "aws-lambda-powertools"
# Scheduled runs are asynchronous invocations. A throttled one (account concurrency used
# up, or reservedConcurrency reached) is kept by Lambda and retried with back-off until
# it is this old — retry attempts count only function errors — then dropped, which the
# function alarm counts (AsyncEventsDropped). So a scheduled run starts at most this
# late; a run that would start later is left to the next slot.
MAX_EVENT_AGE = Duration.hours(1)
# A run reports its own failures (RunsFailed); retrying it would notify twice and could
# command instances again. The next scheduled run is the retry.
RETRY_ATTEMPTS = 0
# With newInstances on, the runner puts the event of an instance not online yet back on the queue
# that invokes it: a chain of requests by design (Lambda Developer Guide, "Use Lambda recursive loop
# detection to prevent infinite loops"), which Lambda would stop at about 16 invocations (an instance
# that never comes online would then never be reported, and its event would reach the dead letters
# hours later). The stack says so to Lambda (RecursiveLoop: Allow) and the runner bounds each chain
# itself (triggers.py: the readiness bound, and a count of looks carried on the message). Why not
# keep Terminate and 15 invocations: the README, New instances, "A loop by design".
RECURSIVE_LOOP_WITH_NEW_INSTANCES = aws_lambda.RecursiveLoop.ALLOW


def pinned_version(distribution: str, constraints: Path = CONSTRAINTS) -> str:
    """The version ``constraints.txt`` pins for ``distribution`` (names compared as pip does)."""

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    for line in constraints.read_text(encoding="utf-8").splitlines():
        name, separator, version = line.split("#", 1)[0].partition("==")
        if separator and canonical(name.strip()) == canonical(distribution):
            return version.strip()
    raise LookupError(f"{constraints.name} pins no {distribution}")


# Powertools publishes its layer ARNs as public SSM parameters in every region, one per
# release (and a floating .../latest, which is not used: a deploy would run a release
# nothing here tested). The layer is the release the tests ran: constraints.txt's pin.
POWERTOOLS_VERSION = pinned_version(POWERTOOLS_DISTRIBUTION)
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/arm64/python3.14/{POWERTOOLS_VERSION}"
# The reads a run makes on the fleet and its commands: none has resource-level permissions.
FLEET_READ_ACTIONS = (
    "ec2:DescribeInstances",
    "ssm:DescribeInstanceInformation",
    "ssm:ListCommands",
    "ssm:ListCommandInvocations",
    "ssm:GetCommandInvocation",
    # The instances carrying this deployment's compliance type, to clear those no longer targeted.
    "ssm:ListResourceComplianceSummaries",
)


def run_command_statements(
    *,
    document_arn: str,
    instances_arn: str,
    managed_instances_arn: str,
    tag_key: str,
    tag_values: tuple[str, ...],
) -> list[aws_iam.PolicyStatement]:
    """What a run needs in one account: SendCommand of the agent document, only on instances
    carrying the target tag, the reads, and writing each instance's SSM Compliance (on instances
    and managed instances of the account, nothing else). The runner's role has them for its own
    account, each member account's execution role for that account."""
    return [
        aws_iam.PolicyStatement(
            sid="RunTheAgentDocument",
            actions=["ssm:SendCommand"],
            resources=[document_arn],
        ),
        aws_iam.PolicyStatement(
            sid="OnlyOnTaggedInstances",
            actions=["ssm:SendCommand"],
            resources=[instances_arn],
            conditions={"StringEquals": {f"ssm:resourceTag/{tag_key}": list(tag_values)}},
        ),
        aws_iam.PolicyStatement(
            sid="ReadFleetAndCommandState",
            actions=list(FLEET_READ_ACTIONS),
            resources=["*"],
        ),
        # The runner writes the compliance (not the agent): it alone knows the instances the agent never
        # spoke for (not delivered, timed out, pending) and the run's id (docs/operating/compliance.md).
        aws_iam.PolicyStatement(
            sid="WriteInstanceCompliance",
            actions=["ssm:PutComplianceItems"],
            resources=[instances_arn, managed_instances_arn],
        ),
    ]


class RunnerFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        document: AgentDocument,
        registries: list[str],
        topic: aws_sns.ITopic,
        command_output: aws_logs.ILogGroup,
        stack_set_name: str = "",
        member_document_name: str = "",
        claim_table_name: str = "",
    ) -> None:
        """``stack_set_name`` and ``member_document_name``: the organization's StackSet and its
        document (empty for a single-account deployment); ``claim_table_name``: where runs of
        instance events claim instances (empty without ``newInstances``)."""
        super().__init__(scope, construct_id)
        # The service dimension of every metric the runner emits: it reads it from STACK_NAME.
        self.metrics_service = config.stack_name
        self.log_group = aws_logs.LogGroup(
            self,
            "Logs",
            retention=config.log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = aws_iam.Role(
            self,
            "Role",
            assumed_by=aws_iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecr-fleet-auth runner: discover tagged instances, run the agent document, report",
        )
        self.function = aws_lambda.Function(
            self,
            "Function",
            description="ecr-fleet-auth runner: keeps docker's ECR login working across the tagged fleet",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.handler",
            code=aws_lambda.Code.from_asset(
                str(LAMBDA_SOURCE), exclude=["**/__pycache__", "**/*.pyc", "**/.mypy_cache"]
            ),
            layers=[self._powertools_layer()],
            role=self.role,
            memory_size=512,
            timeout=Duration.seconds(LAMBDA_TIMEOUT_SECONDS),
            # None by default: Lambda refuses a reservation that leaves the account less than its
            # minimum unreserved concurrency (new accounts may have 10 in all). Runs do not need
            # it to stay apart: each leaves out instances another run is working on.
            reserved_concurrent_executions=config.reserved_concurrency or None,
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            # Only the new-instance queue makes a loop; without it Lambda keeps its default guard.
            recursive_loop=(
                RECURSIVE_LOOP_WITH_NEW_INSTANCES
                if config.new_instances
                else aws_lambda.RecursiveLoop.TERMINATE
            ),
            tracing=aws_lambda.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={
                # The settings the runner reads (ecr_fleet_auth/shared/settings.py), plus what only the
                # stack knows.
                **config.runner_environment(
                    registries=registries,
                    document_name=document.document_name,
                    document_version=document.document_version,
                    output_log_group=command_output.log_group_name,
                    topic_arn=topic.topic_arn,
                    stack_set_name=stack_set_name,
                    member_document_name=member_document_name,
                    claim_table_name=claim_table_name,
                    runs_bucket_name="",  # organization mode: the state machine's bucket (fleet_auth.py)
                ),
                "POWERTOOLS_SERVICE_NAME": contract.METRIC_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": contract.METRIC_NAMESPACE,
                "LOG_LEVEL": "INFO",
            },
        )
        self._grant(config, document)

    def _powertools_layer(self) -> aws_lambda.ILayerVersion:
        arn = aws_ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER)
        return aws_lambda.LayerVersion.from_layer_version_arn(self, "Powertools", arn)

    def _grant(self, config: DeploymentConfig, document: AgentDocument) -> None:
        """What a run needs (publishing its report is the topic's grant: ``Notifications.grant_publish``)."""
        stack = Stack.of(self)
        instances = stack.format_arn(service="ec2", resource="instance", resource_name="*")
        managed_instances = stack.format_arn(service="ssm", resource="managed-instance", resource_name="*")
        statements = [
            aws_iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            *run_command_statements(
                document_arn=document.document_arn,
                instances_arn=instances,
                managed_instances_arn=managed_instances,
                tag_key=config.target_tag_key,
                tag_values=config.target_tag_values,
            ),
        ]
        policy = aws_iam.Policy(self, "Policy", statements=statements)
        policy.attach_to_role(self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            applies_to=["Resource::*"],
            reason=(
                "Active tracing (added by Lambda) needs xray:PutTraceSegments and "
                "xray:PutTelemetryRecords, which have no resource-level permissions."
            ),
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=["Resource::*"],
            reason=(
                "ec2:DescribeInstances, ssm:DescribeInstanceInformation, ssm:List*/GetCommandInvocation, "
                "do not support resource-level permissions."
            ),
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=[
                wildcard_arn_finding(self, service="ec2", resource="instance/*"),
                wildcard_arn_finding(self, service="ssm", resource="managed-instance/*"),
            ],
            reason=(
                "SendCommand is allowed on instances only where they carry the target tag "
                "(ssm:resourceTag condition); PutComplianceItems on this account's instances and "
                "managed instances only; instance ids are not known at deploy time."
            ),
        )
