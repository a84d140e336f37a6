"""Organization scale end to end (issue 14): one invocation of the runner, started as Lambda starts
it, refreshes sandboxed instances in two accounts over the organization's routed endpoints on
loopback (EC2 and SSM by the signing credentials, STS through the simulator's gate before moto's,
ListStackInstances); each instance then pulls from its own account's registry with the token its
own account's ECR handed out; a member account whose role does not trust the runner is reported. A
new instance in the member account is covered at once through the central path (issue 18): the member
stack's rule forwards its ``running`` event to the central stack's bus, whose rule puts it in the central
queue; the runner, invoked by the event source mapping, covers it in its own account."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from localfleet.composition.simulated_organization import ORGANIZATION_ID
from localfleet.harnesses.local_fleet import ORGANIZATIONAL_UNIT_ID, LocalFleet
from localfleet.harnesses.local_services import prerequisites
from localfleet.hosts.registry_server import moto_token
from localfleet.hosts.sandbox_instance import User
from localfleet.identity import ACCOUNT, REGION, registry_name
from localfleet.lambda_runtime import asset_directory
from localfleet.synthesized_stack import member_template
from tests.support.prerequisites import require
from tests.support.template import Template, synthesize

pytestmark = pytest.mark.integration

MEMBER = "111111111111"
LOCKED_OUT = "222222222222"  # its member role trusts another role than the runner's


def member_config_password(config: str) -> str:
    """The stored login's password (docker config ``auths.<registry>.auth`` is base64 of user:password)."""
    auths = json.loads(config)["auths"]
    return base64.b64decode(auths[registry_name(MEMBER)]["auth"]).decode()


# The stack synthesized with organization context: its new-instance path covers member accounts.
ORGANIZATION_CONTEXT = {"organizationalUnitIds": ORGANIZATIONAL_UNIT_ID, "organizationId": ORGANIZATION_ID}
NEW_INSTANCE_WAIT_SECONDS = 180


@pytest.fixture(scope="module")
def fleet(
    synthesized_template: Template, synthesized_outdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFleet]:
    for present, what in prerequisites():
        require(present, what)
    asset = asset_directory(synthesized_template, synthesized_outdir)
    outdir = tmp_path_factory.mktemp("cdk.out-organization")
    (central,) = synthesize(ORGANIZATION_CONTEXT, outdir=str(outdir)).values()
    with LocalFleet(
        synthesized_template,
        asset=asset,
        organization=True,
        new_instances=True,
        organization_templates=(central, member_template(outdir)),
    ) as local:
        local.add_member_account(MEMBER)
        local.add_member_account(LOCKED_OUT, role_trusts_runner=False)
        local.add_instance("home-web", [User("root")])
        local.add_instance("member-web", [User("root"), User("ec2-user")], account=MEMBER)
        yield local


