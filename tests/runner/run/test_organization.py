"""Organization scale (issue 14) through ``handler.handler``: many accounts x regions, one run, one report.

The runner gets the environment of the stack synthesized with organization context
(``organizationalUnitIds``, ``memberRegions``: ``ORGANIZATION_CONTEXT``), deploy-time references
replaced by this world's names; each member pair's document is the member template's, under
the name the stack gives the runner (``MEMBER_DOCUMENT_NAME``).

AWS's side is ``localfleet.composition.simulated_organization``: each (account, region) an EC2
inventory and Run Command of its own, requests routed by their SigV4 scope and credentials;
STS is moto's behind a gate that refuses AssumeRole as AWS does ("User: ... is not authorized
to perform: sts:AssumeRole on resource: ...", and moto would not: moto/sts/models.py);
ListStackInstances shows each stack instance's Status, DetailedStatus and StatusReason as the
CloudFormation API reference (StackInstanceSummary) documents them, honours CallAs and pages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ecr_fleet_auth.run import runner
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.invocations import InvalidEvent
from ecr_fleet_auth.shared.troubleshooting import NEXT_STEPS
from localfleet.clocks import SimulatedClock
from localfleet.composition import NewInstanceDelivery
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.eventbridge.models import state_change_event
from localfleet.harnesses.in_process_runner import capture_reports
from localfleet.hosts.canned_agent import CannedRun, result_line
from tests.support.organization_world import (
    HOME,
    OTHER_REGION,
    STACK_SET,
    InOrganization,
    OrganizationStack,
    emf_documents,
    runner_in_organization,
)
from tests.support.runner_world import DEPLOY_TIME, DOCUMENT, REGION, TAG_KEY, TAG_VALUE, World

A, B, C = "111111111111", "222222222222", "333333333333"
TAGS = {"Name": "web", TAG_KEY: TAG_VALUE}


@dataclass
class Organization(InOrganization):
    stack: OrganizationStack

    @property
    def document(self) -> dict[str, Any]:
        return self.stack.member_document

    @property
    def document_name(self) -> str:
        return self.stack.member_document_name

    @property
    def clock(self) -> SimulatedClock:
        assert isinstance(self.org.clock, SimulatedClock)
        return self.org.clock

    def member(self, account: str, region: str, **options: Any) -> SimulatedAccount:
        """The StackSet's stack instance there (``options``: its status ...) and what it deployed."""
        return self.org.deploy_member(
            account, region, document=(self.document_name, self.document), **options
        )

    def launch(self, account: str, region: str, count: int = 1, agent: CannedRun | None = None) -> list[str]:
        return self.org.pair(account, region).launch(count, tags=TAGS, agent=agent)

    def invoke(self, event: Any) -> dict[str, Any]:
        return self.runner.invoke(event)


@pytest.fixture
def organization(
    monkeypatch: pytest.MonkeyPatch, organization_stack: OrganizationStack, agent_document: dict[str, Any]
) -> Iterator[Organization]:
    with runner_in_organization(monkeypatch, organization_stack, agent_document) as running:
        yield Organization(running.org, running.runner, running.mail, organization_stack)


def where(report: dict[str, Any]) -> dict[str, tuple[str, str, str, str]]:
    """Instance id -> (account, region, status, reason)."""
    return {
        i["instance_id"]: (i["account_id"], i["region"], i["status"], i["reason"])
        for i in report["instances"]
    }


