"""The stack's part in covering new instances: rules, queue, dead letters, event source mapping, IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from ecr_fleet_auth.aws import claims
from ecr_fleet_auth.aws.discovery import TargetTag
from ecr_fleet_auth.new_instances.instance_events import parse
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.events import MAX_REQUESTED_INSTANCES
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS, SettingsError
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.new_instances import BATCH_SIZE
from tests.support.event_samples import INSTANCE_EVENT_SAMPLES, load_event
from tests.support.template import Template, default_context, only, resources, synthesize


@pytest.fixture(scope="module")
def other_tag_template() -> Template:
    return synthesize({"targetTagKey": "team", "targetTagValues": "web,batch"})["EcrFleetAuth"]


def _logical_id(template: Template, resource_type: str, prefix: str) -> str:
    (found,) = [i for i, r in resources(template, resource_type).items() if i.startswith(prefix)]
    return found


def _arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _rules(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id.removeprefix("NewInstances")[:-8]: resource["Properties"]
        for logical_id, resource in resources(template, "AWS::Events::Rule").items()
    }


def _queues(template: Template) -> tuple[str, str]:
    return (
        _logical_id(template, "AWS::SQS::Queue", "NewInstancesQueue"),
        _logical_id(template, "AWS::SQS::Queue", "NewInstancesDeadLetters"),
    )


def _runner_id(template: Template) -> str:
    (runner,) = [
        logical_id
        for logical_id, resource in resources(template, "AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == "handler.handler"
    ]
    return runner


def test_the_rules_match_running_and_the_target_tag_from_the_settings(
    synthesized_template: Template, other_tag_template: Template
) -> None:
    rules = _rules(synthesized_template)
    assert set(rules) == {"InstanceRunning", "TagGained"}
    assert rules["InstanceRunning"]["EventPattern"] == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["running"]},
    }
    assert rules["TagGained"]["EventPattern"] == {
        "source": ["aws.tag"],
        "detail-type": ["Tag Change on Resource"],
        "detail": {
            "service": ["ec2"],
            "resource-type": ["instance"],
            "changed-tag-keys": ["ecr-fleet-auth"],
            "tags": {"ecr-fleet-auth": ["enabled"]},
        },
    }
    other = _rules(other_tag_template)["TagGained"]["EventPattern"]["detail"]
    assert (other["changed-tag-keys"], other["tags"]) == (["team"], {"team": ["web", "batch"]})
    for rule in rules.values():
        assert rule["State"] == "ENABLED"
        assert "EventBusName" not in rule  # the default bus, where AWS sends these events


@pytest.mark.parametrize("sample", INSTANCE_EVENT_SAMPLES)
def test_the_rules_send_exactly_what_the_runner_reads(synthesized_template: Template, sample: str) -> None:
    """AWS's matching (moto's implementation) of the deployed patterns, against the runner's parser."""
    event = load_event(sample)
    matched = [
        name
        for name, rule in _rules(synthesized_template).items()
        if EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event)
    ]
    named = parse(event, TargetTag("ecr-fleet-auth", ("enabled",))).arrivals
    assert bool(matched) == bool(named), (sample, matched)
    assert len(matched) <= 1


def test_the_rules_deliver_the_whole_event_to_the_queue_and_failures_to_the_dead_letters(
    synthesized_template: Template,
) -> None:
    queue, dead_letters = _queues(synthesized_template)
    for rule in _rules(synthesized_template).values():
        (target,) = rule["Targets"]
        assert target["Arn"] == _arn_of(queue)
        assert not {"Input", "InputPath", "InputTransformer"} & set(target)  # the event as AWS sent it
        assert target["DeadLetterConfig"] == {"Arn": _arn_of(dead_letters)}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600}


