"""The engine on a simulated clock, reached in-process through real boto3 clients.

What the field taught, as a client meets it: statuses that follow from what happens
on each instance, MaxErrors, Delayed and the late delivery timeout, late target
resolution, commands with no target, ListCommands' lag, the agent's lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.hosts.canned_agent import CannedRun, result_line
from tests.localfleet.ssm.ssm_calls import command, error_code, invocations, send
from tests.support.ssm_emulator import DOCUMENT, shell_document

TAG = {"Key": "tag:team", "Values": ["a"]}


@pytest.fixture
def account() -> Iterator[SimulatedAccount]:
    simulated = SimulatedAccount(SimulatedClock(start=0.0))
    simulated.register_document(DOCUMENT, shell_document(["true"], timeout_seconds=600))
    yield simulated
    simulated.close()


@pytest.fixture
def ssm(account: SimulatedAccount) -> Any:
    session = account.session()
    return session.client(
        "ssm", endpoint_url="http://127.0.0.1:9", config=Config(retries={"max_attempts": 1})
    )


def later(account: SimulatedAccount, seconds: float) -> None:
    clock = account.clock
    assert isinstance(clock, SimulatedClock)
    clock.sleep(seconds)


def details(ssm: Any, command_id: str) -> dict[str, str]:
    return {i: item["StatusDetails"] for i, item in invocations(ssm, command_id).items()}


def test_statuses_follow_the_agents_run_in_simulated_time(ssm: Any, account: SimulatedAccount) -> None:
    (quick,) = account.launch(tags={"team": "a"}, agent=CannedRun(duration=10))
    (failing,) = account.launch(tags={"team": "a"}, agent=CannedRun("", "boom", exit_code=3, duration=20))
    (slow,) = account.launch(tags={"team": "a"}, agent=CannedRun(duration=5000))

    command_id = send(ssm, Targets=[TAG], MaxErrors="2")
    assert details(ssm, command_id) == dict.fromkeys([quick, failing, slow], "In Progress")
    later(account, 10)
    assert details(ssm, command_id)[quick] == "Success"
    later(account, 10)
    assert details(ssm, command_id)[failing] == "Failed"
    assert command(ssm, command_id)["Status"] == "InProgress"
    later(account, 580)  # the step's 600 s
    found = invocations(ssm, command_id)

    assert (found[slow]["Status"], found[slow]["StatusDetails"]) == ("TimedOut", "Execution Timed Out")
    assert found[slow]["CommandPlugins"][0]["ResponseCode"] == 137
    assert found[failing]["CommandPlugins"][0]["Output"] == "\n----------ERROR-------\nboom"
    finished = command(ssm, command_id)
    assert (finished["Status"], finished["StatusDetails"], finished["ErrorCount"]) == (
        "Failed",
        "Incomplete",
        2,
    )


def test_max_errors_terminates_what_is_not_yet_sent(ssm: Any, account: SimulatedAccount) -> None:
    ids = account.launch(5, tags={"team": "a"}, agent=CannedRun("", exit_code=1, duration=5))

    command_id = send(ssm, InstanceIds=ids, MaxConcurrency="2", MaxErrors="1")
    later(account, 60)

    # At 5 s both running ones fail: the first error is allowed and frees its slot (the third is
    # sent), the second is one beyond MaxErrors and stops the sending.
    assert [details(ssm, command_id)[i] for i in ids] == ["Failed"] * 3 + ["Terminated"] * 2
    assert {item["Status"] for item in invocations(ssm, command_id).values()} == {"Failed", "Cancelled"}
    assert len(account.agents[ids[2]].runs) == 1
    assert account.agents[ids[4]].runs == []


def test_an_offline_node_is_delayed_then_delivered_when_it_comes_back(
    ssm: Any, account: SimulatedAccount
) -> None:
    (instance,) = account.launch(ping_status="ConnectionLost", agent=CannedRun(duration=5))

    command_id = send(ssm, InstanceIds=[instance], TimeoutSeconds=60)
    later(account, 1)
    assert invocations(ssm, command_id)[instance]["Status"] == "Delayed"
    account.node(instance).ping_status = "Online"
    later(account, 60)

    assert details(ssm, command_id) == {instance: "Success"}


def test_an_offline_node_times_out_only_after_the_delivery_and_execution_timeouts(
    ssm: Any, account: SimulatedAccount
) -> None:
    (instance,) = account.launch(ping_status="ConnectionLost")

    command_id = send(ssm, InstanceIds=[instance], TimeoutSeconds=60)
    later(account, 60 + 600 - 1)
    assert details(ssm, command_id) == {instance: "Delayed"}
    later(account, 1)

    assert details(ssm, command_id) == {instance: "Delivery Timed Out"}
    assert command(ssm, command_id)["StatusDetails"] == "Delivery Timed Out"


def test_a_node_gone_before_delivery_is_undeliverable(ssm: Any, account: SimulatedAccount) -> None:
    (instance,) = account.launch(delivery_delay=30)

    command_id = send(ssm, InstanceIds=[instance])
    account.terminate(instance)
    later(account, 30)

    assert details(ssm, command_id) == {instance: "Undeliverable"}
    with pytest.raises(ClientError) as refused:
        send(ssm, InstanceIds=[instance])
    assert error_code(refused) == "InvalidInstanceId"
    assert instance in refused.value.response["Error"]["Message"]


def test_an_instance_whose_agent_registers_later_is_unknown_to_ssm_until_then(
    ssm: Any, account: SimulatedAccount
) -> None:
    (instance,) = account.launch(tags={"team": "a"}, managed=False)

    with pytest.raises(ClientError) as refused:
        send(ssm, InstanceIds=[instance])
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    account.register_agent(instance)
    command_id = send(ssm, Targets=[TAG])  # EC2's tags, as the node has them now
    later(account, 30)

    assert error_code(refused) == "InvalidInstanceId"
    (listed,) = ssm.describe_instance_information()["InstanceInformationList"]
    assert (listed["InstanceId"], listed["PingStatus"]) == (instance, "Online")
    assert details(ssm, command_id) == {instance: "Success"}
    with pytest.raises(ValueError, match="already a managed node"):
        account.register_agent(instance)


def test_a_node_the_caller_may_not_command(ssm: Any, account: SimulatedAccount) -> None:
    (denied,) = account.launch(tags={"team": "a"}, commandable=False)
    (allowed,) = account.launch(tags={"team": "a"})

    command_id = send(ssm, Targets=[TAG])
    later(account, 30)
    found = invocations(ssm, command_id)
    with pytest.raises(ClientError) as refused:
        send(ssm, InstanceIds=[allowed, denied])

    assert (found[denied]["Status"], found[denied]["StatusDetails"]) == ("Failed", "Access Denied")
    assert found[allowed]["StatusDetails"] == "Success"
    assert error_code(refused) == "AccessDeniedException"


def test_a_command_beyond_the_accounts_pending_invocations_ends_rate_exceeded_with_no_invocation(
    ssm: Any, account: SimulatedAccount
) -> None:
    """Command.StatusDetails "Rate Exceeded: The number of managed nodes targeted by the command
    exceeded the account limit for pending invocations. The system has canceled the command before
    running it on any managed node. This is a terminal state." (SSM API reference, Command; SSM User
    Guide, "Understanding command statuses")."""
    account.ssm.engine.pending_invocation_limit = 3
    busy = account.launch(2, tags={"team": "a"}, agent=CannedRun(duration=600))
    more = account.launch(2, tags={"team": "b"})

    running = send(ssm, InstanceIds=busy)
    refused = send(ssm, InstanceIds=more)  # 2 pending + 2 targets > 3
    by_tag = send(ssm, Targets=[{"Key": "tag:team", "Values": ["b"]}])

    for command_id in (refused, by_tag):
        ended = command(ssm, command_id)
        assert (ended["Status"], ended["StatusDetails"], ended["TargetCount"]) == (
            "Cancelled",
            "Rate Exceeded",
            0,
        )
        assert invocations(ssm, command_id) == {}
    assert set(invocations(ssm, running)) == set(busy)
    later(account, 600)  # the pending ones ended: room again
    accepted = send(ssm, InstanceIds=more)
    later(account, 60)
    assert details(ssm, accepted) == dict.fromkeys(more, "Success")


def test_a_tag_command_on_nodes_none_of_which_the_caller_may_command_ends_access_denied(
    ssm: Any, account: SimulatedAccount
) -> None:
    """Command.StatusDetails ``Access Denied`` ends the command with no invocation (SSM User Guide,
    "Understanding command statuses"); HARSHER where the guide leaves open whether the refusal is
    per node: only when no resolved target may be commanded (otherwise per-node Access Denied)."""
    account.launch(2, tags={"team": "a"}, commandable=False)

    command_id = send(ssm, Targets=[TAG])
    later(account, 1)

    ended = command(ssm, command_id)
    assert (ended["Status"], ended["StatusDetails"], ended["TargetCount"]) == ("Failed", "Access Denied", 0)
    assert invocations(ssm, command_id) == {}


def test_tag_targets_resolve_late_and_a_tag_on_no_node_ends_the_command(
    ssm: Any, account: SimulatedAccount
) -> None:
    account.ssm.engine.target_resolution_seconds = 5
    (instance,) = account.launch(tags={"team": "a"})

    resolving = send(ssm, Targets=[TAG])
    nobody = send(ssm, Targets=[{"Key": "tag:team", "Values": ["nobody"]}])
    early = command(ssm, resolving)
    assert invocations(ssm, resolving) == {}
    later(account, 5)

    assert (early["Status"], early["TargetCount"]) == ("Pending", 0)
    assert set(invocations(ssm, resolving)) == {instance}
    empty = command(ssm, nobody)
    assert (empty["Status"], empty["StatusDetails"], empty["TargetCount"]) == (
        "Failed",
        "No Instances In Tag",
        0,
    )


def test_list_commands_lags_behind_send_command(ssm: Any, account: SimulatedAccount) -> None:
    account.ssm.list_commands_lag = 30
    (instance,) = account.launch()

    command_id = send(ssm, InstanceIds=[instance])
    assert ssm.list_commands(CommandId=command_id)["Commands"] == []
    assert ssm.list_commands()["Commands"] == []
    later(account, 30)

    assert [c["CommandId"] for c in ssm.list_commands()["Commands"]] == [command_id]


def test_the_agents_lock_turns_a_second_command_away(ssm: Any, account: SimulatedAccount) -> None:
    (instance,) = account.launch(agent=CannedRun(duration=100))

    first = send(ssm, InstanceIds=[instance])
    later(account, 10)
    second = send(ssm, InstanceIds=[instance])
    later(account, 100)

    turned_away = ssm.get_command_invocation(CommandId=second, InstanceId=instance)
    assert (turned_away["Status"], turned_away["ResponseCode"]) == ("Success", 0)
    assert turned_away["StandardOutputContent"].strip() == result_line(
        "skipped", "locked", "another ecr-fleet-auth run is in progress"
    )
    assert details(ssm, first) == {instance: "Success"}
    assert not account.agent_runs_overlap()
    assert account.ssm.engine.peak_concurrency() == 2, "both invocations ran; only one did the work"
