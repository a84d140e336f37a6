"""SendCommand: the request's checks and who gets an invocation."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.localfleet.ssm.ssm_calls import command, error_code, invocations, send
from tests.support.ssm_emulator import DOCUMENT, client_for, instance_id, shell_document


def test_command_runs_on_every_instance_and_succeeds(ssm: Any, emulator: SsmEmulator) -> None:
    for number in (1, 2):
        emulator.register_instance(instance_id(number), CannedExecutor(stdout='{"outcome":"changed"}\n'))
    cloudwatch = {"CloudWatchLogGroupName": "/ecr-fleet-auth", "CloudWatchOutputEnabled": True}

    sent = ssm.send_command(
        InstanceIds=[instance_id(1), instance_id(2)],
        DocumentName=DOCUMENT,
        Comment="nightly refresh",
        CloudWatchOutputConfig=cloudwatch,
    )["Command"]
    assert emulator.wait_idle(5)

    assert sent["Status"] == "Pending"
    assert sent["TargetCount"] == 2
    finished = command(ssm, sent["CommandId"])
    assert (finished["Status"], finished["StatusDetails"]) == ("Success", "Success")
    assert (finished["CompletedCount"], finished["ErrorCount"]) == (2, 0)
    assert finished["Comment"] == "nightly refresh"
    assert finished["CloudWatchOutputConfig"] == cloudwatch
    assert (finished["MaxConcurrency"], finished["MaxErrors"]) == ("50", "0")
    for item in invocations(ssm, sent["CommandId"]).values():
        assert (item["Status"], item["StatusDetails"]) == ("Success", "Success")
        (plugin,) = item["CommandPlugins"]
        assert (plugin["Name"], plugin["ResponseCode"], plugin["Output"]) == (
            "linuxStep",
            0,
            '{"outcome":"changed"}\n',
        )
    result = ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId=instance_id(2))
    assert result["StandardOutputContent"] == '{"outcome":"changed"}\n'
    assert (result["Status"], result["ResponseCode"], result["PluginName"]) == ("Success", 0, "linuxStep")


def test_a_non_zero_exit_fails_the_invocation_and_the_command(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor(stderr="boom\n", exit_code=3))

    command_id = send(ssm, InstanceIds=[instance_id(1)])
    assert emulator.wait_idle(5)

    item = invocations(ssm, command_id)[instance_id(1)]
    assert (item["Status"], item["StatusDetails"], item["CommandPlugins"][0]["ResponseCode"]) == (
        "Failed",
        "Failed",
        3,
    )
    assert item["CommandPlugins"][0]["Output"] == "\n----------ERROR-------\nboom\n"
    finished = command(ssm, command_id)
    assert (finished["Status"], finished["ErrorCount"]) == ("Failed", 1)


@pytest.mark.parametrize(
    "request_targets",
    [
        {"InstanceIds": [instance_id(1)], "Targets": [{"Key": "tag:team", "Values": ["a"]}]},
        {},
    ],
    ids=["both", "neither"],
)
def test_exactly_one_of_instance_ids_and_targets(
    ssm: Any, emulator: SsmEmulator, request_targets: Any
) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor(), tags={"team": "a"})

    with pytest.raises(ClientError) as caught:
        send(ssm, **request_targets)

    assert error_code(caught) == "ValidationException"


def test_more_than_50_instance_ids_is_a_validation_exception(ssm: Any, emulator: SsmEmulator) -> None:
    fleet = [instance_id(n) for n in range(51)]
    for one in fleet:
        emulator.register_instance(one, CannedExecutor())

    with pytest.raises(ClientError) as caught:
        send(ssm, InstanceIds=fleet)
    accepted = send(ssm, InstanceIds=fleet[:50])

    assert error_code(caught) == "ValidationException"
    assert "instanceIds" in caught.value.response["Error"]["Message"]
    assert command(ssm, accepted)["TargetCount"] == 50


def test_more_than_5_targets_is_a_validation_exception(ssm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        send(ssm, Targets=[{"Key": f"tag:k{n}", "Values": ["v"]} for n in range(6)])

    assert error_code(caught) == "ValidationException"


def test_an_instance_that_is_not_managed_fails_the_whole_call(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor())

    with pytest.raises(ClientError) as caught:
        send(ssm, InstanceIds=[instance_id(1), instance_id(99)])

    assert error_code(caught) == "InvalidInstanceId"
    assert instance_id(99) in caught.value.response["Error"]["Message"]
    assert ssm.list_commands()["Commands"] == []


def test_tag_targets_reach_only_managed_instances_with_the_tag(ssm: Any, emulator: SsmEmulator) -> None:
    tagged, untagged = CannedExecutor(), CannedExecutor()
    emulator.register_instance(instance_id(1), tagged, tags={"ecr-fleet-auth": "enabled"})
    emulator.register_instance(instance_id(2), tagged, tags={"ecr-fleet-auth": "enabled"})
    emulator.register_instance(instance_id(3), untagged, tags={"ecr-fleet-auth": "disabled"})
    emulator.register_instance(instance_id(4), untagged)

    command_id = send(ssm, Targets=[{"Key": "tag:ecr-fleet-auth", "Values": ["enabled"]}])
    assert emulator.wait_idle(5)

    assert set(invocations(ssm, command_id)) == {instance_id(1), instance_id(2)}
    assert (tagged.runs, untagged.runs) == (2, 0)
    assert command(ssm, command_id)["InstanceIds"] == []  # a Targets command lists no ids


@pytest.mark.parametrize("state", ["shutting-down", "terminated"])
def test_tag_targets_leave_out_instances_that_are_gone(ssm: Any, emulator: SsmEmulator, state: str) -> None:
    # A terminated (or shutting-down) instance is no longer a target, even while SSM still
    # lists it Online (its ping status lags): it gets no invocation, not an Undeliverable one.
    executor = CannedExecutor()
    for number in (1, 2):
        emulator.register_instance(instance_id(number), executor, tags={"ecr-fleet-auth": "enabled"})
    emulator.register_instance(instance_id(3), executor, tags={"ecr-fleet-auth": "enabled"}, state=state)

    command_id = send(ssm, Targets=[{"Key": "tag:ecr-fleet-auth", "Values": ["enabled"]}])
    assert emulator.wait_idle(5)

    assert set(invocations(ssm, command_id)) == {instance_id(1), instance_id(2)}
    assert executor.runs == 2
    finished = command(ssm, command_id)
    assert (finished["Status"], finished["TargetCount"]) == ("Success", 2)


def test_tag_targets_use_the_given_resolver_and_skip_unmanaged_ids() -> None:
    def resolver(key: str, values: Any) -> list[str]:
        assert (key, list(values)) == ("ecr-fleet-auth", ["enabled"])
        return [instance_id(1), instance_id(50)]  # 50: an EC2 instance without the SSM agent

    with SsmEmulator(tag_resolver=resolver) as emulator:
        emulator.register_document(DOCUMENT, shell_document(["true"]))
        emulator.register_instance(instance_id(1), CannedExecutor())
        emulator.register_instance(instance_id(2), CannedExecutor())
        ssm = client_for(emulator)

        command_id = send(ssm, Targets=[{"Key": "tag:ecr-fleet-auth", "Values": ["enabled"]}])
        assert emulator.wait_idle(5)

        assert set(invocations(ssm, command_id)) == {instance_id(1)}
