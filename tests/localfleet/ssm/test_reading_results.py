"""Reading results: GetCommandInvocation, ListCommands, ListCommandInvocations, output limits."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.localfleet.ssm.gated_executor import GatedExecutor
from tests.localfleet.ssm.ssm_calls import command, error_code, invocations, send
from tests.support.ssm_emulator import instance_id


def test_an_invocation_in_progress_shows_no_output_yet(ssm: Any, emulator: SsmEmulator) -> None:
    gate = GatedExecutor()
    emulator.register_instance(instance_id(1), gate)

    command_id = send(ssm, InstanceIds=[instance_id(1)])
    assert gate.wait_running(1)
    during = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1))
    in_progress = command(ssm, command_id)
    gate.release.set()
    assert emulator.wait_idle(5)

    assert (during["Status"], during["StatusDetails"], during["ResponseCode"]) == (
        "InProgress",
        "In Progress",
        -1,
    )
    assert during["StandardOutputContent"] == ""
    assert in_progress["Status"] == "InProgress"


def test_output_is_cut_to_the_services_limits(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor(stdout="o" * 30_000, stderr="e" * 10_000))
    emulator.register_instance(instance_id(2), CannedExecutor(stdout="o" * 100, stderr="e" * 10_000))

    command_id = send(ssm, InstanceIds=[instance_id(1), instance_id(2)])
    assert emulator.wait_idle(5)

    full = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1))
    assert len(full["StandardOutputContent"]) == 24_000
    assert len(full["StandardErrorContent"]) == 8_000
    found = invocations(ssm, command_id)
    both_long = found[instance_id(1)]["CommandPlugins"][0]["Output"]
    assert len(both_long) <= 2_500
    assert both_long.startswith("o" * 1_000)
    assert "---Output truncated---\n----------ERROR-------\neee" in both_long
    short_stdout = found[instance_id(2)]["CommandPlugins"][0]["Output"]
    assert len(short_stdout) <= 2_500
    assert short_stdout.startswith("o" * 100 + "\n----------ERROR-------\neee")  # short stdout kept whole


def test_get_command_invocation_for_an_unknown_pair_is_invocation_does_not_exist(
    ssm: Any, emulator: SsmEmulator
) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor())
    command_id = send(ssm, InstanceIds=[instance_id(1)])

    with pytest.raises(ClientError) as wrong_instance:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(2))
    with pytest.raises(ClientError) as wrong_command:
        ssm.get_command_invocation(
            CommandId="00000000-0000-0000-0000-000000000000", InstanceId=instance_id(1)
        )
    with pytest.raises(ClientError) as wrong_plugin:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1), PluginName="nope")

    assert error_code(wrong_instance) == error_code(wrong_command) == "InvocationDoesNotExist"
    assert error_code(wrong_plugin) == "InvalidPluginName"


def test_list_commands_pages_and_filters(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor())
    emulator.register_instance(instance_id(2), CannedExecutor(exit_code=1))
    sent = [send(ssm, InstanceIds=[instance_id(1)]) for _ in range(3)]
    failed = send(ssm, InstanceIds=[instance_id(2)])
    assert emulator.wait_idle(5)

    first = ssm.list_commands(MaxResults=3)
    second = ssm.list_commands(MaxResults=3, NextToken=first["NextToken"])
    newest_first = [c["CommandId"] for c in first["Commands"] + second["Commands"]]
    assert newest_first == [failed, *reversed(sent)]
    assert "NextToken" not in second
    by_status = ssm.list_commands(Filters=[{"key": "Status", "value": "Failed"}])["Commands"]
    assert [c["CommandId"] for c in by_status] == [failed]
    by_instance = ssm.list_commands(InstanceId=instance_id(2))["Commands"]
    assert [c["CommandId"] for c in by_instance] == [failed]
    complete = ssm.list_commands(Filters=[{"key": "ExecutionStage", "value": "Complete"}])["Commands"]
    assert len(complete) == 4
    with pytest.raises(ClientError) as unknown:
        ssm.list_commands(CommandId="00000000-0000-0000-0000-000000000000")
    assert error_code(unknown) == "InvalidCommandId"


def test_list_command_invocations_pages_by_at_most_50(ssm: Any, emulator: SsmEmulator) -> None:
    fleet = [instance_id(n) for n in range(50)]
    for one in fleet:
        emulator.register_instance(one, CannedExecutor(stdout="x"))
    command_id = send(ssm, InstanceIds=fleet)
    assert emulator.wait_idle(5)

    first = ssm.list_command_invocations(CommandId=command_id, MaxResults=30)
    second = ssm.list_command_invocations(CommandId=command_id, MaxResults=30, NextToken=first["NextToken"])
    one = ssm.list_command_invocations(CommandId=command_id, InstanceId=fleet[7], Details=True)

    listed = [i["InstanceId"] for i in first["CommandInvocations"] + second["CommandInvocations"]]
    assert listed == fleet
    assert "NextToken" not in second
    assert first["CommandInvocations"][0]["CommandPlugins"] == []  # no plugin details without Details=true
    (only,) = one["CommandInvocations"]
    assert (only["InstanceId"], only["CommandPlugins"][0]["Output"]) == (fleet[7], "x")
