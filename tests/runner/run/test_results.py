"""Reading the agent's result line and mapping Run Command's statuses to the contract's."""

from __future__ import annotations

import pytest

from ecr_fleet_auth.aws.run_command import Invocation
from ecr_fleet_auth.run.results import SSM_STATUS_DETAILS, AgentResult, instance_result, needs_full_output
from ecr_fleet_auth.shared import contract
from localfleet.hosts.canned_agent import result_line


def invocation(status: str, details: str, output: str = "", code: int | None = None) -> Invocation:
    return Invocation("cmd-1", "i-0123456789abcdef0", "web-1", status, details, output, code)


def test_result_line_is_found_after_stderr_and_other_json() -> None:
    output = "\n".join(
        [
            '{"progress": 1}',
            result_line("unchanged", "ok", "already logged in"),
            "----------ERROR-------",
            "docker: some warning",
            '{"schema": 2, "outcome": "changed", "reason": "ok"}',
        ]
    )
    assert AgentResult.parse(output) == AgentResult("unchanged", "ok", "already logged in")


@pytest.mark.parametrize(
    "output",
    [
        "",
        "not json at all",
        '{"schema": 1, "outcome": "changed", "reason": "ok"',  # cut off by the 2,500-character listing
        '["schema", 1]',
        '{"schema": "1", "outcome": "changed", "reason": "ok"}',
        '{"schema": 1, "outcome": "exploded", "reason": "ok"}',
        '{"schema": 1, "outcome": "changed"}',
    ],
)
def test_unusable_output_has_no_result(output: str) -> None:
    assert AgentResult.parse(output) is None


@pytest.mark.parametrize(
    ("status", "details", "outcome", "expected"),
    [
        ("Success", "Success", "changed", ("succeeded", "ok")),
        ("Success", "Success", "unchanged", ("succeeded", "ok")),
        ("Success", "Success", "skipped", ("skipped", "unsupported_os")),
        ("Failed", "Failed", "failed", ("failed", "login_failed")),
        ("Success", "Success", None, ("failed", "output_unparseable")),
        ("Failed", "Failed", None, ("failed", "command_failed")),
        ("Pending", "Pending", None, ("pending", "not_yet_delivered")),
        ("InProgress", "In Progress", None, ("pending", "in_progress")),
        ("Delayed", "Delayed", None, ("pending", "delivery_delayed")),
        ("Cancelling", "Cancelling", None, ("pending", "cancelling")),
        ("TimedOut", "Delivery Timed Out", None, ("unreachable", "delivery_timed_out")),
        ("Failed", "Undeliverable", None, ("unreachable", "undeliverable")),
        ("TimedOut", "Execution Timed Out", None, ("failed", "execution_timed_out")),
        ("TimedOut", "", None, ("failed", "timed_out")),
        ("Cancelled", "Cancelled", None, ("failed", "cancelled")),
        ("Cancelled", "Terminated", None, ("failed", "stopped_by_max_errors")),
        ("Failed", "Access Denied", None, ("failed", "access_denied")),
        ("Failed", "Invalid Platform", None, ("skipped", "unsupported_platform")),
        ("Mystery", "Something New", None, ("failed", "unknown_ssm_status")),
    ],
)
def test_every_run_command_status_maps_to_a_contract_status(
    status: str, details: str, outcome: str | None, expected: tuple[str, str]
) -> None:
    reasons = {"changed": "ok", "unchanged": "ok", "skipped": "unsupported_os", "failed": "login_failed"}
    output = result_line(outcome, reasons[outcome], "said the agent") if outcome else ""
    result = instance_result(invocation(status, details, output), AgentResult.parse(output))
    assert (result.status, result.reason) == expected
    assert result.status in contract.INSTANCE_STATUSES
    assert result.outcome == outcome
    assert result.detail["command_id"] == "cmd-1"
    assert result.name == "web-1"


def test_agent_line_is_ignored_while_the_command_has_not_finished() -> None:
    # A stale line in a cancelled invocation must not turn it into a success.
    line = result_line("changed", "ok")
    result = instance_result(invocation("Cancelled", "Cancelled", line), AgentResult.parse(line))
    assert (result.status, result.reason) == ("failed", "cancelled")


def test_every_status_detail_lands_on_a_contract_status() -> None:
    assert {status for status, _ in SSM_STATUS_DETAILS.values()} <= set(contract.INSTANCE_STATUSES)


def test_full_output_is_fetched_only_when_the_agent_finished_and_the_line_is_missing() -> None:
    assert needs_full_output(invocation("Success", "Success", "x" * 2500))
    assert needs_full_output(invocation("Failed", "Failed", ""))
    assert not needs_full_output(invocation("Success", "Success", result_line()))
    assert not needs_full_output(invocation("TimedOut", "Delivery Timed Out", ""))
    assert not needs_full_output(invocation("InProgress", "In Progress", ""))
