"""The report's shape and summary, the notify policy, and the SNS text."""

from __future__ import annotations

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.report import (
    MAX_LISTED_PER_STATUS,
    MAX_MESSAGE_CHARS,
    MAX_SUBJECT_CHARS,
    InstanceResult,
    Report,
    chat_notification,
    message,
    should_notify,
    subject,
)
from ecr_fleet_auth.shared.troubleshooting import NEXT_STEPS


def result(
    number: int, status: str, outcome: str | None = None, reason: str = "ok", **detail: str
) -> InstanceResult:
    return InstanceResult(f"i-{number:017x}", f"web-{number}", status, outcome, reason, dict(detail))


def report(*instances: InstanceResult, dry_run: bool = False) -> Report:
    return Report(
        run_id="run-1",
        action="refresh",
        dry_run=dry_run,
        source="schedule",
        started_at="2026-11-27T06:00:00Z",
        finished_at="2026-11-27T06:02:00Z",
        instances=instances,
        command_ids=("cmd-1",),
    )


MIXED = report(
    result(1, "succeeded", "changed"),
    result(2, "succeeded", "unchanged"),
    result(3, "failed", "failed", "login_failed", message="401 from registry"),
    result(4, "unreachable", None, "ssm_connection_lost"),
    result(5, "skipped", "skipped", "unsupported_os"),
    result(6, "pending", None, "in_progress"),
)


def test_report_has_exactly_the_contract_shape() -> None:
    data = MIXED.to_dict()
    assert list(data) == [
        "run_id", "action", "dry_run", "source", "started_at", "finished_at",
        "summary", "instances", "command_ids",
    ]  # fmt: skip
    # Every entry says its account and region (docs/reference/contract.md), also in a single-account run.
    assert list(data["instances"][0]) == [
        "instance_id", "account_id", "region", "name", "status", "outcome", "reason", "detail",
    ]  # fmt: skip
    assert data["summary"] == {
        "total": 6, "succeeded": 2, "changed": 1, "unchanged": 1,
        "failed": 1, "unreachable": 1, "skipped": 1, "pending": 1,
    }  # fmt: skip
    assert data["summary"]["total"] == len(data["instances"])
    assert sum(data["summary"][status] for status in contract.INSTANCE_STATUSES) == data["summary"]["total"]


@pytest.mark.parametrize(
    ("policy", "the_report", "expected"),
    [
        ("failures", MIXED, True),
        ("failures", report(result(1, "succeeded", "changed"), result(2, "pending")), False),
        ("failures", report(result(1, "unreachable", reason="not_ssm_managed")), True),
        ("always", report(result(1, "succeeded", "changed")), True),
        ("always", report(), True),
        ("never", MIXED, False),
        ("always", report(result(1, "failed"), dry_run=True), False),
    ],
)
def test_notify_policy(policy: str, the_report: Report, expected: bool) -> None:
    assert should_notify(the_report, policy) is expected


def test_subject_says_what_went_wrong_or_that_all_is_well() -> None:
    assert subject(MIXED) == "ecr-fleet-auth refresh: 1 failed, 1 unreachable, 1 pending of 6"
    assert subject(report(result(1, "succeeded", "changed"))) == "ecr-fleet-auth refresh: 1 of 1 succeeded"


def test_message_gives_counts_then_the_instances_that_need_attention() -> None:
    text = message(MIXED)
    assert text.startswith(subject(MIXED) + "\n")
    assert "succeeded:   2 (1 changed, 1 unchanged)" in text
    assert "failed:      1" in text
    failed_section = text.split("Failed (1):\n", 1)[1]
    assert failed_section.startswith(
        f"  i-{3:017x} (web-3): login_failed - 401 from registry\n"
        f"      next step: {NEXT_STEPS['login_failed']}\n"
    )
    assert f"  i-{4:017x} (web-4): ssm_connection_lost" in text.split("Unreachable (1):\n", 1)[1]
    assert "web-1" not in text, "successes are counted, not listed"
    assert "Run Command ids: cmd-1" in text


def test_message_stays_bounded_for_a_fleet_of_failures() -> None:
    many = report(*(result(n, "failed", "failed", "login_failed", message="x" * 500) for n in range(5000)))
    text = message(many)
    assert len(text) <= MAX_MESSAGE_CHARS
    assert text.count("login_failed") == MAX_LISTED_PER_STATUS
    assert f"... and {5000 - MAX_LISTED_PER_STATUS} more" in text
    assert "failed:      5000" in text
    assert len(subject(many)) <= MAX_SUBJECT_CHARS


def test_message_links_the_run_command_output_log_group() -> None:
    text = message(MIXED, output_log_group="/ecr-fleet-auth/run-command", region="eu-west-1")
    assert text.rstrip().endswith(
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Fecr-fleet-auth$252Frun-command"
    )
    assert "console.amazonaws.cn" in message(MIXED, output_log_group="g", region="cn-north-1")
    assert "Full agent output" not in message(MIXED)