def test_one_invocation_refreshes_two_accounts_and_reports_the_one_it_cannot_reach(fleet: LocalFleet) -> None:
    home, member = fleet.instances
    assert (home.account_id, member.account_id) == (ACCOUNT, MEMBER)
    assert not member.sandbox.can_pull("root") and not home.sandbox.can_pull("root")

    report = fleet.invoke({"action": "refresh"}, extra_env=fleet.organization_env())

    entries = {entry["instance_id"]: entry for entry in report["instances"]}
    assert set(entries) == {home.instance_id, member.instance_id}
    assert (entries[home.instance_id]["account_id"], entries[home.instance_id]["region"]) == (ACCOUNT, REGION)
    assert (entries[member.instance_id]["account_id"], entries[member.instance_id]["region"]) == (
        MEMBER,
        REGION,
    )
    for instance in (home, member):
        entry = entries[instance.instance_id]
        assert (entry["status"], entry["outcome"]) == ("succeeded", "changed"), entry
        for user in instance.sandbox.users:
            assert instance.sandbox.can_pull(user.name), f"{instance.name}/{user.name} cannot pull"

    # Each instance logged in to its own account's registry, with its own account's token.
    assert member.sandbox.surroundings.registry == registry_name(MEMBER)
    member_config = (member.sandbox.config_bytes("root") or b"").decode()
    assert registry_name(MEMBER) in member_config and registry_name(ACCOUNT) not in member_config
    # ... which accepts only the password moto's ECR hands out for the member account.
    assert fleet.member_services[MEMBER].account == MEMBER != ACCOUNT
    assert moto_token(MEMBER) in member_config_password(member_config)

    # The member's command ran in the member account, with the StackSet's document.
    member_pair = fleet.pair(MEMBER)
    (command,) = member_pair.commands.values()
    assert fleet.pair(ACCOUNT).ssm_endpoint.calls["SendCommand"] >= 1
    assert member_pair.ssm_endpoint.calls["SendCommand"] == 1
    assert command.request["DocumentName"] == fleet.member_document_name()

    targets = {(t["account_id"], t["region"]): t for t in report["targets"]}
    assert targets[(ACCOUNT, REGION)]["status"] == targets[(MEMBER, REGION)]["status"] == "reached"
    locked = targets[(LOCKED_OUT, REGION)]
    assert (locked["status"], locked["reason"]) == ("unreachable", "role_not_assumable"), locked
    assert set(report["summary"]["accounts"]) >= {ACCOUNT, MEMBER}
    assert report["summary"]["accounts"][MEMBER]["succeeded"] == 1


def test_the_organizations_state_machine_runs_it_on_the_real_fleet(fleet: LocalFleet) -> None:
    """Issue 23, as ``make demo`` shows it: the organization template's state machine on moto's
    interpreter behind a loopback server (server mode: ``MOTO_PORT``), its Lambda tasks starting the
    runner as Lambda does (the asset, the runtime, the template's environment), its Map reading the
    plan's items from that server's S3; the sandboxed instances of both accounts refreshed by the
    child, one report and one notification from the merge, the locked-out account reported."""
    fleet.notifications()  # what earlier runs published

    described, report = fleet.run_state_machine({"action": "refresh"}, name="e2e-organization")

    assert described["status"] == "SUCCEEDED", described
    assert report is not None
    targets = {(t["account_id"], t["region"]): t for t in report["targets"]}
    assert targets[(ACCOUNT, REGION)]["status"] == targets[(MEMBER, REGION)]["status"] == "reached"
    assert targets[(LOCKED_OUT, REGION)]["reason"] == "role_not_assumable"
    assert report["summary"]["total"] == report["summary"]["succeeded"] == 2
    assert report["execution"] == described["executionArn"]
    (mail,) = fleet.notifications()
    assert "State machine execution: " + described["executionArn"] in mail["message"]


def test_a_new_instance_in_a_member_account_is_covered_through_the_central_path(fleet: LocalFleet) -> None:
    """EventBridge User Guide, "Sending and receiving events between AWS accounts": the member stack's
    rule sends its account's events to the central stack's bus (its policy: the organization's
    forwarding roles only); the central rule, queue and event source mapping hand it to the runner,
    which covers the instance in its own account, through the member role, with no scheduled run."""
    launched = fleet.add_instance("member-new", [User("root")], account=MEMBER, launched_now=True)
    delivery = fleet.delivery
    assert delivery is not None

    assert fleet.wait_for_new_instances(NEW_INSTANCE_WAIT_SECONDS), f"{delivery.pending()} still queued"

    assert not delivery.refused
    (forwarded,) = [e for e in delivery.events if e["detail"].get("instance-id") == launched.instance_id]
    assert (forwarded["account"], forwarded["region"]) == (MEMBER, REGION)
    ssm = fleet.client_in(MEMBER, "ssm")
    (invocation,) = ssm.list_command_invocations(InstanceId=launched.instance_id)["CommandInvocations"]
    assert invocation["Status"] == "Success", invocation
    assert invocation["DocumentName"] == fleet.member_document_name()
    (report,) = [r for r in fleet.event_reports() if invocation["CommandId"] in r["command_ids"]]
    assert report["source"] == "instance_running"
    assert report["summary"]["accounts"][MEMBER]["succeeded"] == 1
    assert launched.sandbox.can_pull("root")
