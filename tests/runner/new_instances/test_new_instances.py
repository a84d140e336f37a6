"""New instances covered at once: instance events through the queue, run by ``handler.handler``.

EventBridge's events arrive as SQS batches through ``localfleet.composition.NewInstanceDelivery``
(the stack's rules, queue and event source mapping as the synthesized template configures
them, on the world's simulated clock); the runner answers with batch item failures, puts
back the events of instances not yet online itself (SendMessageBatch to the same simulated
queue), and runs the rest as one narrowed run.

The instance that never comes online is proven here, on the simulated clock (the readiness
bound is minutes long); the local fleet's end-to-end test covers the other cases for real.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from ecr_fleet_auth.aws import claims
from ecr_fleet_auth.aws.clients import Pair
from ecr_fleet_auth.new_instances.triggers import RECHECK_SECONDS, most_looks
from ecr_fleet_auth.shared.invocations import InvalidEvent
from ecr_fleet_auth.shared.report import Report
from localfleet.composition import NewInstanceDelivery
from localfleet.eventbridge.models import state_change_event, tag_change_event
from localfleet.harnesses.in_process_runner import capture_reports
from localfleet.hosts.canned_agent import CannedRun
from localfleet.identity import ACCOUNT
from localfleet.synthesized_stack import runner_function
from tests.support.event_samples import load_event
from tests.support.runner_world import CLAIM_TABLE, REGION, TAG_KEY, TAG_VALUE, World
from tests.support.template import Template, default_context

READINESS_SECONDS = default_context()["newInstanceReadinessSeconds"]


@pytest.fixture
def queue(world: World, synthesized_template: Template) -> NewInstanceDelivery:
    return NewInstanceDelivery.from_template(
        synthesized_template, world.clock, world.account.sqs, world.invoke
    )


def running_event(instance_id: str, moment: datetime, state: str = "running") -> dict[str, Any]:
    return state_change_event(instance_id, state, account=ACCOUNT, region=REGION, at=moment)


def tag_event(instance_id: str, moment: datetime, value: str | None = TAG_VALUE) -> dict[str, Any]:
    """The target tag set to ``value`` (None: removed)."""
    tags = {"Name": "web"} if value is None else {"Name": "web", TAG_KEY: value}
    return tag_change_event(instance_id, [TAG_KEY], tags, account=ACCOUNT, region=REGION, at=moment)


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[Report]:
    """Every run's report (a batch's answer to SQS is only its failures)."""
    return capture_reports(monkeypatch)


def statuses(report: Report) -> dict[str, tuple[str, str]]:
    return {i.instance_id: (i.status, str(i.reason)) for i in report.instances}


def sent_ids(world: World) -> list[list[str]]:
    return [sorted(request.get("InstanceIds", ["<by tag>"])) for request in world.ssm.sent("SendCommand")]


def test_a_batch_of_running_events_is_one_narrowed_run(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    new = world.launch(3)
    untagged = world.launch(tagged=False)[0]
    now = world.clock.now()
    queue.put(*(running_event(i, now) for i in new), running_event(new[0], now), running_event(untagged, now))

    assert queue.next_invocation().answer == {"batchItemFailures": []}

    (report,) = reports
    assert report.source == "instance_running"
    assert report.action == "refresh"  # newInstanceAction empty: the stack's action
    assert statuses(report) == dict.fromkeys(new, ("succeeded", "ok"))  # the untagged one is not ours
    assert sent_ids(world) == [sorted(new)]  # one SendCommand, each instance once
    assert world.ssm.sent("SendCommand")[0]["Parameters"]["Action"] == ["refresh"]
    assert world.engine.commanded(untagged) == 0
    assert queue.pending() == 0


def test_an_instance_not_yet_online_waits_in_the_queue_then_is_covered(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch(managed=False)  # running, its SSM agent not registered yet
    queue.put(running_event(new, world.clock.now()))

    assert queue.next_invocation().answer == {"batchItemFailures": []}
    assert reports == [] and world.ssm.sent("SendCommand") == []  # no run, no report: it waits
    assert queue.put_back_delays() == [RECHECK_SECONDS] and queue.pending() == 1

    world.come_online(new)
    queue.next_invocation()

    (report,) = reports
    assert statuses(report) == {new: ("succeeded", "ok")}
    assert report.source == "instance_running"
    assert world.engine.commanded(new) == 1
    assert queue.pending() == 0


def test_an_instance_never_online_is_reported_unreachable_once_after_the_bound(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch(managed=False)
    launched, since = world.clock.monotonic(), world.clock.now()
    queue.put(running_event(new, since))

    queue.run_until_idle()

    (report,) = reports
    (instance,) = report.instances
    assert (instance.status, instance.reason) == ("unreachable", "not_online_in_time")
    assert instance.detail["since"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Each look is a put-back's delay plus the batching window after the one before.
    cycle = RECHECK_SECONDS + queue.settings.gathering_seconds
    assert READINESS_SECONDS <= int(instance.detail["waited_seconds"]) <= READINESS_SECONDS + cycle
    assert world.clock.monotonic() - launched <= READINESS_SECONDS + 2 * cycle
    assert world.ssm.sent("SendCommand") == []
    looks = [i.started - launched for i in queue.invocations]
    assert looks[0] == queue.settings.gathering_seconds  # the first batch: once the window closed
    assert all(later - earlier <= cycle + 1 for earlier, later in itertools.pairwise(looks))
    assert len(queue.put_back_delays()) == len(looks) - 1  # the last look reports it: no put-back
    (notification,) = world.notifications()
    assert "not_online_in_time" in notification["Message"]


def test_a_never_online_instance_is_reported_once_at_its_bound_under_lambdas_recursion_guard(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    """Lambda Developer Guide, "Use Lambda recursive loop detection to prevent infinite loops": a
    function that sends to the SQS queue that invokes it is one chain of requests, and "If your function
    is invoked approximately 16 times in the same chain of requests, then Lambda automatically stops the
    next function invocation" (boto/boto3#3899; spacelift-io/terraform-aws-spacelift-workerpool-on-ec2
    #171, #199 and PR #200, where a re-queueing lifecycle Lambda met it). Looking every 30 s for 900 s
    is more than 15 invocations: the stack declares the loop (RecursiveLoop: Allow) and the runner ends
    it at the bound, so the instance is still reported, once, there."""
    assert queue.settings.recursive_loop == "Allow"  # the template says so to Lambda (and the simulator)
    (new,) = world.launch(managed=False)
    since = world.clock.now()
    queue.put(running_event(new, since))

    queue.run_until_idle()

    (report,) = reports
    (instance,) = report.instances
    assert (instance.status, instance.reason) == ("unreachable", "not_online_in_time")
    assert int(instance.detail["waited_seconds"]) >= READINESS_SECONDS
    assert max(i.lineage for i in queue.invocations) > 15  # beyond where Lambda would have stopped it
    assert queue.mapping.recursive_invocations_dropped == 0 and not any(i.stopped for i in queue.invocations)
    assert queue.dead_letters() == 0


def test_under_lambdas_default_guard_a_never_online_instance_would_never_be_reported(
    world: World, synthesized_template: Template, reports: list[Report]
) -> None:
    """Why the stack says Allow: with Lambda's default (RecursiveLoop: Terminate) the chain is stopped
    at its 16th invocation, minutes before the bound; the event is then blocked on every receive until
    SQS moves it to the dead letters (Lambda Developer Guide, same page), and nobody hears of the
    instance."""
    template = json.loads(json.dumps(synthesized_template))
    function = runner_function(template)
    function["Properties"]["RecursiveLoop"] = "Terminate"
    queue = NewInstanceDelivery.from_template(template, world.clock, world.account.sqs, world.invoke)
    (new,) = world.launch(managed=False)
    queue.put(running_event(new, world.clock.now()))

    queue.run_until_idle(most_seconds=12 * 3600)

    assert reports == []
    assert queue.mapping.recursive_invocations_dropped == queue.queue.max_receive_count
    assert queue.dead_letters() == 1


def test_an_event_that_never_ages_still_ends_its_chain_after_the_looks_its_bound_allows(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    """A loop allowed by design must end by design (Lambda Developer Guide, "Allowing a Lambda function
    to run in a recursive loop": "Implement best practice guard rails"): an event whose ``time`` lies in
    the future never reaches the readiness bound by the clock, so the looks counted on the message end
    the chain, and the instance is reported once."""
    (new,) = world.launch(managed=False)
    queue.put(running_event(new, world.clock.now() + timedelta(days=1)))

    queue.run_until_idle()

    (report,) = reports
    assert [(i.status, i.reason) for i in report.instances] == [("unreachable", "not_online_in_time")]
    assert len(queue.invocations) == most_looks(READINESS_SECONDS)
    assert len(queue.put_back_delays()) == len(queue.invocations) - 1  # put back after each look but the last


@pytest.mark.parametrize(
    "where",
    [("210987654321", REGION), (ACCOUNT, "us-east-1"), ("210987654321", "ap-southeast-2")],
    ids=["another account", "another region", "both"],
)
def test_in_a_single_account_stack_an_event_from_elsewhere_is_rejected_counted_and_logged(  # noqa: PLR0917 - fixtures
    world: World,
    queue: NewInstanceDelivery,
    reports: list[Report],
    where: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """EventBridge forwards events bus to bus across accounts and regions, keeping the source's
    ``account`` and ``region`` (EventBridge User Guide, "Sending and receiving events between AWS
    accounts"): someone's own rule may send another account's or region's launches to this stack's
    bus. A single-account stack cannot command them: the record goes back to SQS (and to the dead
    letters, where ``NewInstanceEventsLost`` sees it), ``InstanceEventsRejected`` counts it and the
    log names where it came from — never left out silently, nor looked for in the wrong place."""
    account, region = where
    (mine,) = world.launch()
    now = world.clock.now()
    foreign = state_change_event("i-0123456789abcdef0", "running", account=account, region=region, at=now)
    queue.put(running_event(mine, now), foreign)
    stray = next(m.message_id for m in queue.queue.messages if json.loads(m.body)["account"] == account
                 and json.loads(m.body)["region"] == region)  # fmt: skip
    capsys.readouterr()

    answer = queue.next_invocation().answer

    assert answer == {"batchItemFailures": [{"itemIdentifier": stray}]}
    assert [statuses(r) for r in reports] == [{mine: ("succeeded", "ok")}]
    assert world.ec2.sent("DescribeInstances")[0]["Filters"][0]["Values"] == [mine]  # not looked for here
    (warning,) = [r for r in caplog.records if "does not cover" in r.getMessage()]
    assert (warning.account_id, warning.region) == (account, region)  # type: ignore[attr-defined]
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert [d["InstanceEventsRejected"] for d in documents if "InstanceEventsRejected" in d] == [[1.0]]


@pytest.mark.parametrize(
    "where", [("222222222222", REGION), (ACCOUNT, "us-east-1")], ids=["account", "region"]
)
def test_an_event_delivered_directly_from_another_account_or_region_is_rejected_counted_and_logged(
    world: World,
    where: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same event invoked directly (a rule targeting the function, or a test invoke: Lambda
    Developer Guide, "Invoking Lambda with events from other AWS services"), with no queue to return
    it to: the answer names it rejected, ``InstanceEventsRejected`` counts it and the log says where
    it came from, as for a record of the queue."""
    account, region = where
    world.launch()
    foreign = state_change_event(
        "i-0123456789abcdef0", "running", account=account, region=region, at=world.clock.now()
    )
    capsys.readouterr()

    answer = world.invoke(foreign)

    assert answer == {
        "instances_left_out": {},
        "instances_rejected": {"i-0123456789abcdef0": f"{account}/{region}: not covered by this stack"},
    }
    assert world.ssm.sent("SendCommand") == []
    (warning,) = [r for r in caplog.records if "does not cover" in r.getMessage()]
    assert (warning.account_id, warning.region) == (account, region)  # type: ignore[attr-defined]
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert [d["InstanceEventsRejected"] for d in documents if "InstanceEventsRejected" in d] == [[1.0]]


def test_an_instance_online_late_within_the_bound_is_covered_when_it_comes_online(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch(managed=False)
    launched = world.clock.monotonic()
    queue.put(running_event(new, world.clock.now()))
    while world.clock.monotonic() - launched < 600:
        queue.next_invocation()
    assert reports == []
    world.come_online(new)
    queue.run_until_idle()
    (report,) = reports
    assert statuses(report) == {new: ("succeeded", "ok")}


def test_a_tag_change_event_covers_an_instance_tagged_after_launch(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (tagged_later,) = world.launch()  # EC2 and SSM see the tag now
    queue.put(tag_event(tagged_later, world.clock.now()))
    queue.next_invocation()
    (report,) = reports
    assert report.source == "tag_change"
    assert statuses(report) == {tagged_later: ("succeeded", "ok")}


def test_instances_that_are_not_ours_are_never_commanded_nor_reported(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    untagged = world.launch(tagged=False)[0]
    tag_removed_since = world.launch(tagged=False)[0]  # the event said tagged; EC2 says no more
    stopped = world.launch(running=False)[0]
    now = world.clock.now()
    queue.put(
        running_event(untagged, now),
        tag_event(tag_removed_since, now),
        tag_event(untagged, now, value=None),  # the tag removed: names no instance
        tag_event(untagged, now, value="disabled"),
        running_event(stopped, now),
    )
    assert queue.next_invocation().answer == {"batchItemFailures": []}
    assert reports == [] and world.ssm.sent("SendCommand") == [] and queue.pending() == 0


def test_repeated_events_and_both_rules_command_an_instance_once(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch()
    launched_at = world.clock.now()
    # Both rules match the launch (if AWS sends a tag event for tags given at launch).
    queue.put(running_event(new, launched_at), tag_event(new, launched_at))
    queue.next_invocation()
    (report,) = reports
    assert report.source == "instance_events"
    assert statuses(report) == {new: ("succeeded", "ok")}

    # The same events again later (SQS delivers at least once): the command covers them.
    world.clock.sleep(120)
    queue.put(running_event(new, launched_at), tag_event(new, launched_at))
    assert queue.next_invocation().answer == {"batchItemFailures": []}
    assert len(reports) == 1
    assert world.engine.commanded(new) == 1


def test_an_instance_a_scheduled_run_covered_after_its_event_is_left_out(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch()
    launched_at = world.clock.now()
    world.clock.sleep(10)
    world.invoke({"source": "schedule"})  # by tag: reaches the new instance too
    assert world.engine.commanded(new) == 1
    queue.put(running_event(new, launched_at))  # the event comes late (best-effort delivery)
    queue.next_invocation()
    assert [r.source for r in reports] == ["schedule"]
    assert world.engine.commanded(new) == 1


def test_an_instance_another_command_works_on_waits_until_it_ends(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch(agent=CannedRun(duration=100))
    launched_at = world.clock.now()
    # Someone checks it by hand (another action): still running when the event is read.
    world.invoke({"action": "check", "instance_ids": [new], "wait_seconds": 0})
    queue.put(running_event(new, launched_at))
    queue.next_invocation()
    assert [r.action for r in reports] == ["check"]  # it waits: not commanded while busy
    queue.run_until_idle()
    assert [(r.action, r.source) for r in reports] == [("check", "manual"), ("refresh", "instance_running")]
    assert statuses(reports[-1]) == {new: ("succeeded", "ok")}
    assert not world.account.agent_runs_overlap()


def test_new_instances_get_the_new_instance_action(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    world.configure(NEW_INSTANCE_ACTION="helper")
    (new,) = world.launch()
    queue.put(running_event(new, world.clock.now()))
    queue.next_invocation()
    assert reports[0].action == "helper"
    assert world.ssm.sent("SendCommand")[0]["Parameters"]["Action"] == ["helper"]


def test_records_that_are_not_instance_events_go_back_to_sqs_alone(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch()
    good = running_event(new, world.clock.now())
    queue.put(good, {**good, "time": None})
    queue.put_raw("not json")
    bad = {m.message_id for m in queue.queue.messages[1:]}
    answer = queue.next_invocation().answer
    assert {item["itemIdentifier"] for item in answer["batchItemFailures"]} == bad
    assert set(answer) == set(load_event("sqs_batch_response_partial"))
    assert statuses(reports[0]) == {new: ("succeeded", "ok")}


def test_a_run_that_fails_gives_its_records_back_for_redelivery(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch()
    queue.put(running_event(new, world.clock.now()))
    # The look before the run reads SSM once; the run's own discovery is then refused.
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if operation == "DescribeInstanceInformation" and number > 1 else None
    )
    answer = queue.next_invocation().answer
    (report,) = reports
    assert report.error is not None and report.error["code"] == "AccessDeniedException"
    assert [item["itemIdentifier"] for item in answer["batchItemFailures"]] == [
        m.message_id for m in queue.queue.messages
    ]


def test_an_event_delivered_directly_is_run_at_once_and_returns_the_report(world: World) -> None:
    (new,) = world.launch()
    (offline,) = world.launch(managed=False)
    now = world.clock.now()
    report = world.invoke(running_event(new, now))
    assert report["source"] == "instance_running"
    assert [(i["instance_id"], i["status"]) for i in report["instances"]] == [(new, "succeeded")]
    # No queue to wait in: reported as discovery finds it.
    report = world.invoke(running_event(offline, now))
    assert [(i["status"], i["reason"]) for i in report["instances"]] == [("unreachable", "not_ssm_managed")]
    (untagged,) = world.launch(tagged=False)
    assert world.invoke(running_event(untagged, now)) == {
        "instances_left_out": {untagged: "not_target_tagged"}
    }


def test_a_direct_event_that_is_not_an_instance_event_is_rejected(world: World) -> None:
    with pytest.raises(InvalidEvent, match="detail-type: 'Scheduled Event' is not accepted"):
        world.invoke({"detail-type": "Scheduled Event", "source": "aws.events"})


@pytest.mark.parametrize(("setting", "at_once"), [(None, 50), ("", 12), ("100%", 120)])
def test_a_run_of_instance_events_goes_at_the_new_instance_rate(
    world: World, queue: NewInstanceDelivery, reports: list[Report], setting: str | None, at_once: int
) -> None:
    """newInstanceMaxConcurrency (the template's default 50; empty: maxConcurrency, 10%) over the
    run's instances; maxErrors as for any run; a scheduled run keeps maxConcurrency."""
    if setting is not None:
        world.configure(NEW_INSTANCE_MAX_CONCURRENCY=setting)
    new = world.launch(120)
    # One poller, so that the 120 events make one batch, one run (two would share them out).
    queue.mapping.settings = dataclasses.replace(queue.settings, maximum_concurrency=1)
    queue.put(*(running_event(i, world.clock.now()) for i in new))
    queue.next_invocation()
    sent = world.ssm.sent("SendCommand")
    assert len(sent) == 3  # one lane per SendCommand of up to 50 ids: each lane's share of the rate
    assert sum(int(s["MaxConcurrency"]) for s in sent) == at_once
    assert sum(int(s["MaxErrors"]) for s in sent) == 12  # maxErrors 10% of the run's 120
    assert statuses(reports[0]) == dict.fromkeys(new, ("succeeded", "ok"))
    world.invoke({"source": "schedule"})
    assert world.ssm.sent("SendCommand")[-1]["MaxConcurrency"] == "10%"


# --- Two runs of instance events at once (issue 13's acceptance findings 1 and 2) ---------------
# The event source mapping runs two batches at once (the template's MaximumConcurrency) and its
# pollers read the queue side by side, so two records of one instance can land in two batches
# that start at the same moment (localfleet.lambda_runtime: event_source_mapping). Each batch looks before
# either sends; the claim table (moto's DynamoDB, created from the template: ``claims``) decides
# which run commands or reports the instance.

HOURS = 3600


def reported(reports: list[Report], instance_id: str) -> list[tuple[str, str, str]]:
    found = [(r.source, i) for r in reports for i in r.instances if i.instance_id == instance_id]
    return [(source, i.status, str(i.reason)) for source, i in found]


def claim_item(instance_id: str) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=CLAIM_TABLE, Key={claims.KEY: {"S": claims.claim_key(Pair(ACCOUNT, REGION), instance_id)}}
    )
    return item.get("Item", {})


def test_a_repeated_event_in_two_batches_at_once_commands_the_instance_once(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (mine,) = world.launch()
    filler = world.launch(30, tagged=False)  # other teams' launches
    now = world.clock.now()
    others = [running_event(i, now) for i in filler]
    # Pollers receive 10 messages a call: the two records of ours go to the two batches.
    queue.put(*others[:9], running_event(mine, now), running_event(mine, now), *others[9:])

    queue.run_until_idle()

    first, second = queue.invocations[:2]
    assert first.started == second.started  # two pollers, two batches, started together
    assert first.records and second.records
    assert world.engine.commanded(mine) == 1
    assert len(world.ssm.sent("SendCommand")) == 1
    assert reported(reports, mine) == [("instance_running", "succeeded", "ok")]
    assert claim_item(mine)["purpose"] == {"S": claims.COMMAND}
    assert world.api_calls["dynamodb.PutItem"] == 2  # each batch claimed it: one granted, one refused


def test_a_claim_holds_an_instance_id_only_in_its_own_account_and_region(world: World) -> None:
    """Amazon EC2 User Guide, "Resource locations": "Each resource identifier, such as an AMI ID,
    instance ID, EBS volume ID, or EBS snapshot ID, is tied to its Region and can be used only in
    the Region where you created the resource". AWS promises nothing about an instance id across
    accounts or Regions, so the harsher reading: one id may name two instances of an organization.
    A run of instance events covers every account and Region of it (the central queue), so a claim
    is keyed by ``<account>/<region>/<id>``: a claim on one does not hold the other, and a second
    claim on the same one is refused."""
    table = claims.InstanceClaims(boto3.client("dynamodb", region_name=REGION), CLAIM_TABLE)
    now = world.clock.now()
    one_id = "i-0123456789abcdef0"
    pairs = [Pair(ACCOUNT, REGION), Pair("111111111111", REGION), Pair(ACCOUNT, "ap-southeast-2")]
    wanted = [claims.Wanted(pair, one_id, now, claims.COMMAND) for pair in pairs]

    first = table.claim(wanted, now=now, deadline=now + timedelta(minutes=15), readiness_seconds=900)
    again = table.claim(wanted, now=now, deadline=now + timedelta(minutes=15), readiness_seconds=900)

    assert first.granted == tuple((pair, one_id) for pair in pairs) and not first.held
    assert again.granted == () and set(again.held) == {(pair, one_id) for pair in pairs}
    assert {held["account_id"] + "/" + held["region"] for held in again.held.values()} == {
        f"{pair.account}/{pair.region}" for pair in pairs
    }


@pytest.mark.parametrize("later", [0, 24, 75, 126])
def test_an_instance_never_online_is_reported_once_whatever_its_events(
    world: World, queue: NewInstanceDelivery, reports: list[Report], later: int
) -> None:
    """Its running event and its tag event wait in separate chains; only one reports it."""
    (new,) = world.launch(managed=False)
    queue.put(running_event(new, world.clock.now()))
    world.clock.sleep(later)
    queue.put(tag_event(new, world.clock.now()))

    queue.run_until_idle()

    ((_, status, reason),) = reported(reports, new)
    assert (status, reason) == ("unreachable", "not_online_in_time")
    assert len(world.notifications()) == 1
    assert world.ssm.sent("SendCommand") == []


def test_every_event_twice_in_a_burst_commands_and_reports_each_instance_once(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    online, offline = world.launch(40), world.launch(10, name="late", managed=False)
    now = world.clock.now()
    events = [running_event(i, now) for i in online + offline]
    queue.put(*events, *events)

    queue.run_until_idle()

    assert all(world.engine.commanded(i) == 1 for i in online)
    outcomes = Counter((i.status, str(i.reason)) for r in reports for i in r.instances)
    assert outcomes == {("succeeded", "ok"): 40, ("unreachable", "not_online_in_time"): 10}
    assert not any(a.locked_runs for a in world.account.agents.values())


def test_an_instance_started_again_hours_later_is_commanded_again(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch()
    queue.put(running_event(new, world.clock.now()))
    queue.run_until_idle()
    world.clock.sleep(3 * HOURS)  # stopped and started again: a new event, after the claim

    queue.put(running_event(new, world.clock.now()))
    queue.run_until_idle()

    assert world.engine.commanded(new) == 2
    assert reported(reports, new) == [("instance_running", "succeeded", "ok")] * 2


def test_a_claim_left_by_a_run_that_crashed_blocks_its_events_only_until_it_expires(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    (new,) = world.launch()
    event_time = world.clock.now()
    world.clock.sleep(5)
    # A run claimed it for this event, then crashed before sending (its records come back later).
    crashed = world.clock.now()
    expires = crashed + timedelta(seconds=900 + claims.MARGIN_SECONDS)
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=CLAIM_TABLE,
        Item={
            claims.KEY: {"S": claims.claim_key(Pair(ACCOUNT, REGION), new)},
            "claimed_at": {"N": str(crashed.timestamp())},
            "event_time": {"N": str(event_time.timestamp())},
            "purpose": {"S": claims.COMMAND},
            claims.TTL_ATTRIBUTE: {"N": str(int(expires.timestamp()))},
        },
    )
    queue.put(running_event(new, event_time))  # another copy of the event, while the claim holds
    queue.run_until_idle()
    assert world.engine.commanded(new) == 0 and reports == []  # left out: the claim's run reports it

    world.clock.sleep((expires - world.clock.now()).total_seconds() + 1)
    assert claim_item(new)  # DynamoDB has not deleted it (TTL deletes days later): still there
    queue.put(running_event(new, event_time))  # the crashed run's record, delivered again
    queue.run_until_idle()

    assert world.engine.commanded(new) == 1
    assert reported(reports, new) == [("instance_running", "succeeded", "ok")]


def test_a_claim_table_that_refuses_does_not_stop_the_run(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    world.account.dynamodb_endpoint.fault = lambda operation, number, params: "AccessDeniedException"
    (new,) = world.launch()
    queue.put(running_event(new, world.clock.now()))

    queue.run_until_idle()

    assert reported(reports, new) == [("instance_running", "succeeded", "ok")]  # the lock is the last line


def test_a_new_instances_command_refused_rate_exceeded_is_put_back_and_commanded_on_the_next_look(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    """SSM User Guide, "Understanding command statuses": Rate Exceeded — "The number of managed nodes
    targeted by the command exceeded the account limit for pending invocations. The system has
    canceled the command before running it on any managed node"; the pending invocations are every
    command's in the account and Region, so the refusal passes as they finish. Nothing ran: the
    event is put back (``RECHECK_SECONDS``, one more look on its chain) instead of being consumed
    with a failure whose "next run" is the next schedule, and the instance is reported once, by the
    run that commands it; its claim (``claims``) does not keep that run from commanding it."""
    world.engine.pending_invocation_limit = 0  # every command now is over the account's limit
    (new,) = world.launch()
    queue.put(running_event(new, world.clock.now()))

    assert queue.next_invocation().answer == {"batchItemFailures": []}
    assert [r.instances for r in reports] == [()]  # nothing reported yet: it comes again
    assert len(world.ssm.sent("SendCommand")) == 1  # sent, and refused: Rate Exceeded
    assert queue.put_back_delays() == [RECHECK_SECONDS] and queue.pending() == 1
    assert world.engine.commanded(new) == 0

    world.engine.pending_invocation_limit = None  # the other commands finished
    assert queue.next_invocation().answer == {"batchItemFailures": []}

    assert [statuses(r) for r in reports if r.instances] == [{new: ("succeeded", "ok")}]
    assert world.engine.commanded(new) == 1 and len(world.ssm.sent("SendCommand")) == 2
    assert queue.pending() == 0


def test_a_new_instance_whose_commands_stay_rate_exceeded_is_reported_once_when_its_chain_ends(
    world: World, queue: NewInstanceDelivery, reports: list[Report]
) -> None:
    """The retries are the chain of put-backs every new instance's events keep to (``most_looks``,
    within Lambda's recursive loop bound as the stack declares it): past it the instance is reported
    failed / rate_exceeded once, with the command's detail, and its record is done with."""
    world.engine.pending_invocation_limit = 0
    (new,) = world.launch()
    queue.put(running_event(new, world.clock.now()))

    queue.run_until_idle()

    reported = [(i.instance_id, i.status, str(i.reason)) for r in reports for i in r.instances]
    assert reported == [(new, "failed", "rate_exceeded")]
    assert len(queue.invocations) == most_looks(READINESS_SECONDS)  # the look that reports it is the last
    assert all(answer == {"batchItemFailures": []} for answer in queue.answers())
    assert queue.pending() == 0 and world.engine.commanded(new) == 0