@pytest.mark.parametrize(
    ("region", "console"),
    [
        # AWS General Reference, "AWS Management Console endpoints": https://region-code.console.aws.amazon.com
        ("eu-west-1", "https://eu-west-1.console.aws.amazon.com/"),
        ("cn-north-1", "https://console.amazonaws.cn/"),  # the China Regions' console
        ("us-gov-west-1", "https://console.amazonaws-us-gov.com/"),  # AWS GovCloud (US)'s console
    ],
)
def test_message_links_each_command_in_its_partitions_console(region: str, console: str) -> None:
    """The partition is botocore's (partitions.partition_of), the console host that partition's."""
    text = message(MIXED, output_log_group="/ecr-fleet-auth/run-command", region=region)
    link = f"{console}systems-manager/run-command/cmd-1?region={region}"
    assert f"The commands in the console:\n  {link}\n" in text
    assert f"  {console}cloudwatch/home?region={region}#logsV2:" in text


def test_a_partition_without_a_known_console_gets_no_link_rather_than_a_wrong_one() -> None:
    text = message(MIXED, output_log_group="g", region="us-isob-east-1")
    assert "Run Command ids: cmd-1" in text, "the id is still there to look up"
    assert "https://" not in text


def test_an_organizations_commands_link_to_the_region_each_ran_in() -> None:
    """One command per account and region: each link names the region of the instances it reached."""
    east = InstanceResult(
        "i-1",
        "a",
        "failed",
        "failed",
        "login_failed",
        {"command_id": "cmd-east"},
        "111111111111",
        "us-east-1",
    )
    west = InstanceResult(
        "i-2", "b", "succeeded", "changed", "ok", {"command_id": "cmd-west"}, "222222222222", "eu-west-1"
    )
    both = Report(
        run_id="run-3", action="refresh", dry_run=False, source="schedule",
        started_at="2026-11-27T06:00:00Z", finished_at="2026-11-27T06:02:00Z",
        instances=(east, west), command_ids=("cmd-east", "cmd-west"),
    )  # fmt: skip
    text = message(both, region="eu-west-1")
    assert (
        "https://us-east-1.console.aws.amazon.com/systems-manager/run-command/cmd-east?region=us-east-1"
        in text
    )
    assert (
        "https://eu-west-1.console.aws.amazon.com/systems-manager/run-command/cmd-west?region=eu-west-1"
        in text
    )


def test_the_message_is_plain_text_a_mail_client_shows_as_is() -> None:
    """SNS e-mail (protocol email) is plain text: no markup, lines short enough to read unwrapped
    (links excepted), nothing but printable ASCII beside the line breaks."""
    text = message(MIXED, output_log_group="/ecr-fleet-auth/run-command", region="eu-west-1")
    assert text.isascii()
    assert not any(mark in text for mark in ("<a ", "<br", "**", "](", "\t"))
    for line in text.splitlines():
        assert len(line) <= 160 or line.strip().startswith("https://") or "next step:" in line, line


def test_a_failed_run_is_a_failure_that_says_why_and_what_to_do() -> None:
    error = {"reason": "run_failed", "code": "ThrottlingException", "message": "Rate exceeded"}
    failed = Report(
        run_id="run-2",
        action="refresh",
        dry_run=False,
        source="schedule",
        started_at="2026-11-27T06:00:00Z",
        finished_at="2026-11-27T06:01:00Z",
        instances=(),
        command_ids=(),
        error=error,
    )
    assert should_notify(failed, "failures") and should_notify(failed, "always")
    assert not should_notify(failed, "never")
    assert subject(failed) == "ecr-fleet-auth refresh: run failed (ThrottlingException)"
    text = message(failed)
    assert "ThrottlingException" in text and "Rate exceeded" in text
    assert f"next step: {NEXT_STEPS['run_failed']}" in text
    assert failed.to_dict()["error"] == error
    assert "error" not in MIXED.to_dict(), "a run that completed keeps the contract's shape"


def test_the_chat_gets_a_chatbot_custom_notification_with_the_console_links() -> None:
    """AWS Chatbot shows in a channel only AWS events and "custom notifications" in its event format
    (Chatbot Administrator Guide, "Custom notifications": ``{"version": "1.0", "source": "custom",
    "content": {"textType": "client-markdown", "title": ..., "description": ...}}``); plain text it
    drops. The chat's notification is short: counts, the instances that need attention, each command's
    console link (partition-aware, as the e-mail's)."""
    chat = chat_notification(MIXED, region="cn-north-1")
    assert (chat["version"], chat["source"]) == ("1.0", "custom")
    content = chat["content"]
    assert content["textType"] == "client-markdown"
    assert content["title"] == subject(MIXED)
    description = content["description"]
    assert "failed 1" in description and "unreachable 1" in description
    assert f"`i-{3:017x}` failed: login_failed" in description
    assert f"i-{1:017x}" not in description, "successes are counted, not listed"
    assert (
        "[Command cmd-1](https://console.amazonaws.cn/systems-manager/run-command/cmd-1?region=cn-north-1)"
        in (description)
    )
    many = report(*(result(n, "failed", "failed", "login_failed") for n in range(500)))
    assert len(chat_notification(many, region="eu-west-1")["content"]["description"]) <= 3_000
