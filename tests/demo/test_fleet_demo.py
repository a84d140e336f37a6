"""`make demo`'s new-instance step, against a stand-in fleet: what it prints and when it fails."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from demo import fleet_demo as demo
from ecr_fleet_auth.shared import contract

INSTANCE_ID = "i-0123456789abcdef0"
COMMAND_ID = "11111111-2222-3333-4444-555555555555"


def _result_line(outcome: str, reason: str) -> str:
    return json.dumps({"schema": contract.RESULT_SCHEMA, "outcome": outcome, "reason": reason})


@dataclass
class Instance:
    name: str
    instance_id: str = INSTANCE_ID
    ping_status: str = "ConnectionLost"  # the pull matrix shows it as offline: no sandbox needed
    account_id: str = "123456789012"
    sandbox: None = None


@dataclass
class Pages:
    invocations: list[dict[str, Any]]

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [{"CommandInvocations": self.invocations}]


@dataclass
class Ssm:
    invocations: list[dict[str, Any]]

    def get_paginator(self, name: str) -> Pages:
        assert name == "list_command_invocations"
        return Pages(self.invocations)


@dataclass
class Fleet:
    idle: bool
    invocations: list[dict[str, Any]]
    reports: list[dict[str, Any]] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    clients_in: list[str] = field(default_factory=list)  # member accounts whose Run Command was read

    accounts: list[str | None] = field(default_factory=list)  # where each instance was launched

    def add_instance(
        self, name: str, users: Any, *, launched_now: bool, account: str | None = None
    ) -> Instance:
        assert launched_now
        self.instances.append(Instance(name))
        self.accounts.append(account)
        return self.instances[-1]

    def wait_for_new_instances(self, timeout: float) -> bool:
        return self.idle

    def event_reports(self) -> list[dict[str, Any]]:
        return self.reports if self.instances else []  # the runs of the instance's events, once launched

    def client(self, name: str) -> Ssm:
        return Ssm(self.invocations)

    def client_in(self, account: str, name: str) -> Ssm:
        self.clients_in.append(account)
        return Ssm(self.invocations)


def _invocation(status: str, outcome: str, reason: str) -> dict[str, Any]:
    return {
        "CommandId": COMMAND_ID,
        "InstanceId": INSTANCE_ID,
        "Status": status,
        "StatusDetails": status,
        "CommandPlugins": [{"Output": _result_line(outcome, reason), "ResponseCode": 0}],
    }


def _report(not_succeeded: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "run_id": "run-1",
        "action": "refresh",
        "dry_run": False,
        "source": "instance_running",
        "summary": {"total": 1, "succeeded": 1 - len(not_succeeded)},
        "command_ids": [COMMAND_ID],
        "instances_not_succeeded": not_succeeded,
        "instances_not_logged": 0,
    }


def test_a_covered_instance_shows_its_row_from_run_commands_history(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet = Fleet(idle=True, invocations=[_invocation("Success", "changed", "ok")], reports=[_report([])])
    assert demo.new_instance_step(fleet) is True  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert "after the earlier runs (all manual, no scheduled run)" in out
    assert "scheduled run: web-5-new" not in out
    row = next(line for line in out.splitlines() if line.startswith(INSTANCE_ID))
    assert row.split()[1:5] == ["web-5-new", "succeeded", "changed", "ok"]
    assert f"command {COMMAND_ID}: Success -> succeeded (changed, ok)" in out
    assert err == ""


@pytest.mark.parametrize(
    ("idle", "invocations"),
    [
        (False, []),  # nothing reached it in time
        (True, [_invocation("Failed", "failed", "config_corrupt")]),  # reached, but failed
    ],
)
def test_an_instance_not_covered_in_time_fails_the_demo(
    capsys: pytest.CaptureFixture[str], idle: bool, invocations: list[dict[str, Any]]
) -> None:
    fleet = Fleet(idle=idle, invocations=invocations)
    assert demo.new_instance_step(fleet) is False  # type: ignore[arg-type]
    _, err = capsys.readouterr()
    assert f"make demo: FAILED: web-5-new was not covered within {demo.NEW_INSTANCE_WAIT_SECONDS} s" in err


def test_a_member_accounts_new_instance_is_launched_there_and_read_from_its_own_run_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet = Fleet(idle=True, invocations=[_invocation("Success", "changed", "ok")], reports=[_report([])])
    assert demo.new_instance_step(fleet, "m-web-3-new", demo.MEMBER_ACCOUNT) is True  # type: ignore[arg-type]
    out, _ = capsys.readouterr()
    assert fleet.accounts == [demo.MEMBER_ACCOUNT] and fleet.clients_in == [demo.MEMBER_ACCOUNT]
    assert f"launched in member account {demo.MEMBER_ACCOUNT}" in out
    assert "the central stack's member bus" in out
    row = next(line for line in out.splitlines() if line.startswith(INSTANCE_ID))
    assert row.split()[1:5] == ["m-web-3-new", "succeeded", "changed", "ok"]


def test_help_says_what_the_demo_does_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m demo.fleet_demo --help`` prints its usage and exits 0 (argparse), before
    anything is synthesized or started; an unknown option is refused (exit 2)."""
    monkeypatch.setattr(demo, "synthesize", lambda *a, **k: pytest.fail("--help must start nothing"))
    monkeypatch.setattr(demo, "prerequisites", lambda: pytest.fail("--help must start nothing"))
    with pytest.raises(SystemExit) as help_exit:
        demo.main(["--help"])
    assert help_exit.value.code == 0
    assert "usage: make demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        demo.main(["--fast"])
    assert bad.value.code == 2


class ComplianceConsole:
    """SSM's Compliance calls as an account with nothing to list answers them."""

    def list_compliance_summaries(self, **_: Any) -> dict[str, Any]:
        return {"ComplianceSummaryItems": []}

    def describe_instance_information(self, **_: Any) -> dict[str, Any]:
        return {"InstanceInformationList": []}


class ConsoleFleet:
    def client(self, name: str) -> ComplianceConsole:
        return ComplianceConsole()

    def client_in(self, account: str, name: str) -> ComplianceConsole:
        return ComplianceConsole()


def test_an_organization_runs_compliance_count_is_not_shown_as_one_accounts() -> None:
    """An acceptance pass read "this run wrote 6 instance(s)" under each of two accounts (4 and 2):
    the run's count is said once, with its number of accounts; a member account's part shows only
    what its own console lists."""
    report = {
        "compliance": {"type": "Custom:EcrFleetAuth", "written": 6},
        "summary": {"accounts": {"111111111111": {"total": 2}, "123456789012": {"total": 4}}},
    }
    fleet: Any = ConsoleFleet()
    whole = demo.compliance_summary(fleet, report)
    member = demo.compliance_summary(fleet, report, "111111111111", one_of_many=True)
    assert "this run, over 2 accounts, wrote 6 instance(s)" in whole
    assert "wrote" not in member and "(account 111111111111)" in member
    single = {"compliance": {"type": "Custom:EcrFleetAuth", "written": 4}, "summary": {"accounts": {}}}
    assert demo.compliance_summary(fleet, single).endswith("this run wrote 4 instance(s)")
