"""Where people hear about runs: an encrypted topic (or one the app hands in), an optional e-mail, three
alarms (four in an organization: ``TargetsUnreachable``).

The alarms read the runner's metrics of this deployment only: their ``service`` dimension is its
name (``RunnerFunction.metrics_service``: ``EcrFleetAuth.name``, the stack's name in the repository's
app), so two stacks in one region, or two constructs in one stack, stay apart."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from aws_cdk import (
    Duration,
    RemovalPolicy,
    Stack,
    Token,
    aws_chatbot,
    aws_cloudwatch,
    aws_iam,
    aws_kms,
    aws_lambda,
    aws_sns,
    aws_stepfunctions,
)
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.settings import SettingsError

from .config import TITLE
from .nag import acknowledge

# AWS Chatbot (Amazon Q Developer in chat applications) serves commercial Regions only ("Regions and quotas
# for Amazon Q Developer in chat applications": no China or AWS GovCloud (US) Region is listed).
CHAT_PARTITIONS = frozenset({"aws"})
# A channel configuration's name: 1-128 of [A-Za-z0-9-_] (AWS::Chatbot::*ChannelConfiguration
# ConfigurationName), unique in the account across Regions (Chatbot's configurations are account-global).
_CHAT_NAME_CHARS = 128
_CHAT_SUFFIX = "-notifications"
_LONGEST_REGION = 20


def chat_configuration_name(stack_name: str, region: str) -> str:
    """``<stack name>-<region>-notifications``: one per stack and Region, since Chatbot's configuration
    names are the account's, not a Region's. A stack name too long for it keeps its start and a hash of
    the whole (two long names with one start stay apart)."""
    room = _CHAT_NAME_CHARS - len(_CHAT_SUFFIX) - _LONGEST_REGION - 1
    if len(stack_name) > room:
        digest = hashlib.sha256(stack_name.encode()).hexdigest()[:8]
        stack_name = f"{stack_name[: room - 9]}-{digest}"
    return f"{stack_name}-{region}{_CHAT_SUFFIX}"


# Statuses that mean an instance still cannot pull after a run.
ALARMING_STATUSES = ("failed", "unreachable")
FUNCTION_ERRORS_PERIOD = Duration.minutes(5)


class Notifications(Construct):
    """``topic`` (and its ``topic_key``): an existing topic to publish to; none: a KMS-encrypted topic of
    its own, with a rotating key. A topic handed in without ``topic_key`` is published with the key it
    says it has (``ITopic.master_key``: a topic of the same app, or imported with its key's ARN);
    only a topic imported by its ARN alone has no key known, and needs ``topic_key`` if encrypted."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        email: str,
        chat_channel: str = "",
        topic: aws_sns.ITopic | None = None,
        topic_key: aws_kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.owns_topic = topic is None
        self._chat_channel = chat_channel
        if topic is None:
            self.key: aws_kms.IKey | None = aws_kms.Key(
                self,
                "TopicKey",
                description="ecr-fleet-auth: encrypts the notification topic",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.DESTROY,
            )
            self._let_alarms_publish(self.key)
            self.topic: aws_sns.ITopic = aws_sns.Topic(
                self,
                "Topic",
                display_name="ecr-fleet-auth",
                master_key=self.key,
                enforce_ssl=True,
            )
            if email:
                self.topic.add_subscription(subscriptions.EmailSubscription(email))
            self._chat(chat_channel)
            return
        self.key, self.topic = topic_key if topic_key is not None else topic.master_key, topic
        if self.key is not None:
            # Only a key of this app takes the statement; an imported key's policy is its owner's.
            self._let_alarms_publish(self.key)
        if email:
            # In this construct, not under the topic (which may belong to another stack).
            aws_sns.Subscription(
                self, "Email", topic=topic, endpoint=email, protocol=aws_sns.SubscriptionProtocol.EMAIL
            )
        self._chat(chat_channel)

    def _chat(self, channel: str) -> None:
        """The topic's messages in a Slack or Teams channel through AWS Chatbot (``chatChannel``), only
        when set. Notifications only: the channel's role has no policy and its guardrail denies every
        action, so nobody can run an AWS command from the chat."""
        if not channel:
            return
        stack = Stack.of(self)
        partition = None if Token.is_unresolved(stack.region) else RegionInfo.get(stack.region).partition
        if partition is not None and partition not in CHAT_PARTITIONS:
            raise SettingsError(
                f"{TITLE}:\n  chatChannel: AWS Chatbot is not available in {stack.region} (partition "
                f"{partition}); leave chatChannel empty for a stack there"
            )
        kind, _, ids = channel.partition(":")
        role = aws_iam.Role(
            self,
            "ChatRole",
            assumed_by=aws_iam.ServicePrincipal("chatbot.amazonaws.com"),
            description="ecr-fleet-auth: AWS Chatbot delivers notifications; no permissions",
        )
        name = chat_configuration_name(stack.stack_name, stack.region)
        guardrail = [
            Stack.of(self).format_arn(
                service="iam", region="", account="aws", resource="policy", resource_name="AWSDenyAll"
            )
        ]
        if kind == "slack":
            workspace, channel_id = ids.split("/", 1)
            aws_chatbot.CfnSlackChannelConfiguration(
                self,
                "Slack",
                configuration_name=name,
                iam_role_arn=role.role_arn,
                slack_workspace_id=workspace,
                slack_channel_id=channel_id,
                sns_topic_arns=[self.topic.topic_arn],
                guardrail_policies=guardrail,
                logging_level="ERROR",
            )
            return
        tenant, team, channel_id = ids.split("/", 2)
        aws_chatbot.CfnMicrosoftTeamsChannelConfiguration(
            self,
            "Teams",
            configuration_name=name,
            iam_role_arn=role.role_arn,
            teams_tenant_id=tenant,
            team_id=team,
            teams_channel_id=channel_id,
            sns_topic_arns=[self.topic.topic_arn],
            guardrail_policies=guardrail,
            logging_level="ERROR",
        )

    @staticmethod
    def _let_alarms_publish(key: aws_kms.IKey) -> None:
        """CloudWatch alarms publish to an encrypted topic only if the key lets them."""
        key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[aws_iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

    def grant_publish(self, role: aws_iam.IRole) -> None:
        """Let ``role`` publish run reports to the topic (and encrypt them with its key)."""
        if self.owns_topic:
            self.topic.grant_publish(role)
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                applies_to=["Action::kms:GenerateDataKey*"],
                reason=(
                    "Publishing to the KMS-encrypted topic needs GenerateDataKey* on its key (only that key)."
                ),
            )
            return
        # Written out: an imported topic does not know its key, so its grant_publish would leave it out.
        statements = [
            aws_iam.PolicyStatement(
                sid="PublishRunReports", actions=["sns:Publish"], resources=[self.topic.topic_arn]
            )
        ]
        if self.key is not None:
            statements.append(
                aws_iam.PolicyStatement(
                    sid="EncryptRunReports",
                    actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                    resources=[self.key.key_arn],
                )
            )
        policy = aws_iam.Policy(self, "PublishPolicy", roles=[role], statements=statements)
        if self.key is not None:
            acknowledge(
                policy,
                "AwsSolutions-IAM5",
                applies_to=["Action::kms:GenerateDataKey*"],
                reason=(
                    "Publishing to the topic handed in, encrypted with its key: GenerateDataKey* on that key."
                ),
            )

    def alarm_on_instances_left_broken(self, scope: Construct, *, service: str) -> aws_cloudwatch.Alarm:
        """Alarm when any run, of any action, ends with failed or unreachable instances."""
        metrics = {
            f"{status}_{action}": _runner_metric(contract.status_metric_name(status), service, action)
            for status in ALARMING_STATUSES
            for action in contract.ACTIONS
        }
        return self._alarm(
            scope,
            "InstancesLeftBroken",
            _sum(metrics, "Instances failed or unreachable", Duration.hours(1)),
            "ecr-fleet-auth: a run ended with failed or unreachable instances; "
            "see the runner's report and the Run Command output log group.",
        )

    def alarm_on_failed_runs(
        self, scope: Construct, *, service: str, state_machine: aws_stepfunctions.IStateMachine | None = None
    ) -> aws_cloudwatch.Alarm:
        """Alarm when a run stops before it can report per instance (RunsFailed, any action); in
        organization mode also when an execution of its state machine fails, times out or is stopped
        (its merge, which reports a failed run, did not run or failed itself)."""
        metrics: dict[str, aws_cloudwatch.IMetric] = {
            f"failed_{action}": _runner_metric(contract.RUNS_FAILED_METRIC, service, action)
            for action in contract.ACTIONS
        }
        if state_machine is not None:
            period = Duration.hours(1)
            metrics["executions_failed"] = state_machine.metric_failed(period=period, statistic="Sum")
            metrics["executions_timed_out"] = state_machine.metric_timed_out(period=period, statistic="Sum")
            metrics["executions_aborted"] = state_machine.metric_aborted(period=period, statistic="Sum")
        return self._alarm(
            scope,
            "RunsFailed",
            _sum(metrics, "Runs that failed", Duration.hours(1)),
            "ecr-fleet-auth: a run failed before it could report on every instance "
            "(discovery throttled or refused, or a runner error); its report's error says why.",
        )

    def alarm_on_unreachable_targets(self, scope: Construct, *, service: str) -> aws_cloudwatch.Alarm:
        """Organization mode: alarm when a run could not reach an (account, region) pair (its stack
        instance not ready, its role not assumable, its region refusing, no time left to start it)."""
        metric = aws_cloudwatch.Metric(
            namespace=contract.METRIC_NAMESPACE,
            metric_name=contract.TARGETS_UNREACHABLE_METRIC,
            dimensions_map={contract.METRIC_SERVICE_DIMENSION: service},
            statistic="Sum",
            period=Duration.hours(1),
        )
        return self._alarm(
            scope,
            "TargetsUnreachable",
            _sum({"unreachable": metric}, "Account-regions not reached", Duration.hours(1)),
            "ecr-fleet-auth: a run could not reach one or more (account, region) pairs of the organization; "
            "the report's targets say which and why.",
        )

    def alarm_on_runner_errors(
        self, scope: Construct, function: aws_lambda.IFunction, *, service: str
    ) -> aws_cloudwatch.Alarm:
        """Alarm when the function itself fails or a scheduled run is dropped.

        Function errors are what the runner could not report itself: a crash, a timeout,
        settings it cannot read. Events it rejected also count as function errors (the
        caller sees the message); they are subtracted, so a mistyped console event pages
        nobody. AsyncEventsDropped: a scheduled invocation throttled past its event age — and
        also an event rejected when invoked asynchronously (retries are 0, so Lambda drops it),
        which therefore does reach this alarm (docs/how-it-works/how-a-run-works.md says so).
        """
        period = FUNCTION_ERRORS_PERIOD
        metrics = {
            "errors": function.metric_errors(period=period, statistic="Sum"),
            "rejected": aws_cloudwatch.Metric(
                namespace=contract.METRIC_NAMESPACE,
                metric_name=contract.EVENTS_REJECTED_METRIC,
                dimensions_map={contract.METRIC_SERVICE_DIMENSION: service},
                statistic="Sum",
                period=period,
            ),
            "dropped": function.metric("AsyncEventsDropped", period=period, statistic="Sum"),
        }
        expression = aws_cloudwatch.MathExpression(
            expression="FILL(errors, 0) - FILL(rejected, 0) + FILL(dropped, 0)",
            using_metrics=metrics,
            label="Runner invocations that failed or were dropped",
            period=period,
        )
        return self._alarm(
            scope,
            "RunnerErrors",
            expression,
            "ecr-fleet-auth: the runner function failed (error, timeout, bad settings) or a scheduled "
            "run was dropped after being throttled; see the runner's log group.",
        )

    def _alarm(
        self, scope: Construct, construct_id: str, metric: aws_cloudwatch.MathExpression, description: str
    ) -> aws_cloudwatch.Alarm:
        alarm = aws_cloudwatch.Alarm(
            scope,
            construct_id,
            metric=metric,
            alarm_description=description,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        notify_on_alarm(alarm, self.topic)
        return alarm


def notify_on_alarm(alarm: aws_cloudwatch.Alarm, topic: aws_sns.ITopic) -> None:
    """An alarm tells ``topic`` when it goes into ALARM, and only then: no OK action. The topic also
    carries the run reports, and an OK mail after every hourly period with nothing failing would be
    noise (one failing instance made a report, an ALARM and an OK mail each cycle); the next run's
    report says what recovered (docs/operating/notifications.md)."""
    alarm.add_alarm_action(cw_actions.SnsAction(topic))


def _runner_metric(metric_name: str, service: str, action: str) -> aws_cloudwatch.Metric:
    return aws_cloudwatch.Metric(
        namespace=contract.METRIC_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={contract.METRIC_SERVICE_DIMENSION: service, contract.METRIC_ACTION_DIMENSION: action},
        statistic="Sum",
        period=Duration.hours(1),
    )


def _sum(
    metrics: Mapping[str, aws_cloudwatch.IMetric], label: str, period: Duration
) -> aws_cloudwatch.MathExpression:
    """The sum of ``metrics``, a missing one counting 0."""
    return aws_cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({name}, 0)" for name in metrics),
        using_metrics=metrics,
        label=label,
        period=period,
    )
