"""Reading the EventBridge instance events, directly or as SQS records: the samples in tests/events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ecr_fleet_auth.aws.clients import Pair
from ecr_fleet_auth.aws.discovery import TargetTag
from ecr_fleet_auth.new_instances.instance_events import Queue, parse
from ecr_fleet_auth.new_instances.triggers import RECHECK_SECONDS, recheck_delay
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.invocations import InvalidEvent, is_instance_event
from tests.support.event_samples import INSTANCE_EVENT_SAMPLES, RUN_REQUEST_SAMPLES, load_event

TAG = TargetTag("ecr-fleet-auth", ("enabled",))
SAMPLE_INSTANCE = "i-0a1b2c3d4e5f60718"


@pytest.mark.parametrize(
    ("sample", "source", "time"),
    [
        ("ec2_state_change_running", "instance_running", "2025-03-04T10:15:19Z"),
        ("tag_change_added", "tag_change", "2025-03-04T11:02:44Z"),
        ("tag_change_value_changed", "tag_change", "2025-03-04T11:30:08Z"),
        ("tag_change_multi_key", "tag_change", "2025-03-04T13:10:27Z"),
    ],
)
def test_an_event_aws_sends_names_its_instance(sample: str, source: str, time: str) -> None:
    event = load_event(sample)
    assert is_instance_event(event)
    (arrival,) = parse(event, TAG).arrivals
    assert arrival.instance_id == SAMPLE_INSTANCE
    assert arrival.source == source
    assert arrival.time == datetime.fromisoformat(time)
    assert arrival.message_id is None
    assert json.loads(arrival.body) == event  # what goes back to the queue to wait


@pytest.mark.parametrize("sample", ["ec2_state_change_pending", "tag_change_removed"])
def test_an_event_that_names_no_new_instance_of_ours_names_none(sample: str) -> None:
    assert parse(load_event(sample), TAG).arrivals == ()


def test_a_tag_event_for_another_value_or_another_key_names_none() -> None:
    event = load_event("tag_change_added")
    assert parse(event, TargetTag("ecr-fleet-auth", ("on",))).arrivals == ()
    assert parse(event, TargetTag("team", ("enabled",))).arrivals == ()


def test_fields_aws_adds_are_ignored() -> None:
    event = load_event("tag_change_added")
    event["detail"] |= {"tag-policy-compliant": "true", "version-timestamp": "1741086164000"}
    event["replay-name"] = "x"
    (arrival,) = parse(event, TAG).arrivals
    assert arrival.instance_id == SAMPLE_INSTANCE


def test_an_sqs_batch_names_each_record_s_instance_and_repeats_collapse() -> None:
    batch = load_event("sqs_batch")
    events = parse(batch, TAG)
    assert events.queue == Queue(account="123456789012", name="ecr-fleet-auth-new-instances")
    assert [a.message_id for a in events.arrivals] == [r["messageId"] for r in batch["Records"]]
    assert [a.body for a in events.arrivals] == [r["body"] for r in batch["Records"]]
    assert events.rejected == {} and events.ignored == ()
    # The first instance is named twice (running, then tagged): one arrival, its earliest event.
    # Each instance where its event says it is: the envelope's account and region.
    (pair,) = events.earliest()
    assert pair == Pair("123456789012", "us-east-1")
    first = events.earliest()[pair]
    assert sorted(first) == ["i-0a1b2c3d4e5f60718", "i-0f9e8d7c6b5a40312"]
    assert first[SAMPLE_INSTANCE].source == "instance_running"
    assert first[SAMPLE_INSTANCE].time == datetime(2025, 3, 4, 10, 15, 19, tzinfo=UTC)
    assert events.message_ids(pair, SAMPLE_INSTANCE) == [
        batch["Records"][0]["messageId"],
        batch["Records"][2]["messageId"],
    ]


def test_a_redelivered_record_reads_the_same() -> None:
    (arrival,) = parse(load_event("sqs_batch_redelivered"), TAG).arrivals
    assert arrival.source == "instance_running"


def _record_with(body: Any) -> dict[str, Any]:
    batch = load_event("sqs_batch")
    record = copy.deepcopy(batch["Records"][0])
    record["body"] = body if isinstance(body, str) else json.dumps(body)
    return record


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    inner = event
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return event


def _with(event: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    inner = event
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    return event


RUNNING = load_event("ec2_state_change_running")
TAGGED = load_event("tag_change_added")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "body: not JSON"),
        ("[]", "body: expected a JSON object"),
        (_with(RUNNING, "EC2 Spot Instance Interruption Warning", "detail-type"), "detail-type: 'EC2 Spot"),
        (_with(RUNNING, "aws.tag", "source"), "source: 'aws.tag' is not accepted; expected 'aws.ec2'"),
        (_with(RUNNING, None, "time"), "time: expected a string, got null"),
        (_with(RUNNING, "2025-03-04 10:15:19", "time"), "time: '2025-03-04 10:15:19' is not accepted"),
        (_without(RUNNING, "detail"), "detail: missing"),
        (_with(RUNNING, None, "detail", "instance-id"), "detail.instance-id: expected a string, got null"),
        (_with(RUNNING, "i-xyz; reboot", "detail", "instance-id"), "detail.instance-id: 'i-xyz; reboot'"),
        (_with(RUNNING, 16, "detail", "state"), "detail.state: expected a string, got a number"),
        (_with(TAGGED, "ecr-fleet-auth", "detail", "changed-tag-keys"), "detail.changed-tag-keys: expected"),
        (_with(TAGGED, None, "detail", "tags"), "detail.tags: expected an object"),
        (_with(TAGGED, [], "resources"), "resources: expected the ARN of the instance"),
        (_with(TAGGED, ["arn:aws:s3:::bucket"], "resources"), "resources.0: expected an EC2 instance ARN"),
    ],
)
def test_a_record_that_is_not_an_instance_event_is_rejected_alone(body: Any, problem: str) -> None:
    good = load_event("sqs_batch")["Records"][1]
    bad = _record_with(body) | {"messageId": "bad-1"}
    events = parse({"Records": [bad, good]}, TAG)
    assert list(events.rejected) == ["bad-1"]
    assert problem in events.rejected["bad-1"]
    assert [a.message_id for a in events.arrivals] == [good["messageId"]]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"Records": []}, "Records: expected a non-empty list of SQS records"),
        ({"Records": "x"}, "Records: expected a non-empty list of SQS records"),
        ({"Records": [{"body": "{}"}]}, "Records.0.messageId: expected the SQS message id"),
        ({"Records": [{"messageId": None, "body": "{}"}]}, "Records.0.messageId"),
        (
            _with(RUNNING, "EC2 Instance Launch Successful", "detail-type"),
            "detail-type: 'EC2 Instance Launch",
        ),
        (_with(RUNNING, None, "detail"), "detail: expected an object, got null"),
    ],
)
def test_an_invocation_that_cannot_be_read_is_rejected_whole(event: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidEvent, match=r"^invalid event: ") as rejected:
        parse(event, TAG)
    assert problem in str(rejected.value)


def test_records_of_two_queues_are_not_one_batch() -> None:
    records = load_event("sqs_batch")["Records"]
    other = records[1] | {"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:another"}
    with pytest.raises(InvalidEvent, match="records of one queue"):
        parse({"Records": [records[0], other]}, TAG)


def test_a_tag_event_naming_several_instances_puts_each_back_alone() -> None:
    event = load_event("tag_change_added")
    arns = [f"arn:aws:ec2:us-east-1:123456789012:instance/i-0000000000000000{n}" for n in (1, 2)]
    event["resources"] = arns
    first, second = parse(event, TAG).arrivals
    assert (first.instance_id, second.instance_id) == ("i-00000000000000001", "i-00000000000000002")
    assert json.loads(first.body)["resources"] == arns[:1]
    assert json.loads(second.body)["resources"] == arns[1:]


def test_run_requests_are_not_instance_events() -> None:
    for name in RUN_REQUEST_SAMPLES:
        assert not is_instance_event(load_event(name))
    assert not is_instance_event(["Records"])


def test_the_next_look_is_soon_and_never_far_past_the_bound() -> None:
    assert recheck_delay(900) == RECHECK_SECONDS
    assert recheck_delay(RECHECK_SECONDS + 0.5) == RECHECK_SECONDS
    assert recheck_delay(10.2) == 12  # just past the bound: the look that reports it
    assert recheck_delay(-3) == 0


def test_the_rules_patterns_match_what_the_parser_reads() -> None:
    """The stack's rules and the parser agree on which samples name an instance (moto's matcher)."""
    from moto.events.models import EventPattern  # noqa: PLC0415 - moto only here

    patterns = [
        EventPattern.load(json.dumps(contract.instance_running_pattern())),
        EventPattern.load(json.dumps(contract.tag_gained_pattern(TAG.key, TAG.values))),
    ]
    for sample in INSTANCE_EVENT_SAMPLES:
        event = load_event(sample)
        matched = any(pattern.matches_event(event) for pattern in patterns)
        assert matched == bool(parse(event, TAG).arrivals), sample
