"""What SSM Run Command, Lambda and a real account do to a run, through ``handler.handler``.

Each case is one the runner once did not survive (issue 11): an instance terminating
between discovery and send, discovery failing, null fields, a thousand bad ids,
ListCommands lagging, reasons without a next step, two runs at once. The world is
tests/runner/conftest.py's: the template's environment, the simulated account's EC2
and Run Command (localfleet) on a simulated clock, moto for SNS.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from typing import Any

import pytest

from ecr_fleet_auth.run import execution, planning
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.invocations import InvalidEvent
from ecr_fleet_auth.shared.report import ERROR_MESSAGE_CHARS
from ecr_fleet_auth.shared.troubleshooting import NEXT_STEPS
from localfleet.hosts.canned_agent import CannedRun
from localfleet.ssm.models.documents import execution_timeout_seconds
from tests.runner.aws.test_send import on_send
from tests.runner.run.test_runs import by_id, emitted_metrics, lookups, polling, status_and_reason
from tests.support.runner_world import DOCUMENT, TAG_KEY, World


def commanded_ids(world: World) -> list[str]:
    return [i for command in world.commands.values() for i in command.request.get("InstanceIds", [])]


# --- an instance terminates between discovery and send -------------------------------------------


def test_an_instance_terminated_before_the_send_is_reported_and_the_others_are_commanded(
    world: World,
) -> None:
    ids = sorted(world.launch(3))
    doomed = ids[1]
    world.before_first("SendCommand", lambda: world.terminate(doomed))
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert results[doomed] == ("unreachable", "instance_not_running")
    assert by_id(report)[doomed]["detail"] == {"state": "terminated", "error": "InvalidInstanceId"}
    assert {results[i] for i in ids if i != doomed} == {("succeeded", "ok")}
    assert sorted(commanded_ids(world)) == sorted(set(ids) - {doomed})
    assert world.ssm.calls["SendCommand"] == 2, "the refused call started nothing; one resend"
    assert world.api_calls["ec2.DescribeInstances"] == 2, "one look again at the batch's states"


def test_one_terminated_instance_in_the_second_batch_costs_only_itself(world: World) -> None:
    ids = sorted(world.launch(60))
    doomed = ids[55]  # the second batch is ids[50:60]
    world.before_first("SendCommand", lambda: world.terminate(doomed))
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert results[doomed] == ("unreachable", "instance_not_running")
    assert {results[i] for i in ids if i != doomed} == {("succeeded", "ok")}
    assert sorted(commanded_ids(world)) == sorted(set(ids) - {doomed}), "each commanded once"
    assert len(report["command_ids"]) == 2


def test_a_refused_id_that_still_looks_running_is_isolated_by_halving(world: World) -> None:
    # EC2 and SSM both still call it running and online (their state lags), yet
    # SendCommand refuses it: halving finds it without losing the others.
    ids = sorted(world.launch(7))
    doomed = ids[4]
    world.before_first("SendCommand", lambda: world.terminate(doomed, state="shutting-down"))
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert results[doomed] == ("unreachable", "invalid_instance_id")
    assert by_id(report)[doomed]["detail"]["error"] == "InvalidInstanceId"
    assert {results[i] for i in ids if i != doomed} == {("succeeded", "ok")}
    assert sorted(commanded_ids(world)) == sorted(set(ids) - {doomed}), "each commanded once"
    assert world.ssm.calls["SendCommand"] <= 1 + 2 * math.ceil(math.log2(len(ids)))


@pytest.mark.parametrize("refused_at", [(4,), (4, 40), (0, 49), (24, 25)])
def test_refused_ids_do_not_hold_back_the_rest_of_their_batch(
    world: World, refused_at: tuple[int, ...]
) -> None:
    # Default settings (10%: concurrency 5 for 50 ids), a 20 s agent: the accepted pieces of
    # a refused batch run at once, sharing its concurrency, while bisection goes on.
    ids = sorted(world.launch(50))
    refused = [ids[index] for index in refused_at]
    world.before_first("SendCommand", lambda: [world.terminate(i, state="shutting-down") for i in refused])
    start = world.clock.monotonic()
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert {results[i] for i in refused} == {("unreachable", "invalid_instance_id")}
    assert {results[i] for i in ids if i not in refused} == {("succeeded", "ok")}, "all within the wait"
    assert sorted(commanded_ids(world)) == sorted(set(ids) - set(refused)), "each commanded once"
    assert world.ssm.calls["SendCommand"] <= len(refused) * 2 * math.ceil(math.log2(len(ids))) + 1
    assert world.engine.peak_concurrency() <= 5, "the batch's concurrency, shared by its pieces"
    accepted = [command.request for command in world.commands.values()]
    assert sum(int(request["MaxErrors"]) for request in accepted) <= 5, "its error budget too"
    assert world.clock.monotonic() - start < 450, "not one piece after another (215 s unrefused)"


def test_pieces_of_a_refused_batch_still_run_one_at_a_time_at_concurrency_1(world: World) -> None:
    world.configure(MAX_CONCURRENCY="1")
    ids = sorted(world.launch(8, agent=CannedRun(duration=2)))
    world.before_first("SendCommand", lambda: world.terminate(ids[5], state="shutting-down"))
    report = world.invoke({"instance_ids": ids})

    assert {status_and_reason(report)[i] for i in ids if i != ids[5]} == {("succeeded", "ok")}
    assert world.engine.peak_concurrency() == 1
    commands = sorted(world.commands.values(), key=lambda command: command.requested)
    for earlier, later in itertools.pairwise(commands):
        finished = [i.finished for i in earlier.invocations.values()]
        assert None not in finished
        assert later.requested >= max(f for f in finished if f is not None)


def _untag_before_each_send(world: World, doomed: list[str]) -> set[str]:
    """Before each SendCommand, the next of ``doomed`` loses the target tag; IAM then refuses
    any SendCommand naming an untagged instance (the simulator has no IAM: the refusal is injected)."""
    untagged: set[str] = set()
    waiting = list(doomed)
    previous = world.ssm.before  # the world's own happenings still take place

    def before(operation: str, params: dict[str, Any]) -> None:
        previous(operation, params)
        if operation == "SendCommand" and waiting:
            instance_id = waiting.pop(0)
            world.account.ec2.untag(instance_id, TAG_KEY)
            untagged.add(instance_id)

    world.ssm.before = before
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if untagged & set(params.get("InstanceIds", [])) else None
    )
    return untagged


def test_an_instance_untagged_after_the_look_costs_another_look_not_the_batch(world: World) -> None:
    ids = sorted(world.launch(4))
    _untag_before_each_send(world, [ids[0], ids[1]])
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert results[ids[0]] == results[ids[1]] == ("skipped", "not_target_tagged")
    assert results[ids[2]] == results[ids[3]] == ("succeeded", "ok")
    assert world.ssm.calls["SendCommand"] == 3
    assert world.api_calls["ec2.DescribeInstances"] == 1 + 2, "discovery, then one look per refusal"


def test_looks_after_refusals_are_bounded(world: World) -> None:
    ids = sorted(world.launch(6))
    _untag_before_each_send(world, ids)  # one more instance loses the tag before every send
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    looks = planning.MAX_LOOKUPS
    assert {results[i] for i in ids[:looks]} == {("skipped", "not_target_tagged")}
    assert {results[i] for i in ids[looks:]} == {("failed", "send_failed")}
    assert world.ssm.calls["SendCommand"] == looks + 1
    assert world.api_calls["ec2.DescribeInstances"] == 1 + looks
    assert world.commands == {}


def test_any_send_error_about_some_instances_spares_the_others(world: World) -> None:
    ids = sorted(world.launch(4))
    odd = ids[2]
    world.ssm.fault = lambda operation, number, params: (
        "UnsupportedPlatformType"
        if operation == "SendCommand" and odd in params.get("InstanceIds", [])
        else None
    )
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert results[odd] == ("skipped", "unsupported_platform")
    assert {results[i] for i in ids if i != odd} == {("succeeded", "ok")}
    assert sorted(commanded_ids(world)) == sorted(set(ids) - {odd})


def test_an_instance_untagged_before_the_send_is_reported_and_the_others_commanded(world: World) -> None:
    # IAM refuses the whole SendCommand when one instance lost the target tag (the role
    # may command only tagged instances); the fake has no IAM, so the refusal is injected.
    ids = sorted(world.launch(3))
    untagged = ids[0]
    world.before_first("SendCommand", lambda: world.account.ec2.untag(untagged, TAG_KEY))
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if untagged in params.get("InstanceIds", []) else None
    )
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert results[untagged] == ("skipped", "not_target_tagged")
    assert {results[i] for i in ids if i != untagged} == {("succeeded", "ok")}
    assert world.ssm.calls["SendCommand"] == 2


def test_a_role_that_may_not_send_fails_the_batch_after_one_look(world: World) -> None:
    ids = world.launch(4)
    world.ssm.fault = on_send("AccessDeniedException", times=100)
    report = world.invoke({"instance_ids": ids})
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_failed"))
    assert world.ssm.calls["SendCommand"] == 1, "no search by halving for the role's own refusal"


def test_the_common_path_makes_no_extra_call(world: World) -> None:
    ids = world.launch(3)
    world.invoke({"instance_ids": ids})
    assert world.api_calls["ssm.SendCommand"] == 1
    assert world.api_calls["ec2.DescribeInstances"] == 1
    assert len(world.ssm.sent("ListCommands")) == 1 + len(
        [r for r in world.ssm.sent("ListCommands") if "CommandId" in r]
    ), "one look for other runs' commands, then the polls"


# --- a run that cannot complete still tells the operator -----------------------------------------


def _ec2_answers(world: World, code: str) -> None:
    """Every DescribeInstances request is answered with EC2 error ``code``."""
    world.ec2.fault = lambda operation, number, params: code if operation == "DescribeInstances" else None


def test_discovery_throttled_past_its_retries_still_reports_notifies_and_counts(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.launch(3)
    world.ssm.fault = lambda operation, number, params: (
        "ThrottlingException" if operation == "DescribeInstanceInformation" else None
    )
    report = world.invoke({"source": "schedule"})

    assert report["error"]["reason"] == "run_failed"
    assert report["error"]["code"] == "ThrottlingException"
    assert 0 < len(report["error"]["message"]) <= ERROR_MESSAGE_CHARS
    assert report["instances"] == [] and report["summary"]["total"] == 0
    assert world.ssm.sent("SendCommand") == [], "nothing is sent by a run that could not discover"
    (notification,) = world.notifications()
    assert notification["Subject"] == "ecr-fleet-auth refresh: run failed (ThrottlingException)"
    assert NEXT_STEPS["run_failed"] in notification["Message"]
    document = emitted_metrics(capsys.readouterr().out)
    assert document[contract.RUNS_FAILED_METRIC] == [1.0]


def test_discovery_refused_by_ec2_still_reports(world: World) -> None:
    world.launch(2)
    _ec2_answers(world, "UnauthorizedOperation")
    report = world.invoke({})
    assert report["error"]["code"] == "UnauthorizedOperation"
    assert len(world.notifications()) == 1


def test_a_narrowed_run_whose_discovery_fails_lists_every_requested_instance(world: World) -> None:
    ids = sorted(world.launch(3))
    _ec2_answers(world, "UnauthorizedOperation")  # answered 403, as EC2 does
    report = world.invoke({"instance_ids": ids})

    assert report["error"]["code"] == "UnauthorizedOperation"
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "run_failed"))
    assert report["summary"]["total"] == report["summary"]["failed"] == len(report["instances"]) == 3
    assert world.ssm.sent("SendCommand") == []


def test_any_failure_after_sending_reports_what_is_known(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = world.launch(3, agent=CannedRun(duration=100))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug while following the command")

    monkeypatch.setattr(execution.Execution, "_settled", broken)
    report = world.invoke({})

    assert report["error"] == {
        "reason": "run_failed",
        "code": "RuntimeError",
        "message": "a bug while following the command",
    }
    assert report["command_ids"] == list(world.commands)
    assert status_and_reason(report) == dict.fromkeys(ids, ("pending", "in_progress"))
    assert len(world.notifications()) == 1


@pytest.mark.parametrize(("policy", "published"), [("failures", 1), ("always", 1), ("never", 0)])
def test_a_failed_run_is_a_failure_for_the_notify_policy(world: World, policy: str, published: int) -> None:
    world.configure(NOTIFY_POLICY=policy)
    world.launch(1)
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if operation == "DescribeInstanceInformation" else None
    )
    report = world.invoke({})
    assert report["error"]["code"] == "AccessDeniedException"
    assert len(world.notifications()) == published


def test_a_successful_run_counts_zero_failed_runs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.launch(1)
    report = world.invoke({})
    assert "error" not in report
    assert emitted_metrics(capsys.readouterr().out)[contract.RUNS_FAILED_METRIC] == [0.0]


def test_a_rejected_event_is_counted_for_the_alarm_to_leave_out(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidEvent):
        world.invoke({"action": "logout"})
    document = emitted_metrics(capsys.readouterr().out)
    assert document[contract.EVENTS_REJECTED_METRIC] == [1.0]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert document["service"] == "EcrFleetAuth", "the stack's name, which the alarm reads"
    assert world.notifications() == []


def test_every_metric_names_the_stack_it_is_for(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Two stacks in one region: each one's alarms read only its own runner's metrics.
    world.configure(STACK_NAME="EcrFleetAuthBlue")
    world.launch(1)
    world.invoke({})
    with pytest.raises(InvalidEvent):
        world.invoke({"action": "logout"})
    run, rejected = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert run["service"] == rejected["service"] == "EcrFleetAuthBlue"
    assert run[contract.RUNS_FAILED_METRIC] == [0.0]
    assert rejected[contract.EVENTS_REJECTED_METRIC] == [1.0]


@pytest.mark.parametrize(
    ("event", "kind"),
    [(None, "null"), ([], "an array"), ("check", "a string"), (3, "a number"), (True, "a boolean")],
)
def test_an_event_that_is_not_an_object_is_named_in_jsons_words(
    world: World, capsys: pytest.CaptureFixture[str], event: Any, kind: str
) -> None:
    with pytest.raises(InvalidEvent) as raised:
        world.invoke(event)
    assert str(raised.value) == f"invalid event: expected a JSON object, got {kind}"
    assert emitted_metrics(capsys.readouterr().out)[contract.EVENTS_REJECTED_METRIC] == [1.0]


# --- null is never a value -------------------------------------------------------------------------

EVERY_FIELD = ("source", "action", "dry_run", "instance_ids", "registries", "users", "wait_seconds")


@pytest.mark.parametrize("field", EVERY_FIELD)
def test_null_is_rejected_naming_the_field_before_anything_is_sent(world: World, field: str) -> None:
    world.launch(2)
    with pytest.raises(InvalidEvent) as raised:
        world.invoke({"action": "helper", field: None} if field != "action" else {field: None})
    assert f"{field}: null is not accepted" in str(raised.value)
    assert world.api_calls == {}
    assert world.ssm.sent("SendCommand") == []


# --- long error lists stay readable ------------------------------------------------------------------


def test_a_thousand_bad_instance_ids_give_a_short_message_with_the_count_left_out(world: World) -> None:
    with pytest.raises(InvalidEvent) as raised:
        world.invoke({"instance_ids": [f"i-bad{n}" for n in range(1000)]})
    message = str(raised.value)
    assert len(message) < 2000
    shown = message.count("instance_ids.")
    (more,) = re.findall(r"\.\.\. and (\d+) more problems$", message)
    assert shown >= 3
    assert shown + int(more) == 1000
    assert "i-bad0" in message


# --- ListCommands lags ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lag", [3, 30, 300])
def test_a_lost_send_answer_never_becomes_two_commands_whatever_the_lag(world: World, lag: float) -> None:
    ids = world.launch(3)
    world.account.ssm.list_commands_lag = lag
    world.ssm.lost_answer = on_send("InternalServerError")
    report = world.invoke({"instance_ids": ids})

    assert world.ssm.calls["SendCommand"] == 1
    assert len(world.commands) == 1
    assert status_and_reason(report) == dict.fromkeys(ids, ("succeeded", "ok"))
    assert report["command_ids"] == list(world.commands)


def test_a_command_listed_only_after_the_run_is_reported_unconfirmed_not_resent(world: World) -> None:
    ids = world.launch(2)
    world.account.ssm.list_commands_lag = 5000
    world.ssm.lost_answer = on_send("ReadTimeoutError")
    report = world.invoke({})

    assert world.ssm.calls["SendCommand"] == 1
    assert len(world.commands) == 1
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_unconfirmed"))
    assert len(lookups(world)) > 5, "looked again at every poll until the deadline"


@pytest.mark.parametrize(
    ("delivery_timeout", "execution_timeout", "second_batch"),
    [
        # Short timeouts: a command the lost send started would be over long before the
        # run's end, so the lane moves on (the lost batch is never sent again).
        (30, 60, ("succeeded", "ok")),
        # The defaults: such a command could still be running when the run ends, so the
        # lane keeps the concurrency promise and its next batch waits for the next run.
        (600, 600, ("pending", "not_sent_before_deadline")),
    ],
)
def test_a_lost_send_holds_its_lane_only_while_its_command_could_run(
    world: World,
    agent_document: dict[str, Any],
    delivery_timeout: int,
    execution_timeout: int,
    second_batch: tuple[str, str],
) -> None:
    world.configure(MAX_CONCURRENCY="1", DELIVERY_TIMEOUT_SECONDS=str(delivery_timeout))
    _deploy_execution_timeout(world, agent_document, execution_timeout)
    ids = sorted(world.launch(60, agent=CannedRun(duration=2)))  # one lane: 50, then 10
    world.ssm.fault = on_send("InternalServerError")  # answered 5xx, never started, never listed
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    assert {results[i] for i in ids[:50]} == {("failed", "send_unconfirmed")}
    assert {results[i] for i in ids[50:]} == {second_batch}
    sent = [len(request["InstanceIds"]) for request in world.ssm.sent("SendCommand")]
    assert sent == ([50, 10] if second_batch == ("succeeded", "ok") else [50]), "the lost one never again"
    if world.commands:
        (command,) = world.commands.values()
        hold = delivery_timeout + 2 * execution_timeout + execution.UNCONFIRMED_HOLD_MARGIN_SECONDS
        assert command.requested_at - world.clock.start >= hold, "not before the lost one could have ended"


def _deploy_execution_timeout(world: World, agent_document: dict[str, Any], seconds: int) -> None:
    """What the stack does with its one execution-timeout setting: the document's step timeout
    (a content change is a new document, under a new name) and the runner's EXECUTION_TIMEOUT_SECONDS."""
    content = copy.deepcopy(agent_document)
    for step in content["mainSteps"]:
        step["inputs"]["timeoutSeconds"] = seconds
    name = f"{DOCUMENT}-{seconds}s"
    world.account.register_document(name, content)
    world.configure(DOCUMENT_NAME=name, EXECUTION_TIMEOUT_SECONDS=str(seconds))


