"""Each instance's state in SSM Compliance after a run: the runner writes it (``compliance.py``).

What SSM does with a write is the simulator's (``localfleet/ssm/models/compliance_store.py``), which
follows the SSM API reference, PutComplianceItems: "This call overwrites existing compliance information
on the resource, so you must provide a full list of compliance items each time that you send the request";
``ResourceType`` "ManagedInstance is currently the only supported resource type". The listings are read
back with boto3 through the simulator, as an operator's console or CLI would read them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from botocore.session import get_session

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.troubleshooting import next_step
from localfleet.eventbridge.models import state_change_event
from localfleet.hosts.canned_agent import CannedRun, result_line
from localfleet.identity import ACCOUNT
from tests.support.event_samples import load_event
from tests.support.runner_world import REGION, REGISTRY, TAG_KEY, TAG_VALUE, World

COMPLIANCE_TYPE = "Custom:EcrFleetAuth"  # the default stack's (its name is EcrFleetAuth)
OTHER_REGISTRY = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"


def items(world: World, instance_id: str) -> dict[str, dict[str, Any]]:
    """The instance's items of this deployment's type, by id, read with ListComplianceItems (paged)."""
    ssm = world.account.session().client("ssm", region_name=REGION)
    found: dict[str, dict[str, Any]] = {}
    for page in ssm.get_paginator("list_compliance_items").paginate(
        ResourceIds=[instance_id],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": [COMPLIANCE_TYPE], "Type": "EQUAL"}],
    ):
        found.update({item["Id"]: item for item in page["ComplianceItems"]})
    return found


def instance_item(world: World, instance_id: str) -> dict[str, Any]:
    return items(world, instance_id)["instance"]


def summaries(world: World) -> list[dict[str, Any]]:
    ssm = world.account.session().client("ssm", region_name=REGION)
    return ssm.list_compliance_summaries()["ComplianceSummaryItems"]  # type: ignore[no-any-return]


def test_the_compliance_type_is_the_deployments_own_within_the_apis_pattern() -> None:
    """ComplianceTypeName: max 100, ``[A-Za-z0-9_\\-]\\w+|Custom:[a-zA-Z0-9_\\-]\\w+`` (botocore's model)."""
    shape = get_session().get_service_model("ssm").shape_for("ComplianceTypeName")
    pattern = re.compile(shape.metadata["pattern"])
    for name in ("EcrFleetAuth", "ecr-fleet-auth-prod", "A", "x" * 200, "Stack-1"):
        written = contract.compliance_type(name)
        assert pattern.fullmatch(written), written
        assert len(written) <= shape.metadata["max"]
    assert contract.compliance_type("EcrFleetAuth") == COMPLIANCE_TYPE
    assert contract.compliance_type("a-b") != contract.compliance_type("EcrFleetAuth")


def test_the_compliance_type_derivation_keeps_long_names_apart() -> None:
    """``my-fleet`` becomes ``Custom:my_fleet`` (``-`` is not in the type's pattern after the first
    character); two stack names of 99 characters that share their first 93 still get types of their
    own (CloudFormation stack names are up to 128 characters, the type's name part only 93)."""
    assert contract.compliance_type("my-fleet") == "Custom:my_fleet"
    first, second = "a" * 98 + "b", "a" * 98 + "c"
    assert contract.compliance_type(first) != contract.compliance_type(second)
    assert len(contract.compliance_type(first)) == 100
    assert contract.compliance_type(first).startswith("Custom:" + "a" * 80)
    assert contract.compliance_type("x" * 93) == "Custom:" + "x" * 93, "a name that fits is kept whole"


def test_every_instance_state_of_the_report_is_written(world: World) -> None:
    """Every status and reason kind the report holds, in one fleet (as test_runs' every-status run):
    succeeded (changed, unchanged) COMPLIANT; failed (the agent's reason, the command's, timed out,
    cancelled, access denied, stopped by max errors), unreachable (connection lost, Inactive), skipped
    and pending NON_COMPLIANT with the reason and its next step; the run's id and start on every item.
    Instances without a managed node, stopped or untagged get nothing (no resource to write to)."""
    world.configure(MAX_CONCURRENCY="9", MAX_ERRORS="0", WAIT_SECONDS="840")

    def launch(agent: CannedRun | None = None, **options: Any) -> str:
        return world.launch(agent=agent, **options)[0]

    login_refused = CannedRun(result_line("failed", "login_failed", "401"), exit_code=1, duration=1)
    expected = {
        launch(login_refused): ("failed", "login_failed", "HIGH"),
        launch(CannedRun("", "Traceback ...", exit_code=2, duration=1)): ("failed", "command_failed", "HIGH"),
        launch(): ("succeeded", "ok", "HIGH"),
        launch(CannedRun(stdout=result_line("unchanged", "ok"))): ("succeeded", "ok", "HIGH"),
        launch(CannedRun(stdout=result_line("skipped", "docker_missing"))): (
            "skipped",
            "docker_missing",
            "INFORMATIONAL",
        ),
        launch(CannedRun(duration=3600)): ("failed", "execution_timed_out", "HIGH"),
        (cancelled := launch(delivery_delay=600)): ("failed", "cancelled", "HIGH"),
        launch(commandable=False): ("failed", "access_denied", "HIGH"),
        launch(ping_status="ConnectionLost"): ("unreachable", "ssm_connection_lost", "HIGH"),
        launch(ping_status="Inactive"): ("unreachable", "ssm_inactive", "HIGH"),
        launch(platform_type="Windows", delivery_delay=2): (
            "skipped",
            "unsupported_platform",
            "INFORMATIONAL",
        ),
        launch(CannedRun(duration=3600), delivery_delay=300): ("pending", "in_progress", "LOW"),
        launch(): ("failed", "stopped_by_max_errors", "HIGH"),
    }
    (unmanaged,) = world.launch(managed=False)
    (untagged,) = world.launch(tagged=False)
    world.before_first("ListCommands", lambda: world.cancel(cancelled), lambda params: "CommandId" in params)

    report = world.invoke({"action": "check"})

    reported = {i["instance_id"]: (i["status"], i["reason"]) for i in report["instances"]}
    assert reported == {
        **{k: v[:2] for k, v in expected.items()},
        unmanaged: ("unreachable", "not_ssm_managed"),
    }
    run_id = report["run_id"]
    for instance_id, (status, reason, severity) in expected.items():
        item = instance_item(world, instance_id)
        assert item["Status"] == ("COMPLIANT" if status == "succeeded" else "NON_COMPLIANT"), (status, reason)
        assert item["Severity"] == severity
        assert item["ExecutionSummary"]["ExecutionId"] == run_id
        assert item["ComplianceType"] == COMPLIANCE_TYPE
        assert item["Details"]["status"] == status
        assert item["Details"]["reason"] == reason
        assert item["Details"]["action"] == "check"
        if status == "succeeded":
            assert "next_step" not in item["Details"]
        else:
            assert item["Details"]["next_step"] == next_step(reason)[:4096]
    written_to = {put["ResourceId"] for put in world.ssm.sent("PutComplianceItems")}
    assert written_to == set(expected), "no managed node to write to (unmanaged), not ours (untagged)"
    assert items(world, untagged) == {}
    assert report["compliance"] == {
        "type": COMPLIANCE_TYPE,
        "written": len(expected),
        "not_managed": 0,
        "failed": 0,
        "not_written": 0,
    }
    (summary,) = [s for s in summaries(world) if s["ComplianceType"] == COMPLIANCE_TYPE]
    assert summary["CompliantSummary"]["CompliantCount"] == 2
    assert summary["NonCompliantSummary"]["NonCompliantCount"] == len(expected) - 2


def users_line(outcome: str, reason: str, users: list[dict[str, Any]]) -> str:
    return result_line(outcome, reason, "", users=users)


def test_one_item_per_user_and_registry_compliant_only_when_that_user_can_pull(world: World) -> None:
    """The agent's result line (agent/result.py: users[].registries[registry] = {state, expires_at,
    expired, error}; a user it could not serve: reason, no registries) becomes one item per user x
    registry. A stored login pulls until it expires (docker sends the stored token: an expired one is
    refused), the credential helper pulls (it fetches a token itself); none, shadowed, unavailable do not."""
    future = (world.clock.now() + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    past = (world.clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    users = [
        {"user": "root", "registries": {REGISTRY: {"state": "helper"}, OTHER_REGISTRY: {"state": "helper"}}},
        {"user": "deploy", "registries": {REGISTRY: {"state": "logged_in", "expires_at": future}}},
        {"user": "ci", "registries": {REGISTRY: {"state": "logged_in", "expires_at": past}}},
        {"user": "old", "registries": {REGISTRY: {"state": "logged_in", "expired": True}}},
        {"user": "app", "registries": {REGISTRY: {"state": "none", "error": "config_unwritable"}}},
        {"user": "web", "registries": {REGISTRY: {"state": "shadowed"}}},
        {"user": "broken", "registries": {}, "reason": "config_unreadable"},
        {"user": "nohome", "registries": {}, "reason": "no_home"},
    ]
    (instance,) = world.launch(agent=CannedRun(users_line("failed", "config_unwritable", users), exit_code=1))

    world.invoke({"action": "check"})

    found = items(world, instance)
    status = {item_id: (item["Status"], item["Details"].get("reason")) for item_id, item in found.items()}
    assert status == {
        "instance": ("NON_COMPLIANT", "config_unwritable"),
        f"root@{REGISTRY}": ("COMPLIANT", "ok"),
        f"root@{OTHER_REGISTRY}": ("COMPLIANT", "ok"),
        f"deploy@{REGISTRY}": ("COMPLIANT", "ok"),
        f"ci@{REGISTRY}": ("NON_COMPLIANT", "login_expired"),
        f"old@{REGISTRY}": ("NON_COMPLIANT", "login_expired"),
        f"app@{REGISTRY}": ("NON_COMPLIANT", "config_unwritable"),
        f"web@{REGISTRY}": ("NON_COMPLIANT", "token_shadowed"),
        "broken": ("NON_COMPLIANT", "config_unreadable"),
    }, "no_home is not a failure of a user (no item)"
    assert found[f"ci@{REGISTRY}"]["Details"]["next_step"] == next_step("login_expired")
    assert found[f"deploy@{REGISTRY}"]["Details"]["expires_at"] == future


def test_the_next_run_replaces_the_list_and_an_unreachable_instance_is_not_left_compliant(
    world: World,
) -> None:
    """COMPLETE upload: the second run's list replaces the first's (a user no longer reported leaves no
    item behind), and an instance COMPLIANT after one run and unreachable in the next is NON_COMPLIANT."""
    two_users = [
        {"user": "root", "registries": {REGISTRY: {"state": "helper"}}},
        {"user": "deploy", "registries": {REGISTRY: {"state": "helper"}}},
    ]
    (instance,) = world.launch(agent=CannedRun(users_line("changed", "ok", two_users)))
    (lost,) = world.launch()
    first = world.invoke({"action": "check"})
    assert set(items(world, instance)) == {"instance", f"root@{REGISTRY}", f"deploy@{REGISTRY}"}
    assert instance_item(world, lost)["Status"] == "COMPLIANT"

    world.account.agents[instance].run_spec = CannedRun(users_line("changed", "ok", two_users[:1]))
    world.node(lost).ping_status = "ConnectionLost"
    second = world.invoke({"action": "check"})

    assert set(items(world, instance)) == {"instance", f"root@{REGISTRY}"}
    assert instance_item(world, instance)["ExecutionSummary"]["ExecutionId"] == second["run_id"]
    assert second["run_id"] != first["run_id"]
    gone = instance_item(world, lost)
    assert (gone["Status"], gone["Details"]["reason"]) == ("NON_COMPLIANT", "ssm_connection_lost")
    assert gone["ExecutionSummary"]["ExecutionId"] == second["run_id"]


def test_a_dry_run_writes_nothing(world: World) -> None:
    world.launch(2)
    world.launch(ping_status="ConnectionLost")
    report = world.invoke(load_event("dry_run"))
    assert report["dry_run"] is True
    assert world.ssm.sent("PutComplianceItems") == []
    assert summaries(world) == []
    assert "compliance" not in report


@pytest.mark.parametrize("source", ["schedule", "manual", "instance_running"])
def test_scheduled_manual_and_new_instance_runs_all_write(world: World, source: str) -> None:
    (instance,) = world.launch()
    event: dict[str, Any] = {
        "schedule": {"source": "schedule"},
        "manual": {"action": "refresh", "instance_ids": [instance]},
        "instance_running": state_change_event(
            instance, "running", account=ACCOUNT, region=REGION, at=world.clock.now()
        ),
    }[source]
    report = world.invoke(event)
    assert report["source"] == source
    item = instance_item(world, instance)
    assert (item["Status"], item["ExecutionSummary"]["ExecutionId"]) == ("COMPLIANT", report["run_id"])


def test_a_refused_write_is_counted_and_the_run_still_reports(world: World) -> None:
    """A PutComplianceItems that is refused (a role without the permission: AccessDeniedException, not
    retried) loses only that write: the report counts it by code, the run's result is unchanged."""
    ids = world.launch(2)
    world.ssm.fault = lambda operation, number, params: (
        "AccessDeniedException" if operation == "PutComplianceItems" else None
    )
    report = world.invoke({"action": "check"})
    assert report["summary"]["succeeded"] == 2
    assert report["compliance"]["written"] == 0
    assert report["compliance"]["failed"] == 2
    assert report["compliance"]["errors"] == {"AccessDeniedException": 2}
    assert all(items(world, i) == {} for i in ids)


def test_an_instance_another_run_is_working_on_keeps_that_runs_items(world: World) -> None:
    """Overlapping runs: run A covers X (its agent takes 30 s); run B starts 5 s later over X and Y and
    reports X ``pending`` / ``instance_busy`` (A's command is listed there). A ends first and writes X
    COMPLIANT; B ends later and must not replace it with its ``pending``: X is A's to write.
    PutComplianceItems with UploadType COMPLETE "overwrites all existing compliance information for the
    resource" (SSM API reference, PutComplianceItems): a later write of the busy instance would
    erase A's fresher result."""
    world.configure(WAIT_SECONDS="840")
    helper = [{"user": "root", "registries": {REGISTRY: {"state": "helper"}}}]
    (x,) = world.launch(agent=CannedRun(users_line("changed", "ok", helper), duration=30))
    (y,) = world.launch(agent=CannedRun(users_line("changed", "ok", helper), duration=400))

    def run_a() -> dict[str, Any]:
        return world.invoke({"action": "refresh", "instance_ids": [x]})

    def run_b() -> dict[str, Any]:
        world.clock.sleep(5)
        return world.invoke({"action": "refresh", "instance_ids": [x, y]})

    a, b = world.clock.concurrently([run_a, run_b], workers=2)

    reported_b = {i["instance_id"]: (i["status"], i["reason"]) for i in b["instances"]}
    assert reported_b[x] == ("pending", "instance_busy")
    assert b["finished_at"] > a["finished_at"], "B ends after A: its write would come last"
    written_by_b = [
        put["ResourceId"]
        for put in world.ssm.sent("PutComplianceItems")
        if put["ExecutionSummary"]["ExecutionId"] == b["run_id"]
    ]
    assert written_by_b == [y]
    kept = instance_item(world, x)
    assert (kept["Status"], kept["ExecutionSummary"]["ExecutionId"]) == ("COMPLIANT", a["run_id"])
    assert b["compliance"]["written"] == 1


def test_an_instance_whose_agent_found_another_runs_lock_gets_nothing_from_this_run(world: World) -> None:
    """The agent's ``skipped`` / ``locked`` (agent/outcomes.py: another run's agent holds the instance's
    lock) is the same kind: the other run writes that instance's items, this one none."""
    (locked,) = world.launch(agent=CannedRun(result_line("skipped", "locked", "")))
    (free,) = world.launch()
    report = world.invoke({"action": "check"})
    assert {i["instance_id"]: i["reason"] for i in report["instances"]}[locked] == "locked"
    assert {put["ResourceId"] for put in world.ssm.sent("PutComplianceItems")} == {free}
    assert items(world, locked) == {}


def test_an_instance_that_leaves_the_target_set_loses_this_deployments_items(world: World) -> None:
    """An instance whose tag was removed or changed is no longer this deployment's to
    report: its last items must not stay COMPLIANT for ever. A whole-fleet run lists the instances
    carrying its type (ListResourceComplianceSummaries, filter ComplianceType: "Returns a resource-level
    summary count ... according to the filter criteria you specify", SSM API reference) and, for those
    it no longer targets, puts an empty list (PutComplianceItems, UploadType COMPLETE: "the system
    overwrites all existing compliance information for the resource"). Another type's items stay; a
    narrowed run naming an untagged instance clears it too."""
    ids = world.launch(4)
    retagged, untagged, kept, named = ids
    first = world.invoke({"action": "check"})
    assert first["compliance"]["written"] == 4
    ssm = world.account.session().client("ssm", region_name=REGION)
    other = {"ExecutionSummary": {"ExecutionTime": world.clock.now()}, "ResourceType": "ManagedInstance"}
    ssm.put_compliance_items(
        ResourceId=retagged,
        ComplianceType="Custom:SomethingElse",
        Items=[{"Id": "x", "Severity": "LOW", "Status": "COMPLIANT"}],
        **other,
    )
    world.account.tag(retagged, {TAG_KEY: "disabled"})
    world.account.ec2.untag(untagged, TAG_KEY)  # the tag removed (EC2 DeleteTags)
    world.node(untagged).tags.pop(TAG_KEY)
    world.account.tag(named, {TAG_KEY: "disabled"})

    second = world.invoke({"action": "check"})

    assert items(world, retagged) == {} and items(world, untagged) == {}
    assert instance_item(world, kept)["ExecutionSummary"]["ExecutionId"] == second["run_id"]
    # ``named`` left the target set too: the whole-fleet run cleared it with the others.
    assert items(world, named) == {}
    assert second["compliance"]["cleared"] == 3
    still = ssm.list_compliance_items(ResourceIds=[retagged], ResourceTypes=["ManagedInstance"])
    assert [i["ComplianceType"] for i in still["ComplianceItems"]] == ["Custom:SomethingElse"]

    # A narrowed run naming an untagged instance (reported not_target_tagged) clears it as well.
    world.account.tag(named, {TAG_KEY: TAG_VALUE})
    world.invoke({"action": "check", "instance_ids": [named]})
    assert instance_item(world, named)["Status"] == "COMPLIANT"
    world.account.tag(named, {TAG_KEY: "disabled"})
    third = world.invoke({"action": "check", "instance_ids": [named, kept]})
    reasons = {i["instance_id"]: i["reason"] for i in third["instances"]}
    assert reasons[named] == "not_target_tagged"
    assert items(world, named) == {}
    assert third["compliance"]["cleared"] == 1
    assert instance_item(world, kept)["ExecutionSummary"]["ExecutionId"] == third["run_id"]
