"""Whole runs through ``handler.handler``: moto for EC2 and SNS, the Run Command emulator for SSM."""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Any

import pytest

from ecr_fleet_auth.aws import discovery, run_command
from ecr_fleet_auth.run import execution, runner
from ecr_fleet_auth.shared import contract
from localfleet.hosts.canned_agent import CannedRun, result_line
from tests.support.event_samples import load_event
from tests.support.runner_world import REGISTRY, TAG_KEY, TAG_VALUE, World


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {instance["instance_id"]: instance for instance in report["instances"]}


def status_and_reason(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {i["instance_id"]: (i["status"], i["reason"]) for i in report["instances"]}


def polling(params: dict[str, Any]) -> bool:
    """A run's poll of its own command (so the run is waiting for it)."""
    return "CommandId" in params


def lookups(world: World) -> list[dict[str, Any]]:
    """ListCommands requests that searched for the command of a lost SendCommand answer."""
    return [
        r
        for r in world.ssm.sent("ListCommands")
        if any(f["key"] == "InvokedAfter" for f in r.get("Filters", []))
    ]


def emitted_metrics(stdout: str) -> dict[str, Any]:
    """The EMF document Powertools printed (one per invocation)."""
    (document,) = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]
    return document  # type: ignore[no-any-return]


def test_every_status_path_in_one_fleet(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # One tag-targeted command reaches the fleet; each instance meets its own fate and Run Command
    # derives the statuses. The command is sent in launch order, nine agent runs at a time; the
    # first error (MaxErrors 0, one second in) stops the sending, so the last instance, still
    # queued then, is never sent. The run waits 840 s: longer than the document's 600-s step
    # timeout, which one agent run outlasts.
    world.configure(MAX_CONCURRENCY="9", MAX_ERRORS="0", WAIT_SECONDS="840")

    def launch(agent: CannedRun | None = None, **options: Any) -> str:
        return world.launch(agent=agent, **options)[0]

    login_refused = CannedRun(result_line("failed", "login_failed", "401"), exit_code=1, duration=1)
    crashed = CannedRun("", "Traceback ...", exit_code=2, duration=1)
    expected = {
        launch(login_refused): ("failed", "login_failed"),
        launch(crashed): ("failed", "command_failed"),
        launch(): ("succeeded", "ok"),
        launch(CannedRun(stdout=result_line("unchanged", "ok"))): ("succeeded", "ok"),
        launch(CannedRun(stdout=result_line("skipped", "docker_missing"))): ("skipped", "docker_missing"),
        launch(CannedRun(duration=3600)): ("failed", "execution_timed_out"),
        (terminated := launch(delivery_delay=0.5)): ("unreachable", "undeliverable"),
        (cancelled := launch(delivery_delay=600)): ("failed", "cancelled"),
        launch(commandable=False): ("failed", "access_denied"),
        launch(ping_status="ConnectionLost"): ("unreachable", "ssm_connection_lost"),
        launch(ping_status="Inactive"): ("unreachable", "ssm_inactive"),
        launch(managed=False): ("unreachable", "not_ssm_managed"),
        launch(platform_type="Windows", delivery_delay=2): ("skipped", "unsupported_platform"),
        launch(CannedRun(duration=3600), delivery_delay=300): ("pending", "in_progress"),
        launch(): ("failed", "stopped_by_max_errors"),
    }
    # Terminated once the command has targeted it, before its agent picks the command up: the
    # command cannot be delivered to it. (Terminated before the send, it would be no target.)
    world.before_first(
        "SendCommand",
        lambda: world.clock.call_at(world.clock.monotonic() + 0.25, lambda: world.terminate(terminated)),
    )
    # Someone cancels the command on one instance while its agent has not picked it up yet.
    world.before_first("ListCommands", lambda: world.cancel(cancelled), polling)
    world.launch(tagged=False)  # not part of a whole-fleet run at all
    world.launch(running=False)  # stopped: EC2 does not list it as running

    report = world.invoke({"action": "check"})

    assert status_and_reason(report) == expected
    assert report["summary"] == {
        "total": 15, "succeeded": 2, "changed": 1, "unchanged": 1,
        "failed": 6, "unreachable": 4, "skipped": 2, "pending": 1,
    }  # fmt: skip
    assert report["action"] == "check"
    assert report["source"] == "manual"
    assert report["dry_run"] is False
    assert report["command_ids"] == list(world.commands)
    failed = by_id(report)[next(i for i, v in expected.items() if v[1] == "login_failed")]
    assert failed["outcome"] == "failed"
    assert failed["detail"]["message"] == "401"
    assert failed["detail"]["response_code"] == 1
    assert failed["name"] == "web"

    # The alarm's metrics: one count per status, dimensions the stack's name and the action.
    document = emitted_metrics(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == contract.METRIC_NAMESPACE
    assert sorted(directive["Dimensions"][0]) == sorted([contract.METRIC_ACTION_DIMENSION, "service"])
    assert document[contract.METRIC_ACTION_DIMENSION] == "check"
    assert document["service"] == os.environ["STACK_NAME"] == "EcrFleetAuth", "the template's stack name"
    for status in contract.INSTANCE_STATUSES:
        assert document[contract.status_metric_name(status)] == [float(report["summary"][status])]
    assert document[contract.RUN_DURATION_METRIC][0] > 0


def test_whole_fleet_run_sends_one_tag_targeted_command_with_the_configured_budget(world: World) -> None:
    world.configure(MAX_CONCURRENCY="10%", MAX_ERRORS="2", HELPER_VERSION="0.9.1")
    world.launch(40)
    report = world.invoke(load_event("schedule"))

    (sent,) = world.ssm.sent("SendCommand")
    assert sent["Targets"] == [{"Key": f"tag:{TAG_KEY}", "Values": [TAG_VALUE]}]
    assert "InstanceIds" not in sent
    assert (sent["MaxConcurrency"], sent["MaxErrors"]) == ("10%", "2")
    assert sent["DocumentName"] == "EcrFleetAuth-Agent"
    assert sent["DocumentVersion"] == "1"
    assert sent["Parameters"] == {
        contract.ACTION: ["refresh"],
        contract.REGISTRIES: [REGISTRY],
        contract.USERS: [contract.AUTO_USERS],
        contract.HELPER_VERSION: ["0.9.1"],
        contract.RELEASE_BASE_URL: [contract.DEFAULT_RELEASE_BASE_URL],
        contract.KEEP_USER_DOCKER_LOGIN: ["false"],
    }
    assert sent["CloudWatchOutputConfig"]["CloudWatchLogGroupName"] == "/ecr-fleet-auth/run-command"
    assert report["run_id"] in sent["Comment"]
    assert report["source"] == "schedule"
    assert world.engine.peak_concurrency() == 4  # SSM applied 10% to the whole fleet of 40
    assert report["summary"]["succeeded"] == 40


def test_event_overrides_reach_the_command(world: World) -> None:
    world.launch(2)
    world.invoke(
        {"action": "helper", "registries": ["public.ecr.aws", REGISTRY], "users": ["ubuntu", "ec2-user"]}
    )
    parameters = world.ssm.sent("SendCommand")[0]["Parameters"]
    assert parameters[contract.ACTION] == ["helper"]
    assert parameters[contract.REGISTRIES] == [f"public.ecr.aws,{REGISTRY}"]
    assert parameters[contract.USERS] == ["ubuntu,ec2-user"]


def test_every_list_call_is_paginated(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # EC2 pages hold up to 1,000 instances (moto counts reservations): shrink them, not the test.
    monkeypatch.setattr(discovery, "EC2_PAGE_SIZE", 5)
    monkeypatch.setattr(discovery, "SSM_PAGE_SIZE", 20)  # filters of 50, 50, 20 ids: 3 + 3 + 1 pages
    ids = [i for _ in range(12) for i in world.launch(10)]
    report = world.invoke({})

    assert sorted(by_id(report)) == sorted(ids)
    assert report["summary"]["succeeded"] == 120
    assert world.api_calls["ec2.DescribeInstances"] == 3
    info_requests = world.ssm.sent("DescribeInstanceInformation")
    filters = [r["Filters"][0]["Values"] for r in info_requests if "NextToken" not in r]
    assert len(filters) == math.ceil(120 / 50)
    assert sorted(i for values in filters for i in values) == sorted(ids)
    assert len(info_requests) == 3 + 3 + 1, "every chunk paged through with NextToken"
    listing = world.ssm.sent("ListCommandInvocations")
    assert len(listing) == 3
    assert [("NextToken" in r) for r in listing] == [False, True, True]
    assert all(r["Details"] is True and r["MaxResults"] == 50 for r in listing)


def test_a_throttling_storm_is_ridden_out_with_back_off(world: World) -> None:
    ids = world.launch(120)
    # Two of every three requests to each operation are throttled.
    world.ssm.fault = lambda operation, number, params: "ThrottlingException" if number % 3 else None
    report = world.invoke({})

    assert status_and_reason(report) == dict.fromkeys(ids, ("succeeded", "ok"))
    # The compliance writers share one client from several threads, so their attempts interleave in
    # the operation's count (one may land on the unthrottled number sooner): asked apart, below.
    concurrent = ("SendCommand", "PutComplianceItems")
    received = sum(n for name, n in world.ssm.calls.items() if name not in concurrent)
    made = sum(
        n
        for name, n in world.api_calls.items()
        if name.startswith("ssm.") and name.removeprefix("ssm.") not in concurrent
    )
    assert received == 3 * made, "every SSM call needed three attempts (botocore's retries)"
    assert len(world.retry_sleeps) >= 2 * made
    # Under a storm botocore's retry quota runs out (its standard/adaptive modes): some writes fail,
    # and each is counted, none lost without a word.
    assert world.api_calls["ssm.PutComplianceItems"] == 120
    assert world.ssm.calls["PutComplianceItems"] > 120, "the writes were retried"
    tally = report["compliance"]
    assert tally["written"] > 0
    assert tally["written"] + tally["failed"] == 120
    assert set(tally.get("errors", {})) <= {"ThrottlingException"}
    # SendCommand is retried by the runner itself, after back-off, as three calls.
    assert world.ssm.calls["SendCommand"] == world.api_calls["ssm.SendCommand"] == 3
    assert {1.0, 2.0} <= set(world.clock.slept), "the runner backs off 1 s, then 2 s"
    assert len(world.commands) == 1, "a throttled SendCommand is not a second command"
    assert world.ssm.calls["ListCommands"] == len(world.ssm.sent("ListCommands"))
    assert lookups(world) == [], "throttling is no doubt: nobody looks for a lost command"


def test_throttling_beyond_the_retries_fails_the_send_not_the_run(world: World) -> None:
    ids = world.launch(3)
    world.ssm.fault = lambda operation, number, params: (
        "ThrottlingException" if operation == "SendCommand" else None
    )
    report = world.invoke({})

    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_failed"))
    assert {i["detail"]["error"] for i in report["instances"]} == {"ThrottlingException"}
    assert world.commands == {}
    assert lookups(world) == []
    assert world.ssm.calls["SendCommand"] == run_command.SEND_ATTEMPTS
    assert sum(world.clock.slept) == 1 + 2 + 4 + 8, "no wait after the last attempt"


def test_a_failing_batch_loses_only_its_own_instances(world: World) -> None:
    ids = sorted(world.launch(120))
    doomed = ids[60]  # in the second batch of 50
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if doomed in params.get("InstanceIds", []) else None
    )
    report = world.invoke({"instance_ids": ids})

    results = status_and_reason(report)
    second_batch = set(ids[50:100])
    assert {results[i] for i in second_batch} == {("failed", "send_failed")}
    assert {results[i] for i in set(ids) - second_batch} == {("succeeded", "ok")}
    commanded = [i for c in world.commands.values() for i in c.request["InstanceIds"]]
    assert sorted(commanded) == sorted(set(ids) - second_batch), "no instance commanded twice"
    assert len(report["command_ids"]) == 2


def test_narrowed_runs_of_many_ids_keep_concurrency_fleet_wide(world: World) -> None:
    world.configure(MAX_CONCURRENCY="10%", MAX_ERRORS="5%")
    ids = world.launch(300)
    report = world.invoke({"instance_ids": ids})

    sent = world.ssm.sent("SendCommand")
    assert len(sent) == 6
    assert sum(int(s["MaxConcurrency"]) for s in sent) == 30
    assert sum(int(s["MaxErrors"]) for s in sent) == 15
    assert world.engine.peak_concurrency() <= 30
    assert report["summary"]["succeeded"] == 300


def test_a_small_absolute_budget_sends_batches_one_after_another(world: World) -> None:
    world.configure(MAX_CONCURRENCY="1")
    ids = world.launch(120, agent=CannedRun(duration=2))
    report = world.invoke({"instance_ids": ids})

    commands = list(world.commands.values())
    assert len(commands) == 3
    for earlier, later in itertools.pairwise(commands):
        assert later.requested >= max(i.finished or 0 for i in earlier.invocations.values())
    assert world.engine.peak_concurrency() == 1
    assert report["summary"]["succeeded"] == 120


def test_the_lambda_deadline_returns_pending_instead_of_being_killed(world: World) -> None:
    quick = world.launch(2)
    slow = world.launch(2, agent=CannedRun(duration=5000))
    world.configure(MAX_CONCURRENCY="100%")
    start = world.clock.monotonic()
    report = world.invoke({"wait_seconds": 840}, timeout_seconds=300)

    assert world.clock.monotonic() - start < 300 - runner.RESERVE_SECONDS + 1
    results = status_and_reason(report)
    assert {results[i] for i in quick} == {("succeeded", "ok")}
    assert {results[i] for i in slow} == {("pending", "in_progress")}
    assert all(by_id(report)[i]["detail"]["command_id"] == report["command_ids"][0] for i in slow)
    assert world.ssm.calls["CancelCommand"] == 0, "running commands are left to finish"


def test_wait_seconds_zero_sends_and_reports_pending_without_polling(world: World) -> None:
    ids = world.launch(3)
    report = world.invoke({"wait_seconds": 0})
    assert {status for status, _ in status_and_reason(report).values()} == {"pending"}
    assert len(world.ssm.sent("SendCommand")) == 1
    assert [r for r in world.ssm.sent("ListCommands") if "CommandId" in r] == [], "no poll"
    assert sorted(by_id(report)) == sorted(ids)


def test_unparseable_output_falls_back_to_the_full_output_once_per_instance(world: World) -> None:
    noisy = result_line("changed", "ok")
    noisy = "\n".join(
        ["progress " + "." * 100] * 30 + [noisy]
    )  # the line is past the 2,500 listed characters
    (late_line,) = world.launch(agent=CannedRun(stdout=noisy))
    (garbage,) = world.launch(agent=CannedRun(stdout="Segmentation fault"))
    fine = world.launch(3)
    report = world.invoke({})

    results = status_and_reason(report)
    assert results[late_line] == ("succeeded", "ok")
    assert results[garbage] == ("failed", "output_unparseable")
    assert {results[i] for i in fine} == {("succeeded", "ok")}
    fetched = sorted(r["InstanceId"] for r in world.ssm.sent("GetCommandInvocation"))
    assert fetched == sorted([late_line, garbage])


def test_fallback_calls_are_capped(world: World) -> None:
    world.launch(execution.MAX_OUTPUT_FALLBACKS + 5, agent=CannedRun(stdout="no result here"))
    report = world.invoke({})
    assert report["summary"]["failed"] == execution.MAX_OUTPUT_FALLBACKS + 5
    assert world.ssm.calls["GetCommandInvocation"] == execution.MAX_OUTPUT_FALLBACKS


def test_requested_instances_without_the_tag_are_reported_not_commanded(world: World) -> None:
    (tagged,) = world.launch()
    (untagged,) = world.launch(tagged=False)
    (stopped,) = world.launch(running=False)
    missing = "i-0fedcba9876543210"
    report = world.invoke({"instance_ids": [untagged, tagged, stopped, missing]})

    assert status_and_reason(report) == {
        tagged: ("succeeded", "ok"),
        untagged: ("skipped", "not_target_tagged"),
        stopped: ("unreachable", "instance_not_running"),
        missing: ("skipped", "instance_not_found"),
    }
    (sent,) = world.ssm.sent("SendCommand")
    assert sent["InstanceIds"] == [tagged]
    assert "Targets" not in sent


def test_dry_run_plans_and_sends_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.configure(NOTIFY_POLICY="always")
    ids = world.launch(3)
    (offline,) = world.launch(ping_status="ConnectionLost")
    report = world.invoke(load_event("dry_run"))

    assert report["dry_run"] is True
    assert report["command_ids"] == []
    results = status_and_reason(report)
    assert {results[i] for i in ids} == {("skipped", "dry_run")}
    assert results[offline] == ("unreachable", "ssm_connection_lost")
    assert by_id(report)[ids[0]]["detail"]["dispatch"] == "target tag"
    assert world.ssm.sent("SendCommand") == []
    assert world.notifications() == []
    assert '"_aws"' not in capsys.readouterr().out, "a dry run feeds no alarm"


def test_failures_are_published_per_policy(world: World) -> None:
    (good,) = world.launch()
    (bad,) = world.launch(
        name="api-7",
        agent=CannedRun(result_line("failed", "no_credentials", "no role"), exit_code=1),
    )
    report = world.invoke({})

    (notification,) = world.notifications()
    assert notification["Subject"] == "ecr-fleet-auth refresh: 1 failed of 2"
    text = notification["Message"]
    assert f"Run {report['run_id']} (manual)" in text
    assert f"  {bad} (api-7): no_credentials - no role" in text
    assert good not in text


@pytest.mark.parametrize(
    ("policy", "fleet_fails", "published"),
    [("failures", False, 0), ("always", False, 1), ("never", True, 0), ("failures", True, 1)],
)
def test_notify_policy_decides_whether_sns_is_called(
    world: World, policy: str, fleet_fails: bool, published: int
) -> None:
    world.configure(NOTIFY_POLICY=policy)
    world.launch(agent=CannedRun("", exit_code=1) if fleet_fails else None)
    world.invoke({})
    assert len(world.notifications()) == published


def test_a_lost_notification_does_not_lose_the_report(world: World) -> None:
    world.configure(TOPIC_ARN=f"arn:aws:sns:eu-west-1:123456789012:{'missing'}")
    world.launch(agent=CannedRun("", exit_code=1))
    report = world.invoke({})
    assert report["summary"]["failed"] == 1


def test_offline_tagged_instances_do_not_hold_the_run_until_their_delivery_timeout(world: World) -> None:
    # SSM's tag target includes them, so the command stays InProgress for the
    # delivery timeout (600 s); the runner stops once its own instances are done.
    online = world.launch(3)
    (offline,) = world.launch(ping_status="ConnectionLost")
    (stopped,) = world.launch(running=False)
    start = world.clock.monotonic()
    report = world.invoke({})

    assert world.clock.monotonic() - start < 120
    assert world.ssm.sent("SendCommand")[0]["TimeoutSeconds"] == 600
    assert status_and_reason(report) == {
        **dict.fromkeys(online, ("succeeded", "ok")),
        offline: ("unreachable", "ssm_connection_lost"),
    }
    assert stopped not in by_id(report), "a stopped instance is not part of the running fleet"


def test_a_failed_poll_is_only_a_missed_look(world: World) -> None:
    ids = world.launch(3)
    # The first poll fails through every retry; the next one succeeds.
    world.ssm.fault = lambda operation, number, params: (
        "InternalServerError" if operation == "ListCommands" and number <= 8 else None
    )
    report = world.invoke({})
    assert status_and_reason(report) == dict.fromkeys(ids, ("succeeded", "ok"))
    assert world.ssm.calls["ListCommands"] > 8


def test_unreadable_results_are_reported_not_guessed(world: World) -> None:
    ids = world.launch(2)
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if operation == "ListCommandInvocations" else None
    )
    start = world.clock.monotonic()
    report = world.invoke({})
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "results_unavailable"))
    assert world.clock.monotonic() - start < 120, "a finished command is not waited on to the deadline"
    assert {i["detail"]["command_id"] for i in report["instances"]} == set(report["command_ids"])


def test_the_report_is_published_per_protocol_plain_text_by_default_a_chat_notification_over_https(
    world: World,
) -> None:
    """SNS Publish with MessageStructure json ("send a different message for each protocol ... contain
    at least a top-level JSON key of "default""; SNS API reference, Publish): subscribers without a key
    of their own (e-mail, this queue) get the plain-text report as before; ``https``, the protocol of
    AWS Chatbot's subscription, the Chatbot custom notification (see test_report)."""
    world.launch(agent=CannedRun(result_line("failed", "no_credentials", "no role"), exit_code=1))
    published: list[dict[str, Any]] = []
    world.runner.session.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: published.append(dict(params))
    )
    report = world.invoke({})

    (notification,) = world.notifications()
    assert notification["Message"].startswith("ecr-fleet-auth refresh: 1 failed of 1\n")
    (params,) = published
    assert params["MessageStructure"] == "json"
    per_protocol = json.loads(params["Message"])
    assert per_protocol["default"] == notification["Message"]
    chat = json.loads(per_protocol["https"])
    assert chat["source"] == "custom" and chat["content"]["title"] == notification["Subject"]
    assert report["run_id"] in chat["content"]["description"]