# --- runs never overlap on an instance --------------------------------------------------------------


def test_a_second_run_leaves_out_the_instances_the_first_is_working_on(world: World) -> None:
    world.configure(MAX_CONCURRENCY="100%")
    ids = world.launch(4, agent=CannedRun(duration=300))
    second: dict[str, Any] = {}
    # The second run starts while the first waits for its command (its first poll).
    world.before_first("ListCommands", lambda: second.update(world.invoke({"wait_seconds": 0})), polling)
    first = world.invoke({})

    assert status_and_reason(first) == dict.fromkeys(ids, ("succeeded", "ok"))
    assert status_and_reason(second) == dict.fromkeys(ids, ("pending", "instance_busy"))
    assert {i["detail"]["command_id"] for i in second["instances"]} == set(first["command_ids"])
    assert second["command_ids"] == [] and len(world.commands) == 1
    assert not world.account.agent_runs_overlap()


def test_a_second_run_that_cannot_see_the_first_meets_the_agents_lock(world: World) -> None:
    world.configure(MAX_CONCURRENCY="100%")
    ids = world.launch(3, agent=CannedRun(duration=300))
    world.account.ssm.list_commands_lag = 120  # the first run's command is not listed yet
    second: dict[str, Any] = {}
    world.before_first("ListCommands", lambda: second.update(world.invoke({"wait_seconds": 60})), polling)
    first = world.invoke({})

    assert status_and_reason(first) == dict.fromkeys(ids, ("succeeded", "ok"))
    assert status_and_reason(second) == dict.fromkeys(ids, ("skipped", "locked"))
    assert not world.account.agent_runs_overlap(), "never two agent runs on one instance at once"


