"""MaxConcurrency, MaxErrors, the delivery deadline and CancelCommand."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.localfleet.ssm.gated_executor import GatedExecutor
from tests.localfleet.ssm.ssm_calls import command, error_code, invocations, send, wait_for_details
from tests.support.ssm_emulator import DOCUMENT, client_for, instance_id, shell_document


@pytest.mark.parametrize(("max_concurrency", "expected_peak"), [("2", 2), ("50%", 3)])
def test_max_concurrency_bounds_the_whole_command(
    ssm: Any, emulator: SsmEmulator, max_concurrency: str, expected_peak: int
) -> None:
    gate = GatedExecutor()
    fleet = [instance_id(n) for n in range(6)]
    for one in fleet:
        emulator.register_instance(one, gate)

    command_id = send(ssm, InstanceIds=fleet, MaxConcurrency=max_concurrency)
    assert gate.wait_running(expected_peak)
    statuses = [item["Status"] for item in invocations(ssm, command_id).values()]
    gate.release.set()
    assert emulator.wait_idle(5)

    assert sorted(statuses).count("InProgress") == expected_peak
    assert statuses.count("Pending") == 6 - expected_peak
    assert gate.peak == expected_peak
    assert command(ssm, command_id)["Status"] == "Success"


def test_max_errors_stops_sending_to_further_instances(ssm: Any, emulator: SsmEmulator) -> None:
    failing = CannedExecutor(exit_code=1)
    fleet = [instance_id(n) for n in range(5)]
    for one in fleet:
        emulator.register_instance(one, failing)

    command_id = send(ssm, InstanceIds=fleet, MaxConcurrency="1", MaxErrors="1")
    assert emulator.wait_idle(5)

    found = invocations(ssm, command_id)
    # One error is allowed; the second exceeds MaxErrors and nothing more is sent.
    assert [found[one]["StatusDetails"] for one in fleet] == ["Failed", "Failed"] + ["Terminated"] * 3
    assert failing.runs == 2
    finished = command(ssm, command_id)
    assert (finished["Status"], finished["ErrorCount"], finished["CompletedCount"]) == ("Failed", 2, 5)


def test_errors_within_max_errors_let_the_command_finish_incomplete(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor(exit_code=1))
    emulator.register_instance(instance_id(2), CannedExecutor())

    command_id = send(ssm, InstanceIds=[instance_id(1), instance_id(2)], MaxErrors="50%")
    assert emulator.wait_idle(5)

    finished = command(ssm, command_id)
    assert (finished["Status"], finished["StatusDetails"], finished["ErrorCount"]) == (
        "Failed",
        "Incomplete",
        1,
    )


def test_invocations_queued_past_the_delivery_timeout_never_run() -> None:
    # The deadline: TimeoutSeconds plus the step's 30-s timeout, scaled to 0.6 s.
    with SsmEmulator(delivery_time_scale=0.01) as emulator:
        emulator.register_document(DOCUMENT, shell_document(["true"], timeout_seconds=30))
        gate = GatedExecutor()
        emulator.register_instance(instance_id(1), gate)
        emulator.register_instance(instance_id(2), gate)
        ssm = client_for(emulator)

        command_id = send(
            ssm, InstanceIds=[instance_id(1), instance_id(2)], MaxConcurrency="1", TimeoutSeconds=30
        )
        assert gate.wait_running(1)
        # The second waits behind MaxConcurrency=1 until the (scaled) deadline, while the first still runs.
        assert wait_for_details(ssm, command_id, instance_id(2), "Delivery Timed Out")
        gate.release.set()
        assert emulator.wait_idle(5)

        assert invocations(ssm, command_id)[instance_id(1)]["StatusDetails"] == "Success"
        assert gate.started == 1


def test_cancel_command_cancels_invocations_not_yet_delivered(ssm: Any, emulator: SsmEmulator) -> None:
    never_runs = CannedExecutor()
    emulator.register_instance(instance_id(1), never_runs, delivery_delay=30)
    emulator.register_instance(instance_id(2), never_runs, delivery_delay=30)

    command_id = send(ssm, InstanceIds=[instance_id(1), instance_id(2)], TimeoutSeconds=60)
    ssm.cancel_command(CommandId=command_id)
    assert emulator.wait_idle(5)

    assert {item["Status"] for item in invocations(ssm, command_id).values()} == {"Cancelled"}
    assert command(ssm, command_id)["Status"] == "Cancelled"
    assert never_runs.runs == 0


def test_cancel_command_cancels_queued_invocations_at_once(ssm: Any, emulator: SsmEmulator) -> None:
    gate = GatedExecutor()
    fleet = [instance_id(n) for n in range(3)]
    for one in fleet:
        emulator.register_instance(one, gate)

    command_id = send(ssm, InstanceIds=fleet, MaxConcurrency="1")
    assert gate.wait_running(1)
    ssm.cancel_command(CommandId=command_id)
    during = invocations(ssm, command_id)
    while_running = command(ssm, command_id)["Status"]
    gate.release.set()
    assert emulator.wait_idle(5)

    assert [during[one]["StatusDetails"] for one in fleet] == ["In Progress", "Cancelled", "Cancelled"]
    assert while_running == "Cancelling"
    assert command(ssm, command_id)["Status"] == "Cancelled"
    assert gate.started == 1


def test_cancel_errors(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor())
    command_id = send(ssm, InstanceIds=[instance_id(1)])
    assert emulator.wait_idle(5)

    with pytest.raises(ClientError) as unknown_command:
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ClientError) as not_a_target:
        ssm.cancel_command(CommandId=command_id, InstanceIds=[instance_id(2)])

    assert error_code(unknown_command) == "InvalidCommandId"
    assert error_code(not_a_target) == "InvalidInstanceId"
