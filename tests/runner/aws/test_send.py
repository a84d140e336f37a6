"""SendCommand has no idempotency token: a send is retried only when no command can have started.

Faults are injected in the Run Command emulator at the HTTP layer, so the runner's
real clients (and botocore's own retry policy) see them as they would from the service:
refused before anything happened, or carried out with the answer lost.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from ecr_fleet_auth.aws import run_command
from tests.runner.run.test_runs import lookups, status_and_reason
from tests.support.runner_world import DOCUMENT, World

URL = "http://127.0.0.1:9"


def on_send(code: str, *, times: int = 1) -> Any:
    """A fault rule: the first `times` SendCommand requests answer with `code`."""
    return lambda operation, number, params: code if operation == "SendCommand" and number <= times else None


def commanded(world: World) -> list[str]:
    return [
        instance_id
        for command in world.commands.values()
        for instance_id in command.request.get("InstanceIds", [])
    ]


@pytest.mark.parametrize("lost", ["InternalServerError", "ReadTimeoutError", "ConnectionClosedError"])
def test_a_send_whose_answer_was_lost_is_found_not_repeated(world: World, lost: str) -> None:
    ids = world.launch(3)
    world.ssm.lost_answer = on_send(lost)
    report = world.invoke({"instance_ids": ids})

    assert world.ssm.calls["SendCommand"] == 1, "never sent again"
    assert sorted(commanded(world)) == sorted(ids)
    assert status_and_reason(report) == dict.fromkeys(ids, ("succeeded", "ok"))
    assert report["command_ids"] == list(world.commands)
    (lookup,) = lookups(world)
    assert {f["key"]: f["value"] for f in lookup["Filters"]} == {
        "InvokedAfter": "2026-11-27T05:55:00Z",
        "DocumentName": DOCUMENT,
    }


def test_each_send_carries_its_own_comment_with_the_run_id(world: World) -> None:
    ids = world.launch(120)
    report = world.invoke({"instance_ids": ids})

    comments = [r["Comment"] for r in world.ssm.sent("SendCommand")]
    assert len(comments) == 3 == len(set(comments))
    assert all(report["run_id"] in comment and len(comment) <= 100 for comment in comments)


def test_a_lost_answer_for_a_whole_fleet_command_is_found_too(world: World) -> None:
    ids = world.launch(4)
    world.ssm.lost_answer = on_send("InternalServerError")
    report = world.invoke({})

    assert world.ssm.calls["SendCommand"] == 1
    assert status_and_reason(report) == dict.fromkeys(ids, ("succeeded", "ok"))


@pytest.mark.parametrize("refused", ["InternalServerError", "ServiceUnavailable"])
def test_a_send_refused_by_a_server_error_is_never_sent_again(world: World, refused: str) -> None:
    # A 5xx leaves it unknown whether the command started, and ListCommands may lag:
    # not finding it proves nothing, so the batch is reported, never sent twice.
    ids = world.launch(3)
    world.ssm.fault = on_send(refused, times=2)
    start = world.clock.monotonic()
    report = world.invoke({"instance_ids": ids, "wait_seconds": 120})

    assert world.ssm.calls["SendCommand"] == 1
    assert world.commands == {}
    assert len(lookups(world)) > 3, "looked for it until the run's deadline"
    assert world.clock.monotonic() - start <= 121
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_unconfirmed"))
    assert {i["detail"]["error"] for i in report["instances"]} == {refused}
    assert all(report["run_id"] in i["detail"]["comment"] for i in report["instances"])


@pytest.mark.parametrize("unsent", ["ThrottlingException", "EndpointConnectionError", "ConnectTimeoutError"])
def test_a_send_that_cannot_have_started_is_sent_again_without_looking(world: World, unsent: str) -> None:
    ids = world.launch(2)
    world.ssm.fault = on_send(unsent, times=2)
    report = world.invoke({"instance_ids": ids})

    assert world.ssm.calls["SendCommand"] == 3
    assert lookups(world) == []
    assert status_and_reason(report) == dict.fromkeys(ids, ("succeeded", "ok"))


def test_a_send_throttled_every_time_fails_its_batch_after_the_last_attempt(world: World) -> None:
    ids = world.launch(2)
    world.ssm.fault = on_send("ThrottlingException", times=100)
    report = world.invoke({"instance_ids": ids})

    assert world.ssm.calls["SendCommand"] == run_command.SEND_ATTEMPTS
    assert world.commands == {}
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_failed"))
    assert {i["detail"]["error"] for i in report["instances"]} == {"ThrottlingException"}


@pytest.mark.parametrize("code", ["InvalidDocument", "InvalidParameters", "AccessDeniedException"])
def test_a_send_the_service_rejects_is_not_retried(world: World, code: str) -> None:
    ids = world.launch(2)
    world.ssm.fault = on_send(code, times=100)
    report = world.invoke({"instance_ids": ids})

    assert world.ssm.calls["SendCommand"] == 1
    assert lookups(world) == []
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_failed"))


def test_when_the_lookup_fails_the_send_is_not_risked_again(world: World) -> None:
    ids = world.launch(2)
    world.ssm.lost_answer = on_send("InternalServerError")
    searching = lambda operation, number, params: (  # noqa: E731
        "AccessDeniedException" if operation == "ListCommands" and "CommandId" not in params else None
    )
    world.ssm.fault = searching
    report = world.invoke({"instance_ids": ids, "wait_seconds": 60})

    assert world.ssm.calls["SendCommand"] == 1, "a second send could run the agent twice"
    assert status_and_reason(report) == dict.fromkeys(ids, ("failed", "send_unconfirmed"))
    assert {i["detail"]["error"] for i in report["instances"]} == {"InternalServerError"}


def _client_error(code: str, status: int) -> ClientError:
    answer: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(answer, "SendCommand")


@pytest.mark.parametrize(
    ("error", "doubt"),
    [
        (_client_error("ThrottlingException", 400), "not_started"),
        (_client_error("InternalServerError", 500), "maybe_started"),
        (_client_error("ServiceUnavailable", 503), "maybe_started"),
        (_client_error("InvalidDocument", 400), None),
        (_client_error("AccessDeniedException", 400), None),
        (EndpointConnectionError(endpoint_url=URL), "not_started"),
        (ConnectTimeoutError(endpoint_url=URL), "not_started"),
        (ReadTimeoutError(endpoint_url=URL), "maybe_started"),
        (ConnectionClosedError(endpoint_url=URL), "maybe_started"),
        (NoCredentialsError(), None),
    ],
)
def test_failed_sends_are_classified_by_whether_a_command_may_have_started(error: Any, doubt: Any) -> None:
    assert run_command._send_doubt(error) == doubt