def test_the_queues_are_encrypted_ssl_only_and_redrive_to_the_dead_letters(
    synthesized_template: Template,
) -> None:
    queue_id, dead_letters_id = _queues(synthesized_template)
    queue = synthesized_template["Resources"][queue_id]["Properties"]
    dead_letters = synthesized_template["Resources"][dead_letters_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and dead_letters["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": _arn_of(dead_letters_id), "maxReceiveCount": 5}
    mapping = only(synthesized_template, "AWS::Lambda::EventSourceMapping")["Properties"]
    # AWS: at least six times the function timeout plus the batching window.
    assert (
        queue["VisibilityTimeout"] >= 6 * LAMBDA_TIMEOUT_SECONDS + mapping["MaximumBatchingWindowInSeconds"]
    )
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600
    for policy in resources(synthesized_template, "AWS::SQS::QueuePolicy").values():
        (denied,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert denied["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_two_rules_may_send_to_the_queues(synthesized_template: Template) -> None:
    rule_arns = [_arn_of(i) for i in resources(synthesized_template, "AWS::Events::Rule")]
    policies = resources(synthesized_template, "AWS::SQS::QueuePolicy").values()
    assert len(policies) == 2
    for policy in policies:
        allowed = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in allowed] == rule_arns
        for statement in allowed:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert statement["Action"] == "sqs:SendMessage"


def test_the_runner_reads_the_queue_in_large_batches_two_at_a_time(synthesized_template: Template) -> None:
    mapping = only(synthesized_template, "AWS::Lambda::EventSourceMapping")["Properties"]
    queue, _ = _queues(synthesized_template)
    assert mapping["EventSourceArn"] == _arn_of(queue)
    assert mapping["FunctionName"] == {"Ref": _runner_id(synthesized_template)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert 1 <= mapping["MaximumBatchingWindowInSeconds"] <= 300
    # One batch is one narrowed run: never more instances than a run request may name.
    assert mapping["BatchSize"] == BATCH_SIZE == MAX_REQUESTED_INSTANCES


def test_the_runner_may_read_and_put_back_on_its_queue_only(synthesized_template: Template) -> None:
    queue, _ = _queues(synthesized_template)
    sqs_statements = [
        statement
        for resource in resources(synthesized_template, "AWS::IAM::Policy").values()
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("sqs:") for action in _actions(statement))
    ]
    assert {s["Sid"]: (sorted(_actions(s)), s["Resource"]) for s in sqs_statements} == {
        "ReadNewInstanceEvents": (
            ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            _arn_of(queue),
        ),
        "PutBackEventsOfInstancesNotOnline": (["sqs:GetQueueUrl", "sqs:SendMessage"], _arn_of(queue)),
    }
    (policy_id,) = [
        i
        for i, r in resources(synthesized_template, "AWS::IAM::Policy").items()
        if any(
            s.get("Sid") == "ReadNewInstanceEvents" for s in r["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    policy = synthesized_template["Resources"][policy_id]["Properties"]
    role_id = synthesized_template["Resources"][_runner_id(synthesized_template)]["Properties"]["Role"][
        "Fn::GetAtt"
    ][0]
    assert policy["Roles"] == [{"Ref": role_id}]
    (mapping_id,) = resources(synthesized_template, "AWS::Lambda::EventSourceMapping")
    assert policy_id in synthesized_template["Resources"][mapping_id]["DependsOn"]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_events_lost_to_the_dead_letters_raise_an_alarm(synthesized_template: Template) -> None:
    _, dead_letters = _queues(synthesized_template)
    (alarm,) = [
        r["Properties"]
        for i, r in resources(synthesized_template, "AWS::CloudWatch::Alarm").items()
        if "NewInstanceEventsLost" in i
    ]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters, "QueueName"]}}
    ]
    topic = {"Ref": _logical_id(synthesized_template, "AWS::SNS::Topic", "NotificationsTopic")}
    assert alarm["AlarmActions"] == [topic] and "OKActions" not in alarm


def test_the_runner_declares_its_put_back_loop_to_lambda_and_an_alarm_watches_for_stops(
    synthesized_template: Template,
) -> None:
    """Lambda Developer Guide, "Use Lambda recursive loop detection to prevent infinite loops": a
    function writing to the SQS queue that invokes it is a chain Lambda stops at about 16 invocations
    unless the function allows it ("RecursiveLoop: Allow", AWS::Lambda::Function; CDK
    ``recursive_loop``); ``RecursiveInvocationsDropped`` (AWS/Lambda) counts the stops. The put-backs
    make such a loop by design, longer than 16 at the default readiness bound."""
    runner = _runner_id(synthesized_template)
    assert synthesized_template["Resources"][runner]["Properties"]["RecursiveLoop"] == "Allow"
    (alarm,) = [
        r["Properties"]
        for i, r in resources(synthesized_template, "AWS::CloudWatch::Alarm").items()
        if "RecursiveLoopStopped" in i
    ]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/Lambda",
        "RecursiveInvocationsDropped",
        "Sum",
    )
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": runner}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    topic = {"Ref": _logical_id(synthesized_template, "AWS::SNS::Topic", "NotificationsTopic")}
    assert alarm["AlarmActions"] == [topic] and "OKActions" not in alarm