def test_busy_instances_narrow_a_whole_fleet_run_to_the_others(world: World) -> None:
    world.configure(MAX_CONCURRENCY="100%")
    (busy,) = world.launch(1, agent=CannedRun(duration=300))
    world.invoke({"instance_ids": [busy], "wait_seconds": 0})
    free = world.launch(3)
    report = world.invoke({})

    assert status_and_reason(report) == {
        busy: ("pending", "instance_busy"),
        **dict.fromkeys(free, ("succeeded", "ok")),
    }
    last = world.ssm.sent("SendCommand")[-1]
    assert "Targets" not in last and sorted(last["InstanceIds"]) == sorted(free)


# --- the fake's Run Command behaviours, as the runner meets them -----------------------------------


def test_targets_resolved_late_are_waited_for_not_reported_missing(world: World) -> None:
    world.engine.target_resolution_seconds = 40
    ids = world.launch(3)
    assert status_and_reason(world.invoke({})) == dict.fromkeys(ids, ("succeeded", "ok"))


def test_targets_not_yet_resolved_at_the_deadline_are_pending(world: World) -> None:
    world.engine.target_resolution_seconds = 40
    ids = world.launch(2)
    report = world.invoke({"wait_seconds": 20})
    assert status_and_reason(report) == dict.fromkeys(ids, ("pending", "not_yet_delivered"))