def targets(report: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {(t["account_id"], t["region"]): (t["status"], t["reason"]) for t in report["targets"]}


def dimensions(document: dict[str, Any]) -> list[list[str]]:
    return [list(names) for metric in document["_aws"]["CloudWatchMetrics"] for names in metric["Dimensions"]]


def test_three_accounts_in_two_regions_are_run_at_once_and_reported_together(
    organization: Organization, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    o = organization
    login_refused = CannedRun(result_line("failed", "login_failed", "401"), exit_code=1, duration=60)
    changed, unchanged = CannedRun(duration=60), CannedRun(result_line("unchanged", "ok"), duration=60)
    home_ids = o.launch(HOME, REGION, 1, unchanged)
    for region in (REGION, OTHER_REGION):
        o.member(A, region)
        o.member(B, region)
        o.member(C, region)
    a_eu = o.launch(A, REGION, 2, changed)
    a_us = o.launch(A, OTHER_REGION, 1, login_refused)
    c_eu = o.launch(C, REGION, 1, changed)
    o.launch(B, REGION, 1, changed)  # never reached: B's role does not trust the runner (below)
    # B's stack instances say CURRENT, but its role was changed by hand to trust someone else.
    o.org.identities.add_role(B, o.org.member_role, {"Statement": []})  # trusts no one
    # C's stack in us-east-1 failed: the instance is OUTDATED and says why.
    why = f"Account {C} should have 'AWSCloudFormationStackSetExecutionRole' role with trust relationship"
    o.member(C, OTHER_REGION, status="OUTDATED", detailed_status="FAILED", status_reason=why)
    started = o.clock.monotonic()

    report = o.invoke({"action": "refresh"})

    assert where(report) == {
        home_ids[0]: (HOME, REGION, "succeeded", "ok"),
        **dict.fromkeys(a_eu, (A, REGION, "succeeded", "ok")),
        a_us[0]: (A, OTHER_REGION, "failed", "login_failed"),
        c_eu[0]: (C, REGION, "succeeded", "ok"),
    }
    assert targets(report) == {
        (HOME, REGION): ("reached", None),
        (A, REGION): ("reached", None),
        (A, OTHER_REGION): ("reached", None),
        (B, REGION): ("unreachable", "role_not_assumable"),
        (B, OTHER_REGION): ("unreachable", "role_not_assumable"),
        (C, REGION): ("reached", None),
        (C, OTHER_REGION): ("unreachable", "member_stack_not_ready"),
    }
    by_pair = {(t["account_id"], t["region"]): t for t in report["targets"]}
    assert by_pair[(C, OTHER_REGION)]["detail"] == {
        "status": "OUTDATED", "detailed_status": "FAILED", "status_reason": why
    }  # fmt: skip
    assert by_pair[(B, REGION)]["detail"]["error"] == "AccessDenied"
    assert "is not authorized to perform: sts:AssumeRole" in by_pair[(B, REGION)]["detail"]["message"]
    # Per-account counts; an account never reached counts nothing.
    accounts = report["summary"]["accounts"]
    assert set(accounts) == {HOME, A, B, C}
    assert [accounts[A][count] for count in ("total", "succeeded", "changed", "failed")] == [3, 2, 2, 1]
    assert accounts[B]["total"] == 0
    assert accounts[HOME]["unchanged"] == 1
    assert sum(counts["total"] for counts in accounts.values()) == report["summary"]["total"] == 5
    # Each pair got its own document: the home pair the stack's, a member pair the StackSet's at
    # version 1, logging into the member's own registry; B and C/us-east-1 were sent nothing.
    (home_send,) = o.sent(HOME, REGION)
    assert (home_send["DocumentName"], home_send["Parameters"]["Registries"]) == (
        DOCUMENT, [f"{HOME}.dkr.ecr.{REGION}.amazonaws.com"]
    )  # fmt: skip
    (member_send,) = o.sent(A, OTHER_REGION)
    assert (member_send["DocumentName"], member_send["DocumentVersion"]) == (o.document_name, "1")
    assert member_send["Parameters"]["Registries"] == [f"{A}.dkr.ecr.{OTHER_REGION}.amazonaws.com"]
    # Its output goes to the member region's group of the central group's name (the member
    # template's; tests/infra/test_organization_stack.py: its instance policy may write to it).
    assert (
        member_send["CloudWatchOutputConfig"]
        == home_send["CloudWatchOutputConfig"]
        == {
            "CloudWatchLogGroupName": DEPLOY_TIME["OUTPUT_LOG_GROUP"],
            "CloudWatchOutputEnabled": True,
        }
    )
    assert o.sent(B, REGION) == [] and o.sent(C, OTHER_REGION) == []
    assert o.org.pair(C, OTHER_REGION).ec2_endpoint.calls == {}  # not ready: not even looked at
    # All at once: every agent runs 60 s, so five pairs one after the other would take 300 s and
    # more; at once they take about one pair's time (60 s, then polls backing off 5, 10, 20, 30 s...).
    assert o.clock.monotonic() - started < 150
    # One notification (a failure and unreachable pairs), naming what needs attention.
    (mail,) = o.notifications()
    assert mail["Subject"] == "ecr-fleet-auth refresh: 1 failed of 5; 3 of 7 account-regions unreachable"
    assert f"{B}/{REGION}: role_not_assumable - AccessDenied" in mail["Message"]
    assert f"[{A}/{OTHER_REGION}]: login_failed" in mail["Message"]
    # Today's metrics, fleet-wide only; each account's counts are a log record of their own.
    documents = emf_documents(capsys.readouterr().out)
    per_account = {
        entry["account_id"]: entry
        for record in caplog.records
        if record.getMessage() == contract.ACCOUNT_REPORT_LOG_MESSAGE
        for entry in [getattr(record, contract.ACCOUNT_REPORT_FIELD)]
    }
    (unreached,) = [d for d in documents if contract.TARGETS_UNREACHABLE_METRIC in d]
    assert unreached[contract.TARGETS_UNREACHABLE_METRIC] == [3.0]  # B's two pairs and C/us-east-1
    assert dimensions(unreached) == [[contract.METRIC_SERVICE_DIMENSION]]
    assert unreached[contract.METRIC_SERVICE_DIMENSION] == os.environ["STACK_NAME"]
    (invocation,) = [d for d in documents if d is not unreached]
    assert invocation[contract.status_metric_name("failed")] == [1.0]
    assert [contract.METRIC_SERVICE_DIMENSION, contract.METRIC_ACTION_DIMENSION] in dimensions(invocation)
    assert set(per_account) == {HOME, A, B, C}
    assert per_account[A]["run_id"] == report["run_id"] and per_account[A]["action"] == "refresh"
    assert (per_account[A]["succeeded"], per_account[A]["failed"]) == (2, 1)
    assert per_account[A]["total"] == report["summary"]["accounts"][A]["total"]
    assert not any("account_id" in json.dumps(d["_aws"]) for d in documents), "no metric per account"
    # No secret in the report, the mail or the logs.
    secrets = [k for k in o.org.identities._keys if k.startswith("ASIA")]
    assert secrets
    assert not any(secret in json.dumps(report) or secret in mail["Message"] for secret in secrets)


def test_registries_left_empty_are_each_pairs_own_and_named_ones_are_sent_everywhere(
    organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    o = organization
    assert os.environ["REGISTRIES"] == ""  # what the stack writes when `registries` is left empty
    o.member(A, OTHER_REGION)
    o.launch(A, OTHER_REGION)
    o.launch(HOME, REGION)

    o.invoke({})

    (home_send,) = o.sent(HOME, REGION)
    (member_send,) = o.sent(A, OTHER_REGION)
    assert home_send["Parameters"]["Registries"] == [f"{HOME}.dkr.ecr.{REGION}.amazonaws.com"]
    assert member_send["Parameters"]["Registries"] == [f"{A}.dkr.ecr.{OTHER_REGION}.amazonaws.com"]

    # Named registries (a central registry every account pulls from) go to every pair as they are,
    # also when the one named is the home account's own.
    named = f"{HOME}.dkr.ecr.{REGION}.amazonaws.com,public.ecr.aws"
    monkeypatch.setenv("REGISTRIES", named)
    o.invoke({})

    for account, region in ((HOME, REGION), (A, OTHER_REGION)):
        assert o.sent(account, region)[-1]["Parameters"]["Registries"] == [named]


def test_a_run_that_reached_every_pair_counts_no_unreachable_target_and_a_dry_run_counts_nothing(
    organization: Organization, capsys: pytest.CaptureFixture[str]
) -> None:
    o = organization
    o.member(A, REGION)
    o.launch(A, REGION)
    capsys.readouterr()

    o.invoke({})
    (counted,) = [
        d for d in emf_documents(capsys.readouterr().out) if contract.TARGETS_UNREACHABLE_METRIC in d
    ]
    assert counted[contract.TARGETS_UNREACHABLE_METRIC] == [0.0], "0, so that the alarm clears"

    o.invoke({"dry_run": True})
    assert not [d for d in emf_documents(capsys.readouterr().out) if contract.TARGETS_UNREACHABLE_METRIC in d]


def test_a_throttling_region_is_ridden_out_and_one_that_stays_throttled_fails_alone(
    organization: Organization,
) -> None:
    o = organization
    for account in (A, C):
        o.member(account, REGION)
        o.member(account, OTHER_REGION)
    ids = {
        (account, region): o.launch(account, region)
        for account in (A, C)
        for region in (REGION, OTHER_REGION)
    }
    # A's us-east-1 throttles its first three DescribeInstanceInformation calls: adaptive retries ride it out.
    o.org.pair(A, OTHER_REGION).ssm_endpoint.fault = lambda operation, number, params: (
        "ThrottlingException" if operation == "DescribeInstanceInformation" and number <= 3 else None
    )
    # C's us-east-1 throttles every one: that pair's run fails, the others are not held back.
    o.org.pair(C, OTHER_REGION).ssm_endpoint.fault = lambda operation, number, params: (
        "ThrottlingException" if operation == "DescribeInstanceInformation" else None
    )

    report = o.invoke({})

    assert {
        pair: where(report)[found[0]][2:] for pair, found in ids.items() if found[0] in where(report)
    } == {
        (A, REGION): ("succeeded", "ok"),
        (A, OTHER_REGION): ("succeeded", "ok"),
        (C, REGION): ("succeeded", "ok"),
    }
    assert o.runner.retry_sleeps  # botocore backed off, in simulated time
    assert targets(report)[(C, OTHER_REGION)] == ("reached", "run_failed")
    assert report["error"]["code"] == "ThrottlingException"
    assert report["error"]["message"].startswith(f"{C}/{OTHER_REGION}: ")
    # Only the throttled pairs saw throttling; the others' calls went through at once.
    assert o.org.pair(A, REGION).ssm_endpoint.calls["DescribeInstanceInformation"] == 1
    assert o.org.pair(A, OTHER_REGION).ssm_endpoint.calls["DescribeInstanceInformation"] == 4


def test_an_event_narrows_by_account_and_by_region_and_never_widens(organization: Organization) -> None:
    o = organization
    for account in (A, C):
        o.member(account, REGION)
        o.member(account, OTHER_REGION)
        o.launch(account, REGION)
        o.launch(account, OTHER_REGION)
    o.launch(HOME, REGION)

    by_account = o.invoke({"account_ids": [A]})
    assert {(t["account_id"], t["region"]) for t in by_account["targets"]} == {(A, REGION), (A, OTHER_REGION)}
    assert {i["account_id"] for i in by_account["instances"]} == {A}
    assert o.sent(C, REGION) == [] and o.sent(HOME, REGION) == []

    by_region = o.invoke({"regions": [OTHER_REGION], "dry_run": True})
    assert {(t["account_id"], t["region"]) for t in by_region["targets"]} == {
        (A, OTHER_REGION),
        (C, OTHER_REGION),
    }
    assert {i["reason"] for i in by_region["instances"]} == {"dry_run"}

    both = o.invoke({"account_ids": [HOME, C], "regions": [REGION], "dry_run": True})
    assert {(t["account_id"], t["region"]) for t in both["targets"]} == {(HOME, REGION), (C, REGION)}

    sends = sum(len(o.sent(a, r)) for a in (HOME, A, C) for r in (REGION, OTHER_REGION))
    for event, named in (
        ({"account_ids": [A, B]}, f"account_ids: '{B}' is not covered by this stack"),
        ({"regions": ["ap-south-1"]}, "regions: 'ap-south-1' is not covered by this stack"),
        ({"account_ids": [HOME], "regions": [OTHER_REGION]}, "together they name no (account, region)"),
        ({"account_ids": ["12345"]}, "account_ids.0: '12345' is not accepted"),
    ):
        with pytest.raises(InvalidEvent, match=named.replace("(", r"\(").replace(")", r"\)")):
            o.invoke(event)
    assert sum(len(o.sent(a, r)) for a in (HOME, A, C) for r in (REGION, OTHER_REGION)) == sends


def test_a_region_the_account_has_not_enabled_is_reported_unreachable(
    organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    o = organization
    monkeypatch.setenv("MEMBER_REGIONS", f"{REGION},ap-east-1")
    o.member(A, REGION)
    o.member(A, "ap-east-1")  # the stack instance was made before the region was disabled again
    o.org.identities.enable_region(A, "ap-east-1")
    o.launch(A, "ap-east-1")
    o.org.identities.disable_region(A, "ap-east-1")
    o.launch(A, REGION)

    report = o.invoke({})

    assert targets(report)[(A, "ap-east-1")] == ("unreachable", "region_unreachable")
    unreached = next(t for t in report["targets"] if t["region"] == "ap-east-1")
    assert unreached["detail"]["error"] in {"AuthFailure", "UnrecognizedClientException"}
    assert [i["region"] for i in report["instances"]] == [REGION]
    assert "error" not in report


EARLIER = "EcrFleetAuth-Agent-0badc0de"  # an earlier content version of the member document


@pytest.mark.parametrize(
    ("status", "detailed_status", "new_document_there", "sent"),
    [
        # A StackSet operation in progress: the update has not replaced the document yet, or has.
        ("OUTDATED", "PENDING", False, EARLIER),
        ("OUTDATED", "RUNNING", False, EARLIER),
        ("OUTDATED", "RUNNING", True, "expected"),
        # The last update failed or was stopped and rolled back: the previous stack still stands.
        ("OUTDATED", "FAILED", False, EARLIER),
        ("OUTDATED", "CANCELLED", False, EARLIER),
        # A failed delete left the stack behind, unstable but there.
        ("INOPERABLE", "INOPERABLE", False, EARLIER),
        # The account was suspended during the last operation and is reinstated: its stack stands.
        ("OUTDATED", "SKIPPED_SUSPENDED_ACCOUNT", False, EARLIER),
    ],
)
def test_a_member_stack_mid_update_is_commanded_with_what_its_stack_still_offers(
    organization: Organization, status: str, detailed_status: str, new_document_there: bool, sent: str
) -> None:
    """CloudFormation API reference, StackInstanceSummary: "OUTDATED: The stack isn't currently up to
    date with the stack set because either: The associated stack failed during a CreateStackSet or
    UpdateStackSet operation. The stack was part of a CreateStackSet or UpdateStackSet operation that
    failed or was stopped before the stack was created or updated"; StackInstanceComprehensiveStatus
    gives the DetailedStatus (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, INOPERABLE,
    SKIPPED_SUSPENDED_ACCOUNT, FAILED_IMPORT). Every agent change renames the member document, so every
    deploy is such an update: a pair whose stack still stands is run with the role and the document it
    has, and its report target says the stack instance's status and detailed status.
    StackInstanceComprehensiveStatus: "SKIPPED_SUSPENDED_ACCOUNT: This stack instance was skipped during
    the operation because the account was suspended at the time of the operation" — a status of the
    last operation that stays until the next one, not of the account now: a stack that stands there
    is tried like an OUTDATED one (a still suspended account refuses the role: role_not_assumable)."""
    o = organization
    o.org.deploy_member(A, REGION, document=(EARLIER, o.document))  # the stack as the last deploy left it
    o.org.update_member(
        A,
        REGION,
        status=status,
        detailed_status=detailed_status,
        new_document=(o.document_name, o.document) if new_document_there else None,
    )
    (instance,) = o.launch(A, REGION)

    report = o.invoke({})

    assert where(report)[instance] == (A, REGION, "succeeded", "ok")
    (send,) = o.sent(A, REGION)
    assert send["DocumentName"] == (o.document_name if sent == "expected" else EARLIER)
    (target,) = [t for t in report["targets"] if t["account_id"] == A]
    assert (target["status"], target["reason"]) == ("reached", None)
    assert target["detail"]["stack_instance"] == {
        "status": status, "detailed_status": detailed_status, "status_reason": ""
    }  # fmt: skip
    assert target["detail"].get("document") == (None if sent == "expected" else EARLIER)
    assert "error" not in report


@pytest.mark.parametrize(
    ("parameter", "earlier_rule", "why"),
    [
        (
            contract.REGISTRIES,
            {"allowedPattern": r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$"},
            "allowedPattern",
        ),
        (contract.ACTION, {"allowedValues": ["check", "helper"]}, "allowedValues"),
    ],
    ids=["pattern before dual-stack names", "values before refresh"],
)
def test_a_member_stack_mid_update_whose_earlier_document_refuses_todays_values_is_unreachable_and_says_why(
    organization: Organization,
    monkeypatch: pytest.MonkeyPatch,
    parameter: str,
    earlier_rule: dict[str, Any],
    why: str,
) -> None:
    """SSM User Guide, "SSM document syntax elements" (parameters: allowedValues, allowedPattern) and
    SSM API reference, SendCommand (InvalidParameters): a value outside an earlier document's
    allowedValues or allowedPattern is refused. An earlier version chosen by its parameter names only
    (registries' dual-stack names, ``dkr-ecr.<region>.on.aws``, came after it) fails every instance
    ``send_failed`` / InvalidParameters with a next step about 5xx errors. The runner reads the
    earlier version (GetDocument) before choosing it: one that would refuse the values is not sent,
    and the pair is reported ``member_document_outdated`` naming the version and the parameter."""
    o = organization
    earlier = json.loads(json.dumps(o.document))
    earlier["parameters"][parameter].pop("allowedPattern", None)
    earlier["parameters"][parameter].update(earlier_rule)
    o.org.deploy_member(A, REGION, document=(EARLIER, earlier))
    o.org.update_member(A, REGION, status="OUTDATED", detailed_status="FAILED", status_reason="Update failed")
    o.launch(A, REGION, 2)
    monkeypatch.setenv("REGISTRIES", f"{A}.dkr-ecr.{REGION}.on.aws")

    report = o.invoke({})

    (target,) = [t for t in report["targets"] if t["account_id"] == A]
    assert (target["status"], target["reason"]) == ("unreachable", "member_document_outdated")
    assert target["detail"]["document"] == o.document_name
    assert target["detail"]["outdated_document"] == EARLIER
    assert target["detail"]["parameter"] == parameter and why in target["detail"]["problem"]
    assert target["detail"]["detailed_status"] == "FAILED"
    assert o.sent(A, REGION) == []
    assert NEXT_STEPS["member_document_outdated"] in o.notifications()[0]["Message"]


@pytest.mark.parametrize(
    ("detailed_status", "stack"),
    [
        ("PENDING", False),  # created by an operation that has not reached it yet
        ("RUNNING", False),  # being created
        ("FAILED", False),  # its creation failed: nothing stands
        ("CANCELLED", False),  # stopped before it was created
        ("FAILED_IMPORT", False),
        ("SKIPPED_SUSPENDED_ACCOUNT", False),  # suspended before its stack was ever created
    ],
)
def test_a_member_stack_with_nothing_to_run_on_is_unreachable_without_being_called(
    organization: Organization, detailed_status: str, stack: bool
) -> None:
    """Only a pair that cannot work is unreachable without being called: no stack was created there
    (no StackId), whatever the detailed status (StackInstanceSummary: "StackId: The ID of the stack
    instance"; a SKIPPED_SUSPENDED_ACCOUNT one with a stack is tried, see above)."""
    o = organization
    o.member(A, REGION, status="OUTDATED", detailed_status=detailed_status, stack=stack)

    report = o.invoke({})

    (target,) = [t for t in report["targets"] if t["account_id"] == A]
    assert (target["status"], target["reason"]) == ("unreachable", "member_stack_not_ready")
    assert target["detail"]["detailed_status"] == detailed_status
    assert o.org.pair(A, REGION).ec2_endpoint.calls == {} == o.org.pair(A, REGION).ssm_endpoint.calls


@pytest.mark.parametrize("status", ["CURRENT", "OUTDATED"])
def test_a_member_stack_without_any_usable_agent_document_is_unreachable_and_says_so(
    organization: Organization, status: str
) -> None:
    """No document of the stack there (deleted by hand, or by a delete that failed half-way), or only
    versions that lack a parameter the runner sends: nothing is sent (SendCommand would refuse it)."""
    o = organization
    lacking = json.loads(json.dumps(o.document))
    del lacking["parameters"][contract.RELEASE_BASE_URL]
    o.org.deploy_member(A, REGION, document=(EARLIER, lacking))
    o.org.update_member(
        A, REGION, status=status, detailed_status="FAILED" if status != "CURRENT" else "SUCCEEDED"
    )
    o.launch(A, REGION)

    report = o.invoke({})

    (target,) = [t for t in report["targets"] if t["account_id"] == A]
    assert (target["status"], target["reason"]) == ("unreachable", "member_document_missing")
    assert target["detail"]["document"] == o.document_name
    assert o.sent(A, REGION) == []


def test_every_page_of_stack_instances_is_read_and_member_settings_narrow_them(
    organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    o = organization
    accounts = [f"{index:012d}" for index in range(400_000_000_001, 400_000_000_131)]
    for account in accounts:  # 130 stack instances still being created: none is called
        o.member(account, REGION, status="OUTDATED", detailed_status="RUNNING")
    o.member(A, REGION)
    o.launch(A, REGION)

    report = o.invoke({"dry_run": True})

    assert len(report["targets"]) == 1 + 131
    assert o.org.cloudformation_endpoint.calls["ListStackInstances"] == 2  # pages of 100
    assert {i["account_id"] for i in report["instances"]} == {A}
    listed = o.org.cloudformation_endpoint.sent("ListStackInstances")
    assert {(r["StackSetName"], r["CallAs"]) for r in listed} == {(STACK_SET, "DELEGATED_ADMIN")}

    monkeypatch.setenv("MEMBER_ACCOUNTS", f"{A},{accounts[0]}")
    narrowed = o.invoke({"dry_run": True})
    assert {t["account_id"] for t in narrowed["targets"]} == {HOME, A, accounts[0]}


def test_instance_ids_are_looked_for_in_every_pair_and_reported_once(organization: Organization) -> None:
    o = organization
    o.member(A, OTHER_REGION)
    (member_id,) = o.launch(A, OTHER_REGION)
    (home_id,) = o.launch(HOME, REGION)
    missing = "i-0123456789abcdef0"

    report = o.invoke({"instance_ids": [member_id, home_id, missing], "dry_run": True})

    assert where(report) == {
        home_id: (HOME, REGION, "skipped", "dry_run"),
        member_id: (A, OTHER_REGION, "skipped", "dry_run"),
        missing: (HOME, REGION, "skipped", "instance_not_found"),
    }


def test_a_single_account_run_names_its_account_and_region_and_nothing_more(world: World) -> None:
    world.launch(2)

    report = world.invoke({"dry_run": True})

    assert {(i["account_id"], i["region"]) for i in report["instances"]} == {(HOME, REGION)}
    assert "targets" not in report
    assert "accounts" not in report["summary"]
    with pytest.raises(InvalidEvent, match=f"regions: '{OTHER_REGION}' is not covered"):
        world.invoke({"regions": [OTHER_REGION]})
    assert (
        world.invoke({"account_ids": [HOME], "regions": [REGION], "dry_run": True})["summary"]["total"] == 2
    )


def test_a_stack_set_that_cannot_be_listed_fails_the_run_before_anything_is_sent(
    organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runner's account is the StackSets delegated administrator: asking as SELF finds nothing
    # (StackSetNotFoundException, as CloudFormation answers a delegated administrator doing so).
    o = organization
    o.member(A, REGION)
    o.launch(A, REGION)
    (home_id,) = o.launch(HOME, REGION)
    monkeypatch.setenv("STACK_SET_CALL_AS", "SELF")

    report = o.invoke({"instance_ids": [home_id]})

    assert report["error"]["code"] == "StackSetNotFoundException"
    assert report["targets"] == []
    assert where(report) == {home_id: (HOME, REGION, "failed", "run_failed")}
    assert o.sent(HOME, REGION) == [] and o.sent(A, REGION) == []
    (mail,) = o.notifications()
    assert mail["Subject"] == "ecr-fleet-auth refresh: run failed (StackSetNotFoundException)"


def test_pairs_still_waiting_for_a_thread_near_the_deadline_are_not_started(
    organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One pair at a time, each agent running 170 s, in an invocation of 200 s: the first member pair
    # takes about 185 s; the second would start too late to report (past 200 s - the 15-s reserve -
    # 30 s), so it is left for the next run.
    o = organization
    monkeypatch.setattr(runner, "MAX_CONCURRENT_PAIRS", 1)
    for account in (A, C):
        o.member(account, REGION)
        o.launch(account, REGION, agent=CannedRun(duration=170))

    report = o.runner.invoke({}, timeout_seconds=200)

    assert targets(report) == {
        (HOME, REGION): ("reached", None),
        (A, REGION): ("reached", None),
        (C, REGION): ("unreachable", "not_sent_before_deadline"),
    }
    assert o.sent(C, REGION) == [] and len(o.sent(A, REGION)) == 1
    assert o.org.pair(C, REGION).ec2_endpoint.calls == {}
    assert [(i["account_id"], i["status"], i["reason"]) for i in report["instances"]] == [
        (A, "succeeded", "ok")
    ]


def test_a_report_too_big_to_return_is_returned_condensed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda returns at most 6 MB to a synchronous caller (Invoke API reference; Lambda quotas:
    "6 MB each for request and response (synchronous)"): an organization's report of tens of
    thousands of instances (about 11 MB at 40,000, `make bench BENCH=organization`) would fail the
    caller after every command was sent. Above ``RESPONSE_LIMIT_BYTES`` the handler returns the
    report as the log record holds it: no ``instances``, the ones that did not succeed listed."""
    from ecr_fleet_auth.aws import publishing  # noqa: PLC0415 - the module whose limit this test lowers

    world.launch(3)
    world.launch(2, agent=CannedRun(result_line("failed", "login_failed", "401"), exit_code=1))
    whole = world.invoke({})
    assert len(whole["instances"]) == 5 and whole["summary"]["failed"] == 2

    monkeypatch.setattr(publishing, "RESPONSE_LIMIT_BYTES", len(json.dumps(whole)) // 2)
    monkeypatch.setattr(publishing, "RETURNED_INSTANCES", 1)
    condensed = world.invoke({})

    assert "instances" not in condensed
    assert condensed["summary"]["total"] == 5 and condensed["summary"]["failed"] == 2
    (listed,) = condensed["instances_not_succeeded"]
    assert listed["status"] == "failed" and listed["instance_id"] in {
        i["instance_id"] for i in whole["instances"]
    }
    assert condensed["instances_not_logged"] == 1
    assert {key for key in whole if key != "instances"} <= set(condensed)


# --- member accounts' new instances (issue 18) ---


@pytest.fixture
def new_instances(organization: Organization) -> NewInstanceDelivery:
    """The central stack's new-instance path (its queue, mapping and rules, the member bus and its
    policy) in the home pair, and every member stack forwarding its events to it."""
    o = organization
    o.org.home.create_tables(o.stack.central, DEPLOY_TIME["CLAIM_TABLE_NAME"])
    delivery = NewInstanceDelivery.from_template(o.stack.central, o.clock, o.org.home.sqs, o.runner.invoke)
    o.org.home.event_bus.append(delivery.put)
    o.org.forward_new_instances(o.stack.member, delivery)
    return delivery


def event_reports(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return capture_reports(monkeypatch)


@pytest.mark.parametrize("region", [REGION, OTHER_REGION])
def test_a_member_accounts_new_instance_is_covered_through_the_central_queue_in_its_own_account(
    organization: Organization,
    new_instances: NewInstanceDelivery,
    monkeypatch: pytest.MonkeyPatch,
    region: str,
) -> None:
    """EventBridge User Guide, "Sending and receiving events between AWS accounts": a rule can send an
    account's events to an event bus of another account, in another Region too, and the event keeps
    its source ``account``, ``region`` and resource ARN. The member stack forwards its instances'
    ``running`` events to the central stack's bus (its policy: the organization only); the central
    queue hands them to the runner, which looks for, waits for and commands each instance in its own
    account and region, through the member role, with the member document."""
    o = organization
    reports = event_reports(monkeypatch)
    o.member(A, region)
    pair = o.org.pair(A, region)
    (new,) = pair.launch(tags=TAGS, managed=False)  # its running event: A's bus -> the central bus
    assert new_instances.pending() == 1 and not new_instances.refused
    (queued,) = [json.loads(m.body) for m in new_instances.queue.messages]
    assert (queued["account"], queued["region"]) == (A, region)

    new_instances.next_invocation()  # A's instance is not online yet: put back to wait
    assert reports == [] and new_instances.put_back_delays() == [30]
    online_at = o.clock.monotonic()
    pair.register_agent(new, agent=CannedRun(duration=5))
    new_instances.run_until_idle()

    (report,) = reports
    assert report.source == "instance_running"
    assert [(i.instance_id, i.account_id, i.region, i.status) for i in report.instances] == [
        (new, A, region, "succeeded")
    ]
    assert {(t.account_id, t.region, t.status) for t in report.targets or ()} == {(A, region, "reached")}
    (send,) = o.sent(A, region)
    assert (send["DocumentName"], send["InstanceIds"]) == (o.document_name, [new])
    assert o.sent(HOME, REGION) == []
    (ended,) = [run_end for _, run_end in pair.agents[new].runs]
    assert ended - online_at <= 120  # the same goal as at home: 2 minutes from Online


def test_an_instance_tagged_in_a_member_account_is_covered_there(
    organization: Organization, new_instances: NewInstanceDelivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tag Change on Resource (Tagging User Guide, "Monitor tag changes with serverless workflows and
    Amazon EventBridge"), forwarded like the state change: the tag gained in a member account."""
    o = organization
    reports = event_reports(monkeypatch)
    o.member(C, OTHER_REGION)
    pair = o.org.pair(C, OTHER_REGION)
    (instance,) = pair.launch(tags={"Name": "later"}, agent=CannedRun(duration=5))
    new_instances.run_until_idle()  # its running event: not ours (no tag), left out
    pair.tag(instance, {TAG_KEY: TAG_VALUE})
    new_instances.run_until_idle()

    assert [(r.source, [(i.account_id, i.status) for i in r.instances]) for r in reports] == [
        ("tag_change", [(C, "succeeded")])
    ]


def test_only_the_organizations_forwarding_roles_may_put_events_on_the_central_bus(
    organization: Organization, new_instances: NewInstanceDelivery
) -> None:
    """The bus's policy (EventBridge User Guide, "Permissions for event buses"): ``aws:PrincipalOrgID``
    is the organization's and the principal one of its member stacks' forwarding roles; an account of
    another organization, or another role of a member account, is refused."""
    from localfleet.iam.models import Principal  # noqa: PLC0415

    o = organization
    o.member(A, REGION)
    event = state_change_event("i-0123456789abcdef0", "running", account=A, region=REGION, at=o.clock.now())
    bus = new_instances.member_bus
    assert bus is not None
    outsider = Principal(B, f"arn:aws:iam::{B}:role/ecr-fleet-auth/EcrFleetAuth/x", "s", "o-zzzzzzzzzz")
    other_role = Principal(A, f"arn:aws:iam::{A}:role/Admin", "s", o.org.organization_id)
    forwarder = Principal(
        A, f"arn:aws:iam::{A}:role/ecr-fleet-auth/EcrFleetAuth/x", "s", o.org.organization_id
    )

    assert not new_instances.put_from(event, bus=bus, sender=outsider)
    assert not new_instances.put_from(event, bus=bus, sender=other_role)
    assert new_instances.pending() == 0 and len(new_instances.refused) == 2
    assert new_instances.put_from(event, bus=bus, sender=forwarder)
    assert new_instances.pending() == 1


def test_an_event_from_an_account_or_region_the_stack_does_not_cover_is_rejected_counted_and_logged(
    organization: Organization,
    new_instances: NewInstanceDelivery,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event reaches the queue from a pair the StackSet has no stack instance in (sent there by
    someone's own rule, or a stack instance removed since): the runner cannot command it. Its record
    goes back to SQS (then to the dead letters), it is counted (``InstanceEventsRejected``) and logged:
    never dropped without a trace."""
    o = organization
    reports = event_reports(monkeypatch)
    o.member(A, REGION)
    stray = state_change_event("i-0123456789abcdef0", "running", account=B, region=REGION, at=o.clock.now())
    mine_id = o.org.pair(A, REGION).launch(tags=TAGS, agent=CannedRun(duration=5))[0]  # forwarded
    new_instances.put(stray)  # on the central account's default bus (as someone's rule sent it there)
    capsys.readouterr()

    invocation = new_instances.next_invocation()

    (failed,) = invocation.answer["batchItemFailures"]
    assert json.loads(next(m.body for m in new_instances.queue.messages))["account"] == B
    assert failed["itemIdentifier"] == new_instances.queue.messages[0].message_id
    (report,) = reports
    assert [(i.instance_id, i.account_id) for i in report.instances] == [(mine_id, A)]
    (warning,) = [r for r in caplog.records if "does not cover" in r.getMessage()]
    assert (warning.levelname, warning.account_id, warning.instances) == (  # type: ignore[attr-defined]
        "WARNING",
        B,
        ["i-0123456789abcdef0"],
    )
    rejected = [
        d["InstanceEventsRejected"]
        for d in emf_documents(capsys.readouterr().out)
        if "InstanceEventsRejected" in d
    ]
    assert rejected == [[1.0]]  # one record, one invocation


NOBODY_TRUSTED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"trust_policy": NOBODY_TRUSTED}, "role_not_assumable"),
        ({"status": "OUTDATED", "detailed_status": "RUNNING", "stack": False}, "member_stack_not_ready"),
        (
            {"status": "OUTDATED", "detailed_status": "SKIPPED_SUSPENDED_ACCOUNT", "stack": False},
            "member_stack_not_ready",
        ),
    ],
    ids=["role not assumable", "no stack yet", "suspended, no stack"],
)
def test_a_member_accounts_new_instance_in_a_pair_the_run_cannot_reach_is_reported_not_consumed(
    organization: Organization,
    new_instances: NewInstanceDelivery,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    reason: str,
) -> None:
    """Lambda Developer Guide, "Handling errors for an SQS event source": a record not returned in
    ``batchItemFailures`` is deleted from the queue. A new instance's event whose pair the run cannot
    reach (STS refuses the member role — "User: ... is not authorized to perform: sts:AssumeRole", STS
    API reference, AssumeRole; or the stack instance has no stack, StackInstanceSummary) is done with
    by that answer, so the run's report must carry the instance: unreachable, for the pair's reason,
    counted, with the pair's detail and next step — never a report of 0 instances and an empty
    ``left_out``."""
    o = organization
    reports = event_reports(monkeypatch)
    o.member(A, REGION, **options)
    (new,) = o.launch(A, REGION, agent=CannedRun(duration=5))
    if new_instances.pending() == 0:  # no stack there to forward it: an event sent before, or by hand
        new_instances.put(state_change_event(new, "running", account=A, region=REGION, at=o.clock.now()))

    invocation = new_instances.next_invocation()

    assert invocation.answer == {"batchItemFailures": []} and new_instances.pending() == 0
    (report,) = reports
    (instance,) = report.instances
    assert (instance.instance_id, instance.account_id, instance.region) == (new, A, REGION)
    assert (instance.status, instance.reason) == ("unreachable", reason)
    (target,) = report.targets or ()
    assert instance.detail == target.detail and target.reason == reason
    assert report.summary()["unreachable"] == 1 and report.summary()["accounts"][A]["unreachable"] == 1
    assert o.sent(A, REGION) == []


def test_a_pair_unreachable_for_its_role_says_its_stack_instances_status_when_not_current(
    organization: Organization,
) -> None:
    """StackInstanceSummary's Status, StackInstanceStatus.DetailedStatus and StatusReason say why a
    member role may be missing or stale (an update that failed, "ExecutionRole: denied by SCP"): the
    unreachable pair's detail carries them whenever the stack instance is not CURRENT, whatever kept
    the pair out, next to STS's refusal."""
    o = organization
    o.member(
        A,
        REGION,
        status="OUTDATED",
        detailed_status="FAILED",
        status_reason="ExecutionRole: denied by SCP",
        stack=True,
        trust_policy=NOBODY_TRUSTED,
    )
    o.launch(A, REGION)

    report = o.invoke({})

    (target,) = [t for t in report["targets"] if t["account_id"] == A]
    assert (target["status"], target["reason"]) == ("unreachable", "role_not_assumable")
    assert target["detail"]["status"] == "OUTDATED"
    assert target["detail"]["detailed_status"] == "FAILED"
    assert target["detail"]["status_reason"] == "ExecutionRole: denied by SCP"
    assert target["detail"]["error"] == "AccessDenied"