def test_the_claim_table_is_on_demand_keyed_by_instance_and_expires_by_ttl(
    synthesized_template: Template,
) -> None:
    (table,) = resources(synthesized_template, "AWS::DynamoDB::Table").values()
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"  # nothing to pay while nothing launches
    assert "ProvisionedThroughput" not in properties
    assert properties["KeySchema"] == [{"AttributeName": claims.KEY, "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": claims.KEY, "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": claims.TTL_ATTRIBUTE, "Enabled": True}
    assert table["DeletionPolicy"] == "Delete"  # claims last minutes: nothing to keep


def test_the_runner_may_only_put_claims_in_its_claim_table(synthesized_template: Template) -> None:
    table = _logical_id(synthesized_template, "AWS::DynamoDB::Table", "NewInstanceClaims")
    dynamodb_statements = [
        statement
        for resource in resources(synthesized_template, "AWS::IAM::Policy").values()
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("dynamodb:") for action in _actions(statement))
    ]
    assert [(s["Sid"], _actions(s), s["Resource"]) for s in dynamodb_statements] == [
        ("ClaimInstancesForTheirEvents", ["dynamodb:PutItem"], _arn_of(table))
    ]
    function = synthesized_template["Resources"][_runner_id(synthesized_template)]["Properties"]
    assert function["Environment"]["Variables"]["CLAIM_TABLE_NAME"] == {"Ref": table}


def test_new_instances_off_deploys_no_rules_no_queue_and_no_claim_table() -> None:
    template = synthesize({"newInstances": "false"})["EcrFleetAuth"]
    for resource_type in (
        "AWS::Events::Rule",
        "AWS::SQS::Queue",
        "AWS::Lambda::EventSourceMapping",
        "AWS::DynamoDB::Table",
    ):
        assert resources(template, resource_type) == {}, resource_type
    function = template["Resources"][_runner_id(template)]["Properties"]
    assert function["Environment"]["Variables"]["CLAIM_TABLE_NAME"] == ""
    assert function["RecursiveLoop"] == "Terminate"  # no loop without the queue: Lambda's guard stays
    assert not [i for i in resources(template, "AWS::CloudWatch::Alarm") if "RecursiveLoopStopped" in i]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("newInstances", "sometimes", "newInstances='sometimes': not a boolean; expected true or false"),
        ("newInstanceAction", "reboot", "expected one of refresh, helper, check, or empty for `action`"),
        ("newInstanceReadinessSeconds", "30", "out of range; expected a whole number from 60 to 3600"),
        ("newInstanceReadinessSeconds", 7200, "out of range; expected a whole number from 60 to 3600"),
    ],
)
def test_bad_new_instance_settings_stop_the_synth(key: str, value: Any, message: str) -> None:
    context = {**default_context(), key: value}
    with pytest.raises(SettingsError) as error:
        DeploymentConfig.from_context(context.get)
    assert message in str(error.value)


def test_the_runner_is_told_the_new_instance_settings(synthesized_template: Template) -> None:
    function = synthesized_template["Resources"][_runner_id(synthesized_template)]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["NEW_INSTANCE_ACTION"] == ""  # empty: the runner uses ACTION
    assert variables["NEW_INSTANCE_READINESS_SECONDS"] == "900"
    assert contract.SOURCE_INSTANCE_RUNNING in contract.SOURCES