def test_a_tag_ssm_has_not_seen_ends_the_command_and_says_what_to_do(world: World) -> None:
    (instance,) = world.launch()
    world.node(instance).tags = {}  # EC2 has the tag; Run Command's target resolution does not
    report = world.invoke({})

    # Reported for what the command said (issue 18): No Instances In Tag has its own next step.
    assert status_and_reason(report) == {instance: ("failed", "no_instances_in_tag")}
    (command,) = world.commands.values()
    assert command.status_details() == "No Instances In Tag"
    (notification,) = world.notifications()
    assert NEXT_STEPS["no_instances_in_tag"] in notification["Message"]


def test_an_instance_terminated_before_a_whole_fleet_send_is_not_a_failure(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = sorted(world.launch(4))
    gone = ids[1:3]
    world.before_first("SendCommand", lambda: [world.terminate(i) for i in gone])
    report = world.invoke({})

    results = status_and_reason(report)
    assert {results[i] for i in gone} == {("skipped", "instance_not_running")}
    assert by_id(report)[ids[1]]["detail"] == {"state": "terminated", "command_id": report["command_ids"][0]}
    assert {results[i] for i in ids if i not in gone} == {("succeeded", "ok")}
    assert world.api_calls["ec2.DescribeInstances"] == 2, "discovery, then one look for all of them"
    assert world.notifications() == [], "nothing failed"
    document = emitted_metrics(capsys.readouterr().out)
    assert document[contract.status_metric_name("failed")] == [0.0]
    assert document[contract.status_metric_name("unreachable")] == [0.0]


def test_an_instance_gone_offline_after_discovery_is_delayed_then_times_out_late(world: World) -> None:
    world.configure(DELIVERY_TIMEOUT_SECONDS="30")
    (instance,) = world.launch()
    world.before_first("SendCommand", lambda: setattr(world.node(instance), "ping_status", "ConnectionLost"))
    report = world.invoke({"instance_ids": [instance], "wait_seconds": 300})
    assert status_and_reason(report) == {instance: ("pending", "delivery_delayed")}

    # Delivery times out after the delivery timeout plus the document's execution timeout.
    (command,) = world.commands.values()
    timeout = 30 + execution_timeout_seconds(command.document, command.parameter_values)

    def details() -> str:
        return command.invocations[instance].details

    world.clock.sleep(command.requested_at + timeout - 1 - world.clock.monotonic())
    assert details() == "Delayed"
    world.clock.sleep(1)
    assert details() == "Delivery Timed Out"
