"""The decision for each instance an instance event named (``readiness.triage``), case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecr_fleet_auth.aws.discovery import FleetMember, ManagedInfo
from ecr_fleet_auth.new_instances.readiness import NOT_FOUND_GRACE_SECONDS, Triage, triage

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
BOUND = 900
ID = "i-0123456789abcdef0"
ONLINE = ManagedInfo("Online", "Linux", "Amazon Linux", "3.3.0.0")
LOST = ManagedInfo("ConnectionLost", "Linux", "Amazon Linux", "3.3.0.0")


def _decide(
    member: FleetMember | None,
    *,
    ago: float = 10,
    busy: bool = False,
    covered: bool = False,
    can_wait: bool = True,
) -> Triage:
    return triage(
        [member] if member else [],
        {ID: NOW - timedelta(seconds=ago)},
        busy={ID: "command-1"} if busy else {},
        covered={ID: "command-2"} if covered else {},
        now=NOW,
        bound_seconds=BOUND,
        can_wait=can_wait,
    )


def _outcome(decided: Triage) -> str:
    if ID in decided.overdue:
        return "overdue"
    if ID in decided.waiting:
        return "wait"
    if ID in decided.left_out:
        return decided.left_out[ID]
    return "run" if decided.run == [ID] else "?"


@pytest.mark.parametrize(
    ("member", "options", "expected"),
    [
        (FleetMember(ID, managed=ONLINE), {}, "run"),
        (FleetMember(ID, managed=ONLINE), {"covered": True}, "already_covered"),
        (FleetMember(ID, managed=ONLINE), {"covered": True, "busy": True}, "already_covered"),
        (FleetMember(ID, managed=ONLINE), {"busy": True}, "wait"),
        (FleetMember(ID, managed=ONLINE), {"busy": True, "ago": BOUND}, "run"),  # the run reports it busy
        (FleetMember(ID, managed=ONLINE), {"busy": True, "can_wait": False}, "run"),
        (FleetMember(ID, managed=None), {}, "wait"),  # not registered with SSM yet
        (FleetMember(ID, managed=LOST), {}, "wait"),  # a restarted instance, its agent not back yet
        (FleetMember(ID, state="pending"), {}, "wait"),  # EC2 still says pending
        (FleetMember(ID, managed=None), {"ago": BOUND - 1}, "wait"),
        (FleetMember(ID, managed=None), {"ago": BOUND}, "overdue"),
        (FleetMember(ID, state="pending"), {"ago": BOUND + 40}, "overdue"),
        (FleetMember(ID, managed=None), {"can_wait": False}, "run"),  # delivered directly: no queue
        (FleetMember(ID, tagged=False, managed=ONLINE), {}, "not_target_tagged"),
        (FleetMember(ID, state="stopped"), {}, "instance_not_running"),
        (FleetMember(ID, state="terminated"), {}, "instance_not_running"),
        (None, {}, "wait"),  # EC2 does not list it yet (eventually consistent)
        (None, {"ago": NOT_FOUND_GRACE_SECONDS}, "instance_not_found"),
        (None, {"can_wait": False}, "instance_not_found"),
        (FleetMember(ID, exists=False, tagged=False, state=""), {}, "wait"),
    ],
)
def test_each_case(member: FleetMember | None, options: dict[str, object], expected: str) -> None:
    assert _outcome(_decide(member, **options)) == expected  # type: ignore[arg-type]


def test_overdue_says_since_when_and_how_long_it_was_waited_for() -> None:
    decided = _decide(FleetMember(ID, managed=None), ago=BOUND + 12.7)
    assert decided.run == [ID]  # run once more: the run reports it (or commands it, if online by then)
    assert decided.overdue[ID] == {"since": "2026-11-27T05:44:47Z", "waited_seconds": BOUND + 12}


def test_the_wait_is_bounded_by_what_is_left() -> None:
    assert _decide(FleetMember(ID, managed=None), ago=100).waiting[ID] == BOUND - 100
    assert _decide(None, ago=100).waiting[ID] == NOT_FOUND_GRACE_SECONDS - 100
