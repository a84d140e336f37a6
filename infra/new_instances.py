"""New instances covered at once: two EventBridge rules, an SQS queue, the runner reading it in batches.

* ``InstanceRunning``: any EC2 instance entering ``running`` (launch or start). The event
  carries no tags, so the rule cannot filter on them: the runner checks the tag itself and
  leaves untagged instances out (``ecr_fleet_auth/new_instances/readiness.py``).
* ``TagGained``: ``Tag Change on Resource`` for an EC2 instance whose target tag changed and
  now holds one of the target values.

Both deliver the whole event to ``Queue`` (SQS-managed encryption, SSL only). Lambda's event
source mapping hands the runner batches of up to ``BATCH_SIZE`` records, gathered for up to
``BATCHING_WINDOW`` (a burst becomes a few runs, each SendCommand of at most 50 ids), with at
most ``MAX_CONCURRENCY`` batches at once and ``ReportBatchItemFailures``. The runner puts the
event of an instance not yet online back in the queue itself, delayed (it may send to the
queue); what it returns as failed comes back after the visibility timeout and, after
``MAX_RECEIVE_COUNT`` receives, lands in ``DeadLetters`` — as do events EventBridge could not
deliver. The ``NewInstanceEventsLost`` alarm tells the topic when anything lands there.

The table where runs of instance events claim an instance is ``claim_table.py``.

In organization mode (``organization_id`` given) the member accounts' new instances come this way
too: each member stack forwards its own ``running`` and target-tag events, bus to bus, to
``MemberEvents``, an event bus of this stack whose policy lets only the organization's forwarding
roles put events on it (``aws:PrincipalOrgID`` and the roles' path); its two rules, with the same
patterns, deliver them to the same queue. EventBridge keeps each event's ``account``, ``region`` and
resource ARN (EventBridge User Guide, "Sending and receiving events between AWS accounts"), and the
runner runs each instance in its own account and region.

Nothing here runs while nothing launches: rules and Lambda cost nothing without events; the
event source mapping's pollers make empty long-poll receives on the queue, which SQS counts as
requests (within the free tier at one queue; see docs/operating/limits-and-cost.md).
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import (
    Duration,
    Names,
    Stack,
    aws_cloudwatch,
    aws_dynamodb,
    aws_events,
    aws_iam,
    aws_lambda,
    aws_sns,
    aws_sqs,
)
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS

from .notifications import notify_on_alarm

# An event bus name is at most 256 characters (AWS::Events::EventBus Name); "-MemberEvents" follows.
MAX_BUS_NAME = 256 - len("-MemberEvents")

# One batch is one narrowed run, which takes at most 1,000 instance ids (the event model's cap):
# a burst of launches becomes a few runs, each sending SendCommands of up to 50 ids.
BATCH_SIZE = 1000
# How long the event source mapping gathers records before invoking (also a put-back event's
# extra wait): short enough for a new instance to be covered within a minute or two.
BATCHING_WINDOW = Duration.seconds(20)
# Batches run at once (the least SQS allows): runs of instance events stay few and small.
MAX_CONCURRENCY = 2
# AWS: at least six times the function timeout, plus the batching window.
VISIBILITY_TIMEOUT = Duration.seconds(6 * LAMBDA_TIMEOUT_SECONDS + BATCHING_WINDOW.to_seconds())
# AWS: at least 5, so that a throttled invocation does not send a good record to the dead letters.
MAX_RECEIVE_COUNT = 5
# An event EventBridge could not put in the queue is retried for this long, then dead-lettered.
DELIVERY_MAX_EVENT_AGE = Duration.hours(1)
DEAD_LETTER_RETENTION = Duration.days(14)


class NewInstanceTriggers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: aws_lambda.IFunction,
        role: aws_iam.IRole,
        tag_key: str,
        tag_values: tuple[str, ...],
        topic: aws_sns.ITopic,
        claim_table: aws_dynamodb.ITable,
        organization_id: str = "",
        forwarder_role_arns: str = "",
    ) -> None:
        """``organization_id`` (organization mode): also take member accounts' events, on
        ``member_event_bus``, from the roles matching ``forwarder_role_arns`` (an ARN pattern)."""
        super().__init__(scope, construct_id)
        self.claim_table = claim_table
        self.dead_letters = self._queue("DeadLetters", retention_period=DEAD_LETTER_RETENTION)
        self.queue = self._queue(
            "Queue",
            visibility_timeout=VISIBILITY_TIMEOUT,
            dead_letter_queue=aws_sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letters
            ),
        )
        patterns = {
            "InstanceRunning": (contract.instance_running_pattern(), "an EC2 instance entered running"),
            "TagGained": (
                contract.tag_gained_pattern(tag_key, tag_values),
                f"an EC2 instance gained the target tag {tag_key}",
            ),
        }
        self.rules = [self._rule(name, pattern, what) for name, (pattern, what) in patterns.items()]
        self.member_event_bus: aws_events.EventBus | None = None
        if organization_id:
            self.member_event_bus = self._member_event_bus(organization_id, forwarder_role_arns)
            self.rules += [
                self._rule(f"{name}InMembers", pattern, f"{what}, in a member account", self.member_event_bus)
                for name, (pattern, what) in patterns.items()
            ]
        policy = self._grant(role)
        self.reader = aws_lambda.EventSourceMapping(
            self,
            "Reader",
            target=function,
            event_source_arn=self.queue.queue_arn,
            batch_size=BATCH_SIZE,
            max_batching_window=BATCHING_WINDOW,
            max_concurrency=MAX_CONCURRENCY,
            report_batch_item_failures=True,
        )
        # Lambda checks the role's access to the queue when it creates the mapping.
        self.reader.node.add_dependency(policy)
        self.alarm = self._alarm_on_dead_letters(topic)
        self.loop_alarm = self._alarm_on_stopped_loops(function, topic)

    def _queue(
        self,
        construct_id: str,
        *,
        retention_period: Duration | None = None,
        visibility_timeout: Duration | None = None,
        dead_letter_queue: aws_sqs.DeadLetterQueue | None = None,
    ) -> aws_sqs.Queue:
        return aws_sqs.Queue(
            self,
            construct_id,
            encryption=aws_sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention_period,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=dead_letter_queue,
        )

    def _rule(
        self, construct_id: str, pattern: dict[str, Any], what: str, bus: aws_events.IEventBus | None = None
    ) -> aws_events.Rule:
        rule = aws_events.Rule(
            self,
            construct_id,
            description=f"ecr-fleet-auth: cover a new instance at once ({what})",
            event_bus=bus,
            event_pattern=aws_events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
        )
        rule.add_target(_QueueTarget(self.queue, self.dead_letters))
        return rule

    def _member_event_bus(self, organization_id: str, forwarder_role_arns: str) -> aws_events.EventBus:
        """Where member stacks forward their instances' events; only the organization's forwarding roles
        may put events on it (a principal outside it, or another role of a member account, is refused)."""
        # The bus holds its policy (the bus's own Policy property): an AWS::Events::EventBusPolicy
        # resource would do the same, but cdk-nag reads its deprecated Principal property and prints
        # a deprecation warning on every synth. The policy names the bus's ARN, so the name is fixed
        # here (unique to this construct in the app) rather than read back from the bus.
        name = Names.unique_resource_name(self, max_length=MAX_BUS_NAME, separator="-") + "-MemberEvents"
        bus = aws_events.EventBus(self, "MemberEvents", event_bus_name=name)
        statement = aws_iam.PolicyStatement(
            sid="MembersForwardTheirInstanceEvents",
            principals=[aws_iam.AnyPrincipal()],
            actions=["events:PutEvents"],
            resources=[Stack.of(self).format_arn(service="events", resource="event-bus", resource_name=name)],
            conditions={
                "StringEquals": {"aws:PrincipalOrgID": organization_id},
                "ArnLike": {"aws:PrincipalArn": forwarder_role_arns},
            },
        )
        cfn_bus = bus.node.default_child
        assert isinstance(cfn_bus, aws_events.CfnEventBus)
        cfn_bus.policy = aws_iam.PolicyDocument(statements=[statement]).to_json()
        return bus

    def _grant(self, role: aws_iam.IRole) -> aws_iam.Policy:
        """The runner reads the queue (what Lambda's event source mapping needs), puts events back,
        and claims instances (a conditional PutItem: no read, no delete)."""
        return aws_iam.Policy(
            self,
            "RunnerPolicy",
            roles=[role],
            statements=[
                aws_iam.PolicyStatement(
                    sid="ReadNewInstanceEvents",
                    actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    resources=[self.queue.queue_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="PutBackEventsOfInstancesNotOnline",
                    actions=["sqs:GetQueueUrl", "sqs:SendMessage"],
                    resources=[self.queue.queue_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="ClaimInstancesForTheirEvents",
                    actions=["dynamodb:PutItem"],
                    resources=[self.claim_table.table_arn],
                ),
            ],
        )

    def _alarm_on_stopped_loops(
        self, function: aws_lambda.IFunction, topic: aws_sns.ITopic
    ) -> aws_cloudwatch.Alarm:
        """``RecursiveLoopStopped``: Lambda stopped an invocation of the runner as a recursive loop
        (``AWS/Lambda RecursiveInvocationsDropped``). The function says ``RecursiveLoop: Allow`` and the
        metric "isn't emitted" then (Lambda Developer Guide, "Use Lambda recursive loop detection"); it
        fires when the function's setting no longer says so (changed outside the stack, or Lambda's
        default back): new instances then stop being covered after about 16 looks."""
        alarm = aws_cloudwatch.Alarm(
            self,
            "RecursiveLoopStopped",
            metric=function.metric(
                "RecursiveInvocationsDropped", period=Duration.minutes(5), statistic="Sum"
            ),
            alarm_description=(
                "ecr-fleet-auth: Lambda stopped the runner as a recursive loop "
                "(RecursiveInvocationsDropped): the events of new instances put back to wait are being "
                "dropped. The stack sets the function's recursive loop detection to Allow (the runner "
                "bounds its own loop); check the function's configuration "
                "(aws lambda get-function-recursion-config) and redeploy the stack."
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        notify_on_alarm(alarm, topic)
        return alarm

    def _alarm_on_dead_letters(self, topic: aws_sns.ITopic) -> aws_cloudwatch.Alarm:
        alarm = aws_cloudwatch.Alarm(
            self,
            "NewInstanceEventsLost",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            alarm_description=(
                "ecr-fleet-auth: events about new instances landed in the dead-letter queue (the runner "
                "failed on them, or EventBridge could not deliver them); those instances wait for the "
                "next scheduled run. Read the messages in the queue, then purge it."
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        notify_on_alarm(alarm, topic)
        return alarm


@jsii.implements(aws_events.IRuleTarget)
class _QueueTarget:
    """The queue as a rule's target, the whole event as the message; EventBridge may only send to it.

    (``aws_events_targets.SqsQueue`` would also grant EventBridge GetQueueAttributes and GetQueueUrl.)
    Events it cannot deliver within ``DELIVERY_MAX_EVENT_AGE`` go to the dead letters."""

    def __init__(self, queue: aws_sqs.IQueue, dead_letters: aws_sqs.IQueue) -> None:
        self._queue, self._dead_letters = queue, dead_letters

    def bind(self, rule: IRuleRef, id: str | None = None) -> aws_events.RuleTargetConfig:
        for queue in (self._queue, self._dead_letters):
            queue.add_to_resource_policy(
                aws_iam.PolicyStatement(
                    principals=[aws_iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_ref.rule_arn}},
                )
            )
        return aws_events.RuleTargetConfig(
            arn=self._queue.queue_arn,
            dead_letter_config=aws_events.CfnRule.DeadLetterConfigProperty(arn=self._dead_letters.queue_arn),
            retry_policy=aws_events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=int(DELIVERY_MAX_EVENT_AGE.to_seconds())
            ),
        )
