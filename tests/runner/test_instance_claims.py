"""Two runs of instance events at once: an instance is commanded once, reported once (``claims``).

The event source mapping runs two batches at once (the template's ``MaximumConcurrency``), and
its pollers read the queue side by side, so two records of one instance can land in two batches
that start at the same moment (``localfleet.events.event_source_mapping``). Each batch looks
before either sends; the claim table (moto's DynamoDB, created from the template) decides who
commands or reports the instance. These are the acceptance probes of issue 13 (findings 1 and 2).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from ecr_fleet_auth import claims
from ecr_fleet_auth.report import Report
from localfleet.events import NewInstanceDelivery
from tests.runner.conftest import CLAIM_TABLE, REGION, World
from tests.runner.test_new_instances import (  # noqa: F401 - fixtures
    READINESS_SECONDS,
    queue,
    reports,
    running_event,
    tag_event,
)

HOURS = 3600


def reported(reports: list[Report], instance_id: str) -> list[tuple[str, str, str]]:
    return [(r.source, i.status, str(i.reason)) for r in reports for i in r.instances if i.instance_id == instance_id]


def claim_item(instance_id: str) -> dict[str, Any]:
    item: dict[str, Any] = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=CLAIM_TABLE, Key={claims.KEY: {"S": instance_id}}
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
            claims.KEY: {"S": new},
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
