"""SendCommand and what follows it: targets, statuses, rate control, output and cancellation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet import CannedExecutor, SsmEmulator, SubprocessExecutor
from tests.localfleet.conftest import DOCUMENT, client_for, instance_id, shell_document
from tests.localfleet.executors_for_tests import GatedExecutor


def send(ssm: Any, **request: Any) -> str:
    command_id: str = ssm.send_command(DocumentName=request.pop("DocumentName", DOCUMENT), **request)[
        "Command"
    ]["CommandId"]
    return command_id


def command(ssm: Any, command_id: str) -> dict[str, Any]:
    (found,) = ssm.list_commands(CommandId=command_id)["Commands"]
    return dict(found)


def invocations(ssm: Any, command_id: str) -> dict[str, dict[str, Any]]:
    pages = ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=True)
    return {item["InstanceId"]: item for page in pages for item in page["CommandInvocations"]}


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = caught.value.response["Error"]["Code"]
    return code


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


def test_offline_instances_are_undeliverable(ssm: Any, emulator: SsmEmulator) -> None:
    offline = CannedExecutor()
    emulator.register_instance(instance_id(1), CannedExecutor())
    emulator.register_instance(instance_id(2), offline, ping_status="ConnectionLost")
    emulator.register_instance(instance_id(3), offline, ping_status="Inactive")

    command_id = send(ssm, InstanceIds=[instance_id(1), instance_id(2), instance_id(3)])
    assert emulator.wait_idle(5)

    found = invocations(ssm, command_id)
    for number in (2, 3):
        item = found[instance_id(number)]
        assert (item["Status"], item["StatusDetails"]) == ("Failed", "Undeliverable")
        assert item["CommandPlugins"][0]["ResponseCode"] == -1
    assert offline.runs == 0
    # Undeliverable invocations neither count as errors nor stop the command succeeding.
    finished = command(ssm, command_id)
    assert (finished["Status"], finished["ErrorCount"], finished["CompletedCount"]) == ("Success", 0, 3)


def test_delivery_timed_out_when_the_agent_does_not_pick_the_command_up() -> None:
    # TimeoutSeconds has a model minimum of 30; the scale makes those 30 s last 0.3 s.
    with SsmEmulator(delivery_time_scale=0.01) as emulator:
        emulator.register_document(DOCUMENT, shell_document(["true"]))
        slow = CannedExecutor()
        emulator.register_instance(instance_id(1), CannedExecutor())
        emulator.register_instance(instance_id(2), slow, delivery_delay=30)
        ssm = client_for(emulator)

        command_id = send(ssm, InstanceIds=[instance_id(1), instance_id(2)], TimeoutSeconds=30)
        assert emulator.wait_idle(5)

        found = invocations(ssm, command_id)
        assert found[instance_id(1)]["StatusDetails"] == "Success"
        late = found[instance_id(2)]
        assert (late["Status"], late["StatusDetails"]) == ("TimedOut", "Delivery Timed Out")
        assert slow.runs == 0
        finished = command(ssm, command_id)
        assert (finished["Status"], finished["StatusDetails"]) == ("TimedOut", "Delivery Timed Out")
        assert (finished["DeliveryTimedOutCount"], finished["ErrorCount"]) == (1, 0)


def test_a_short_delivery_delay_still_delivers(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor(), delivery_delay=0.05)

    command_id = send(ssm, InstanceIds=[instance_id(1)], TimeoutSeconds=30)
    assert emulator.wait_idle(5)

    assert invocations(ssm, command_id)[instance_id(1)]["StatusDetails"] == "Success"


def test_execution_timed_out_kills_the_script_and_its_children(
    ssm: Any, emulator: SsmEmulator, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    emulator.register_document(
        "Sleepy-Doc",
        shell_document(["sleep 30 &", f"echo $! > {pid_file}", "echo started", "wait"], timeout_seconds=1),
    )
    emulator.register_instance(instance_id(1), SubprocessExecutor(work_dir=tmp_path / "work"))

    command_id = send(ssm, InstanceIds=[instance_id(1)], DocumentName="Sleepy-Doc")
    assert emulator.wait_idle(10)

    result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1))
    assert (result["Status"], result["StatusDetails"]) == ("TimedOut", "Execution Timed Out")
    assert result["ResponseCode"] == 137  # the agent's "stopped preemptively" exit code
    assert result["StandardOutputContent"] == "started\n"
    assert not _running(int(pid_file.read_text()))
    finished = command(ssm, command_id)
    assert (finished["Status"], finished["StatusDetails"], finished["ErrorCount"]) == (
        "TimedOut",
        "Execution Timed Out",
        1,
    )


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a killed orphan may linger as a zombie until reaped


def test_parameters_reach_the_script_by_substitution_and_as_ssm_env(
    ssm: Any, emulator: SsmEmulator, tmp_path: Path
) -> None:
    emulator.register_document(
        "Env-Doc",
        shell_document(
            [
                "#!/bin/sh",
                "printf '%s|%s|%s|%s\\n' '{{ Action }}' \"$SSM_Action\" \"${SSM_Plain-unset}\" '{{Plain}}'",
                'printf \'%s|%s\\n\' "${HOME-no home}" "$(basename "$0")"',
                'stat -c %a "$(dirname "$0")" "$0"',
            ],
            parameters={
                "Action": {"type": "String", "default": "check", "interpolationType": "ENV_VAR"},
                "Plain": {"type": "String", "default": "plain-default"},
            },
        ),
    )
    emulator.register_instance(instance_id(1), SubprocessExecutor(work_dir=tmp_path))

    command_id = send(
        ssm, InstanceIds=[instance_id(1)], DocumentName="Env-Doc", Parameters={"Action": ["refresh"]}
    )
    assert emulator.wait_idle(10)

    result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1))
    assert result["StandardErrorContent"] == ""
    assert result["StandardOutputContent"].splitlines() == [
        "refresh|refresh|unset|plain-default",  # ENV_VAR only for parameters that ask for it
        "no home|_script.sh",  # the agent's environment has no HOME
        "700",  # the orchestration directory is root-only
        "700",
    ]
    assert list(tmp_path.iterdir()) == []  # the orchestration directory is removed afterwards


def test_a_step_whose_precondition_fails_is_skipped_as_success(ssm: Any, emulator: SsmEmulator) -> None:
    windows = CannedExecutor()
    emulator.register_instance(
        instance_id(1), windows, platform_type="Windows", platform_name="Windows Server"
    )

    command_id = send(ssm, InstanceIds=[instance_id(1)])
    assert emulator.wait_idle(5)

    item = invocations(ssm, command_id)[instance_id(1)]
    (plugin,) = item["CommandPlugins"]
    assert (item["Status"], plugin["Status"], plugin["ResponseCode"]) == ("Success", "Success", 0)
    assert plugin["Output"].startswith("Step execution skipped due to unsatisfied preconditions")
    assert "platformType, Linux" in plugin["Output"]
    assert windows.runs == 0


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


def wait_for_details(ssm: Any, command_id: str, instance: str, details: str, timeout: float = 5) -> bool:
    """Poll until an invocation shows ``details`` (the service offers nothing better to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if invocations(ssm, command_id)[instance]["StatusDetails"] == details:
            return True
        time.sleep(0.02)
    return False


def test_invocations_queued_past_the_delivery_timeout_never_run() -> None:
    with SsmEmulator(delivery_time_scale=0.01) as emulator:
        emulator.register_document(DOCUMENT, shell_document(["true"]))
        gate = GatedExecutor()
        emulator.register_instance(instance_id(1), gate)
        emulator.register_instance(instance_id(2), gate)
        ssm = client_for(emulator)

        command_id = send(
            ssm, InstanceIds=[instance_id(1), instance_id(2)], MaxConcurrency="1", TimeoutSeconds=30
        )
        assert gate.wait_running(1)
        # The second waits behind MaxConcurrency=1 until the (scaled) 30 s pass, while the first still runs.
        assert wait_for_details(ssm, command_id, instance_id(2), "Delivery Timed Out")
        gate.release.set()
        assert emulator.wait_idle(5)

        assert invocations(ssm, command_id)[instance_id(1)]["StatusDetails"] == "Success"
        assert gate.started == 1


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


def test_a_multi_platform_document_runs_the_matching_step_and_skips_the_other(
    ssm: Any, emulator: SsmEmulator
) -> None:
    linux_step = shell_document(["echo linux"])["mainSteps"][0]
    windows_step = {
        "action": "aws:runPowerShellScript",
        "name": "windowsStep",
        "precondition": {"StringEquals": ["platformType", "Windows"]},
        "inputs": {"runCommand": ["Write-Output windows"]},
    }
    emulator.register_document("Both-Doc", {**shell_document([]), "mainSteps": [windows_step, linux_step]})
    emulator.register_instance(instance_id(1), CannedExecutor(stdout="linux\n"))

    command_id = send(ssm, InstanceIds=[instance_id(1)], DocumentName="Both-Doc")
    assert emulator.wait_idle(5)

    item = invocations(ssm, command_id)[instance_id(1)]
    skipped, ran = item["CommandPlugins"]
    assert (item["Status"], skipped["Name"], ran["Name"]) == ("Success", "windowsStep", "linuxStep")
    assert skipped["Output"].startswith("Step execution skipped due to unsatisfied preconditions")
    assert ran["Output"] == "linux\n"
    # Without PluginName a multi-step invocation carries no output; with it, the step's.
    whole = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1))
    step = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1), PluginName="linuxStep")
    assert (whole["Status"], whole["StandardOutputContent"]) == ("Success", "")
    assert (step["PluginName"], step["StandardOutputContent"]) == ("linuxStep", "linux\n")


class _BrokenExecutor:
    def run(self, script: str, env: Any, timeout_seconds: float) -> Any:
        raise OSError("sandbox vanished")


def test_an_executor_that_raises_fails_its_invocation_instead_of_hanging(
    ssm: Any, emulator: SsmEmulator
) -> None:
    emulator.register_instance(instance_id(1), _BrokenExecutor())

    command_id = send(ssm, InstanceIds=[instance_id(1)])
    assert emulator.wait_idle(5)

    result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id(1))
    assert (result["Status"], result["ResponseCode"]) == ("Failed", 1)
    assert "sandbox vanished" in result["StandardErrorContent"]
