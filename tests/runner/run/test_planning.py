"""Who is commanded, and how the rate budget is kept fleet-wide."""

from __future__ import annotations

import itertools

import pytest

from ecr_fleet_auth.aws.discovery import FleetMember, ManagedInfo
from ecr_fleet_auth.run.planning import (
    MAX_IDS_PER_COMMAND,
    Dispatch,
    budget,
    exclusion,
    halves,
    plan_dispatches,
    split,
)

LINUX = ManagedInfo("Online", "Linux", "Amazon Linux", "3.3.0.0")


@pytest.mark.parametrize(
    ("member", "status", "reason"),
    [
        (FleetMember("i-1", managed=LINUX), None, None),
        (FleetMember("i-1", exists=False, tagged=False, state=""), "skipped", "instance_not_found"),
        (FleetMember("i-1", tagged=False, managed=LINUX), "skipped", "not_target_tagged"),
        (FleetMember("i-1", state="stopped"), "unreachable", "instance_not_running"),
        (FleetMember("i-1"), "unreachable", "not_ssm_managed"),
        (
            FleetMember("i-1", managed=ManagedInfo("ConnectionLost", "Linux", "", "")),
            "unreachable",
            "ssm_connection_lost",
        ),
        (FleetMember("i-1", managed=ManagedInfo("Inactive", "Linux", "", "")), "unreachable", "ssm_inactive"),
        (
            FleetMember("i-1", managed=ManagedInfo("Online", "Windows", "Windows Server", "")),
            "skipped",
            "unsupported_platform",
        ),
    ],
)
def test_exclusion(member: FleetMember, status: str | None, reason: str | None) -> None:
    found = exclusion(member)
    assert (found and found.status, found and found.reason) == (status, reason)


def ids(count: int) -> list[str]:
    return [f"i-{number:017x}" for number in range(count)]


def test_whole_fleet_is_one_tag_targeted_command_with_the_configured_budget() -> None:
    plan = plan_dispatches(ids(5000), narrowed=False, max_concurrency="10%", max_errors="5%")
    (dispatch,) = plan.dispatches
    assert dispatch.by_tag
    assert (dispatch.max_concurrency, dispatch.max_errors) == ("10%", "5%")


def test_small_narrowed_run_is_one_id_command_with_the_configured_budget() -> None:
    plan = plan_dispatches(ids(50), narrowed=True, max_concurrency="10%", max_errors="1")
    (dispatch,) = plan.dispatches
    assert not dispatch.by_tag
    assert len(dispatch.instance_ids) == 50
    assert (dispatch.max_concurrency, dispatch.max_errors) == ("10%", "1")


def test_nothing_to_command_means_no_dispatch() -> None:
    assert plan_dispatches([], narrowed=False, max_concurrency="10%", max_errors="0").dispatches == []


@pytest.mark.parametrize(
    ("count", "concurrency", "errors"),
    list(
        itertools.product(
            [51, 120, 333, 1000], ["1", "2", "7", "10%", "50%", "100%", "500"], ["0", "1", "10%"]
        )
    ),
)
def test_large_narrowed_runs_keep_the_fleet_wide_promise(count: int, concurrency: str, errors: str) -> None:
    plan = plan_dispatches(ids(count), narrowed=True, max_concurrency=concurrency, max_errors=errors)
    dispatches = plan.dispatches
    commanded = [i for d in dispatches for i in d.instance_ids]
    assert sorted(commanded) == ids(count), "every instance exactly once"
    assert all(len(d.instance_ids) <= MAX_IDS_PER_COMMAND for d in dispatches)
    # Lanes run side by side, one batch at a time: their concurrencies add up to the budget.
    lane_concurrency = [int(lane[0].max_concurrency) for lane in plan.lanes]
    assert all(int(d.max_concurrency) == lane_concurrency[d.lane] for d in dispatches)
    assert sum(lane_concurrency) == max(1, budget(concurrency, count))
    assert min(lane_concurrency) >= 1
    assert sum(int(d.max_errors) for d in dispatches) == budget(errors, count)


def test_ten_percent_of_300_is_thirty_at_once_not_ten_percent_per_batch() -> None:
    plan = plan_dispatches(ids(300), narrowed=True, max_concurrency="10%", max_errors="10%")
    assert len(plan.lanes) == 6
    assert [d.max_concurrency for d in plan.dispatches] == ["5"] * 6
    assert sum(int(d.max_errors) for d in plan.dispatches) == 30


def test_a_budget_smaller_than_the_batch_count_queues_batches_in_lanes() -> None:
    plan = plan_dispatches(ids(120), narrowed=True, max_concurrency="2", max_errors="0")
    assert [[len(d.instance_ids) for d in lane] for lane in plan.lanes] == [[50, 20], [50]]
    assert {d.max_concurrency for d in plan.dispatches} == {"1"}


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [("10%", 300, 30), ("10%", 9, 0), ("100%", 7, 7), ("5", 3, 3), ("5", 300, 5), ("0", 10, 0)],
)
def test_budget(value: str, total: int, expected: int) -> None:
    assert budget(value, total) == expected


def test_split_adds_up_and_differs_by_at_most_one() -> None:
    for amount, parts in itertools.product(range(0, 40), range(1, 9)):
        shares = split(amount, parts)
        assert sum(shares) == amount
        assert max(shares) - min(shares) <= 1


@pytest.mark.parametrize(
    ("concurrency", "errors", "halved_concurrency", "halved_errors"),
    [
        ("5", "5", ["2", "3"], ["2", "3"]),
        ("10%", "10%", ["2", "3"], ["2", "3"]),
        ("1", "0", ["1", "1"], ["0", "0"]),
    ],
)
def test_halves_share_their_dispatchs_budgets_as_counts(
    concurrency: str, errors: str, halved_concurrency: list[str], halved_errors: list[str]
) -> None:
    # The halves of a refused dispatch may run at once: together they never exceed it (a
    # concurrency of 1 gives each half 1, and the lane's capacity makes them take turns).
    ids = tuple(f"i-{n:017x}" for n in range(50))
    dispatch = Dispatch(ids, False, concurrency, errors, lane=2, lookups_left=2)
    first, second = halves(dispatch, looked=True)
    assert first.instance_ids + second.instance_ids == ids
    assert [first.max_concurrency, second.max_concurrency] == halved_concurrency
    assert [first.max_errors, second.max_errors] == halved_errors
    assert (first.lane, first.lookups_left, first.halved) == (2, 1, True)
    assert halves(dispatch, looked=False)[0].lookups_left == 2
