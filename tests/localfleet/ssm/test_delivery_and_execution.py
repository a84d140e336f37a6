"""From delivery to exit code: undeliverable, timeouts, preconditions, parameters, executors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localfleet.hosts.executors import CannedExecutor, SubprocessExecutor
from localfleet.ssm import SsmEmulator
from tests.localfleet.ssm.ssm_calls import command, invocations, send, wait_for_details
from tests.support.ssm_emulator import DOCUMENT, client_for, instance_id, shell_document


def test_offline_instances_are_delayed_and_gone_ones_undeliverable() -> None:
    # The deadline is TimeoutSeconds plus the document's execution timeout (30 + 30 s), scaled to 0.6 s.
    with SsmEmulator(delivery_time_scale=0.01) as emulator:
        emulator.register_document(DOCUMENT, shell_document(["true"], timeout_seconds=30))
        offline = CannedExecutor()
        emulator.register_instance(instance_id(1), CannedExecutor())
        emulator.register_instance(instance_id(2), offline, ping_status="ConnectionLost")
        emulator.register_instance(instance_id(3), offline, ping_status="Inactive")
        ssm = client_for(emulator)

        command_id = send(
            ssm, InstanceIds=[instance_id(1), instance_id(2), instance_id(3)], TimeoutSeconds=30
        )
        assert wait_for_details(ssm, command_id, instance_id(1), "Success")
        waiting = invocations(ssm, command_id)[instance_id(2)]
        assert emulator.wait_idle(5)

        found = invocations(ssm, command_id)
        # Offline: "the system attempted to send the command ... and retries", until the deadline.
        assert (waiting["Status"], waiting["StatusDetails"]) == ("Delayed", "Delayed")
        timed_out = found[instance_id(2)]
        assert (timed_out["Status"], timed_out["StatusDetails"]) == ("TimedOut", "Delivery Timed Out")
        # Inactive: "the managed node might not exist or might not be responding".
        gone = found[instance_id(3)]
        assert (gone["Status"], gone["StatusDetails"]) == ("Failed", "Undeliverable")
        assert gone["CommandPlugins"][0]["ResponseCode"] == -1
        assert offline.runs == 0
        # Neither counts as an error; the delivery timeout decides the command's status.
        finished = command(ssm, command_id)
        assert (finished["Status"], finished["StatusDetails"]) == ("TimedOut", "Delivery Timed Out")
        assert (finished["ErrorCount"], finished["CompletedCount"], finished["DeliveryTimedOutCount"]) == (
            0,
            3,
            1,
        )


def test_undeliverable_invocations_do_not_decide_the_commands_status(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor())
    emulator.register_instance(instance_id(3), CannedExecutor(), ping_status="Inactive")

    command_id = send(ssm, InstanceIds=[instance_id(1), instance_id(3)])
    assert emulator.wait_idle(5)

    finished = command(ssm, command_id)
    assert (finished["Status"], finished["ErrorCount"], finished["CompletedCount"]) == ("Success", 0, 2)


def test_delivery_timed_out_when_the_agent_does_not_pick_the_command_up() -> None:
    # TimeoutSeconds has a model minimum of 30; with the step's 30 s, the scale makes the 60 s last 0.6 s.
    with SsmEmulator(delivery_time_scale=0.01) as emulator:
        emulator.register_document(DOCUMENT, shell_document(["true"], timeout_seconds=30))
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
    # An agent that exports ENV_VAR parameters (3.3.2746.0 on; older ones: test_parameter_interpolation).
    emulator.register_instance(
        instance_id(1), SubprocessExecutor(work_dir=tmp_path), agent_version="3.3.2746.0"
    )

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
