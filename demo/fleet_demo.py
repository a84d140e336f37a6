"""`make demo`: the whole system on a local simulated fleet, no AWS account needed.

Synthesizes the stack, starts the simulated AWS (moto, the simulated EC2 and SSM Run
Command, a real registry) and five instances, then runs the real runner three times —
check, refresh, helper — each a cold start of its synthesized asset as Lambda would
start it, printing each report, per instance and user whether a pull works, and what SSM
Compliance shows for the stack's compliance type (``compliance_summary``). Then a
new instance is launched after those (manual) runs: its ``running`` event goes through the
stack's rule, queue and event source mapping (``localfleet.composition``) to the runner, which
covers it without a scheduled run; that run's report is printed as the runner logged it, with
the new instance's row read from Run Command's history when it succeeded (the log record lists
only the instances that did not succeed). Then the same in member account ``MEMBER_ACCOUNT``: the
stack synthesized with organization context deploys the organization's new-instance path, so the
member instance's event goes from the member stack's rule to the central stack's bus, rule and queue
to the runner, which covers it in its own account through the member role. Exits 1 if a new
instance is not covered (a successful agent run) within ``NEW_INSTANCE_WAIT_SECONDS``. Everything
started is stopped on exit, on Ctrl-C and on failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from ecr_fleet_auth.aws.run_command import Invocation
from ecr_fleet_auth.run.results import AgentResult, instance_result, needs_full_output
from ecr_fleet_auth.shared.report import InstanceResult
from localfleet.composition.simulated_organization import ORGANIZATION_ID
from localfleet.harnesses.local_fleet import ORGANIZATIONAL_UNIT_ID, LocalFleet
from localfleet.harnesses.local_services import REGISTRY, prerequisites
from localfleet.hosts.sandbox_instance import User
from localfleet.identity import ACCOUNT, REGION
from localfleet.lambda_runtime import asset_directory
from localfleet.synthesized_stack import member_template, synthesize
from tools.invoke_runner import render

# The report is printed as a table; the runner's JSON logs and metrics would bury it.
QUIET = {"LOG_LEVEL": "WARNING", "POWERTOOLS_LOG_LEVEL": "WARNING"}
CORRUPT_CONFIG = '{"auths": {'
EXISTING_CONFIG = json.dumps(
    {"auths": {"ghcr.io": {"auth": "b2N0b2NhdDpub3QtYS1yZWFsLXRva2Vu"}}, "detachKeys": "ctrl-e,e"},
    indent="\t",
)


def build_fleet(fleet: LocalFleet) -> None:
    fleet.add_instance(
        "web-1", [User("root"), User("ec2-user", config=EXISTING_CONFIG), User("analyst", docker_group=False)]
    )
    fleet.add_instance("web-2", [User("root"), User("ubuntu")])
    fleet.add_instance("web-3-offline", [User("root")], ping_status="ConnectionLost")
    fleet.add_instance("build-untagged", [User("root"), User("jenkins")], tagged=False)
    fleet.add_instance("web-4-corrupt", [User("root"), User("ec2-user", config=CORRUPT_CONFIG)])


def how_configured(config: bytes | None, registry: str = REGISTRY) -> str:
    """What the user's docker config holds for the registry (the instance's account's): the helper,
    a stored login, or nothing."""
    try:
        data = json.loads(config or b"{}")
    except ValueError:
        return "corrupt config"
    if registry in (data.get("credHelpers") or {}):
        return "helper"
    return "login" if registry in (data.get("auths") or {}) else "nothing"


def pull_matrix(fleet: LocalFleet) -> str:
    lines = []
    for instance in fleet.instances:
        if instance.ping_status != "Online":
            lines.append(f"  {instance.name:<16} (offline)")
            continue
        sandbox = instance.sandbox
        cells = [
            f"{user.name}={'yes' if sandbox.can_pull(user.name) else 'no'}"
            f" ({how_configured(sandbox.config_bytes(user.name), sandbox.surroundings.registry)})"
            for user in sandbox.users
        ]
        lines.append(f"  {instance.name:<16} " + "  ".join(cells))
    return "\n".join(lines)


def run_step(fleet: LocalFleet, title: str, event: dict[str, object]) -> None:
    print(f"\n=== {title}: {json.dumps(event)}", flush=True)
    started = time.monotonic()
    report = fleet.invoke(event, extra_env=QUIET)
    print(render(report))
    for note in fleet.notifications():
        print(f"\nnotification: {note['subject']}")
    print(f"\n(run took {time.monotonic() - started:.1f}s) can each user pull the probe image now?")
    print(pull_matrix(fleet), flush=True)
    print(compliance_summary(fleet, report), flush=True)


def compliance_summary(
    fleet: LocalFleet, report: dict[str, Any], account: str | None = None, *, one_of_many: bool = False
) -> str:
    """What Systems Manager's Compliance shows after the run (docs/operating/compliance.md): the type's
    summary (ListComplianceSummaries) and each instance's items (ListComplianceItems), as the console.
    ``one_of_many``: ``account`` is one of the run's accounts, so the run's count (all of them) is not
    its own: only what its console shows is printed."""
    written = report.get("compliance")
    if not written:
        return "\nSSM Compliance: nothing written (a dry run writes nothing)"
    ssm = fleet.client_in(account, "ssm") if account else fleet.client("ssm")
    compliance_type = written["type"]
    accounts = len(report.get("summary", {}).get("accounts") or {})
    if one_of_many:
        what = ": what this account's console shows"
    elif accounts > 1:
        what = (
            f": this run, over {accounts} accounts, wrote {written['written']} instance(s);"
            " this account's console shows"
        )
    else:
        what = f": this run wrote {written['written']} instance(s)"
    lines = [f"\nSSM Compliance, {compliance_type}" + (f" (account {account})" if account else "") + what]
    summaries = ssm.list_compliance_summaries(
        Filters=[{"Key": "ComplianceType", "Values": [compliance_type], "Type": "EQUAL"}]
    )["ComplianceSummaryItems"]
    for summary in summaries:
        lines.append(
            f"  compliant {summary['CompliantSummary']['CompliantCount']}, "
            f"non-compliant {summary['NonCompliantSummary']['NonCompliantCount']}"
        )
    described = ssm.describe_instance_information()["InstanceInformationList"]
    for instance_id in sorted(i["InstanceId"] for i in described):
        items = ssm.list_compliance_items(
            ResourceIds=[instance_id],
            ResourceTypes=["ManagedInstance"],
            Filters=[{"Key": "ComplianceType", "Values": [compliance_type], "Type": "EQUAL"}],
            MaxResults=50,
        )["ComplianceItems"]
        for item in sorted(items, key=lambda entry: entry["Id"]):
            reason = item.get("Details", {}).get("reason", "")
            lines.append(f"  {instance_id}  {item['Id']:<60} {item['Status']:<14} {reason}")
    return "\n".join(lines)


# How long the new instance may take to be covered (the batching window, a cold start, the agent).
NEW_INSTANCE_WAIT_SECONDS = 180


# What a new instance's event goes through, at home and in a member account.
HOME_PATH = (
    "its 'running' event -> EventBridge rule InstanceRunning -> the queue -> the event source mapping "
    "(batching window) -> the runner..."
)
MEMBER_PATH = (
    "its 'running' event -> the member stack's rule on its account's bus -> the central stack's member "
    "bus (its policy: the organization's forwarding roles only) -> rule InstanceRunningInMembers -> the "
    "queue -> the event source mapping -> the runner -> AssumeRole into the member account..."
)


def new_instance_step(fleet: LocalFleet, name: str = "web-5-new", account: str | None = None) -> bool:
    """Launch ``name`` (in member ``account``, if given) and print how its run went; whether it was
    covered (a successful agent run)."""
    where = f" in member account {account}" if account else ""
    print(
        f"\n=== a new instance launched{where} after the earlier runs (all manual, no scheduled run): {name}",
        flush=True,
    )
    started = time.monotonic()
    reports_before = len(fleet.event_reports())
    users = [User("root"), User("ec2-user")]
    if account:
        instance = fleet.add_instance(name, users, launched_now=True, account=account)
    else:
        instance = fleet.add_instance(name, users, launched_now=True)
    print(MEMBER_PATH if account else HOME_PATH, flush=True)
    idle = fleet.wait_for_new_instances(NEW_INSTANCE_WAIT_SECONDS)
    waited = time.monotonic() - started
    history = instance_history(fleet, instance.instance_id, instance.name, account)
    for report in fleet.event_reports()[reports_before:]:
        # The run's log record (as CloudWatch Logs holds it) lists only the instances that did not
        # succeed; a succeeded new instance is counted in the summary and read from Run Command.
        logged = report["instances_not_succeeded"]
        rows = list(logged)
        if not any(row.get("instance_id") == instance.instance_id for row in logged):
            rows += [
                dataclasses.replace(r, account_id=account or ACCOUNT, region=REGION).to_dict()
                for r in history
                if r.detail.get("command_id") in report.get("command_ids", [])
            ]
        print(
            f"\nsource={report['source']}  (the run's log record, which lists only the instances that did "
            "not succeed; a succeeded instance's row is read from Run Command's history)"
        )
        print(render({**report, "instances": rows}))
        print(compliance_summary(fleet, report, account), flush=True)
    print(f"\nRun Command's history of {instance.name} ({instance.instance_id}):")
    for result in history:
        print(
            f"  command {result.detail.get('command_id')}: {result.detail.get('ssm_status')} -> "
            f"{result.status} ({result.outcome or '-'}, {result.reason})"
        )
    if not history:
        print("  no command")
    covered = any(result.status == "succeeded" for result in history)
    print(f"\n({waited:.1f}s after its launch) can each user pull now?")
    print(accounts_pull_matrix(fleet) if account else pull_matrix(fleet), flush=True)
    if not covered:
        state = "the queue was still busy" if not idle else "the queue went idle"
        print(
            f"\nmake demo: FAILED: {instance.name} was not covered within {NEW_INSTANCE_WAIT_SECONDS} s "
            f"of its launch ({state}; {len(history)} command(s) reached it, none succeeded)",
            file=sys.stderr,
        )
    return covered


def instance_history(
    fleet: LocalFleet, instance_id: str, name: str, account: str | None = None
) -> list[InstanceResult]:
    """The instance's commands as Run Command lists them (in its own account), each read as the runner
    reads it."""
    ssm = fleet.client_in(account, "ssm") if account else fleet.client("ssm")
    results = []
    pages = ssm.get_paginator("list_command_invocations").paginate(InstanceId=instance_id, Details=True)
    for item in (item for page in pages for item in page["CommandInvocations"]):
        plugins = item.get("CommandPlugins", [])
        codes = [plugin["ResponseCode"] for plugin in plugins if "ResponseCode" in plugin]
        invocation = Invocation(
            command_id=item["CommandId"],
            instance_id=instance_id,
            instance_name=item.get("InstanceName", ""),
            status=item.get("Status", ""),
            status_details=item.get("StatusDetails", ""),
            output="\n".join(plugin.get("Output", "") for plugin in plugins),
            response_code=next((code for code in codes if code != 0), codes[0] if codes else None),
        )
        output = invocation.output
        if needs_full_output(invocation):
            output = ssm.get_command_invocation(CommandId=invocation.command_id, InstanceId=instance_id)[
                "StandardOutputContent"
            ]
        results.append(instance_result(invocation, AgentResult.parse(output), name))
    return results


# The organization part: a member account the StackSet reached, and one whose role does not trust the runner.
MEMBER_ACCOUNT = "111111111111"
LOCKED_OUT_ACCOUNT = "222222222222"
# The organization the stack is synthesized for, whose new-instance path the fleet deploys.
ORGANIZATION_CONTEXT = {"organizationalUnitIds": ORGANIZATIONAL_UNIT_ID, "organizationId": ORGANIZATION_ID}


def organization_step(fleet: LocalFleet) -> None:
    """The same stack as its organization's StackSet administrator (issue 14): a member account
    with two instances of its own (its ECR, its registry), another whose member role does not
    trust the runner; the organization's state machine (issue 23: plan, a child per batch, merge, on
    moto's Step Functions interpreter) covers both accounts and prints the merged report."""
    print(
        f"\n=== organization: member account {MEMBER_ACCOUNT} (two instances, its own registry) and "
        f"{LOCKED_OUT_ACCOUNT} (its member role does not trust the runner's)",
        flush=True,
    )
    started = time.monotonic()
    fleet.add_member_account(MEMBER_ACCOUNT)
    fleet.add_member_account(LOCKED_OUT_ACCOUNT, role_trusts_runner=False)
    fleet.add_instance("m-web-1", [User("root"), User("ec2-user")], account=MEMBER_ACCOUNT)
    fleet.add_instance("m-web-2", [User("root")], account=MEMBER_ACCOUNT)
    event = {"action": "refresh"}
    print(
        f"refresh across the organization through its state machine: {json.dumps(event)} (plan: "
        "ListStackInstances, batches in S3 -> Distributed Map: a child invocation per batch, AssumeRole per "
        "member account, each account's EC2 and Run Command -> merge: one report, one notification)",
        flush=True,
    )
    described, report = fleet.run_state_machine(event, name="demo-organization", extra_env=QUIET)
    print(f"execution {described['executionArn']}: {described['status']}")
    if report is None:
        raise RuntimeError(
            f"the organization's execution ended {described['status']}: {described.get('cause')}"
        )
    print(render(report))
    print("\nper account (summary.accounts; targets: what was not reached, and why):")
    unreached = {t["account_id"]: t for t in report.get("targets", []) if t.get("status") == "unreachable"}
    accounts = report["summary"].get("accounts", {})
    for account in sorted({*accounts, *unreached}):
        counts = accounts.get(account, {})
        why = f"  <- not reached: {unreached[account]['reason']}" if account in unreached else ""
        print(f"  {account}  " + "  ".join(f"{key}={value}" for key, value in counts.items()) + why)
    for note in fleet.notifications():
        print(f"\nnotification: {note['subject']}")
    print(f"\n(took {time.monotonic() - started:.1f}s) can each user pull from their own account's registry?")
    print(accounts_pull_matrix(fleet), flush=True)
    print(compliance_summary(fleet, report), flush=True)
    print(compliance_summary(fleet, report, MEMBER_ACCOUNT, one_of_many=True), flush=True)


def accounts_pull_matrix(fleet: LocalFleet) -> str:
    """``pull_matrix`` with each instance's account and the registry it pulls from."""
    lines = []
    for instance in fleet.instances:
        sandbox = instance.sandbox
        where = f"  {instance.account_id}  {instance.name:<16}"
        if instance.ping_status != "Online":
            lines.append(f"{where} (offline)")
            continue
        registry = sandbox.surroundings.registry
        cells = [
            f"{user.name}={'yes' if sandbox.can_pull(user.name) else 'no'}"
            f" ({how_configured(sandbox.config_bytes(user.name), registry)})"
            for user in sandbox.users
        ]
        lines.append(f"{where} {'  '.join(cells)}  <- {registry}")
    return "\n".join(lines)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # --help (or any argument) says what the demo does and runs nothing; the demo takes no options.
    parser = argparse.ArgumentParser(
        prog="make demo",
        description=(__doc__ or "").split("\n\n", 1)[0]
        + " It starts local services and sandboxed instances for a few minutes; it needs no options.",
    )
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    missing = [what for present, what in prerequisites() if not present]
    if missing:
        print("make demo needs: " + ", ".join(missing), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_signal)
    print("synthesizing the stack (cdk-nag included), also with organization context...", flush=True)
    outdir = Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-demo-cdk.out-"))
    template = synthesize(outdir=str(outdir))["EcrFleetAuth"]
    organization_outdir = outdir / "organization"
    (central,) = synthesize(ORGANIZATION_CONTEXT, outdir=str(organization_outdir)).values()
    try:
        asset = asset_directory(template, outdir)
        with LocalFleet(
            template,
            asset=asset,
            new_instances=True,
            organization=True,
            organization_templates=(central, member_template(organization_outdir)),
        ) as fleet:
            print(
                "starting moto, the simulated EC2 and Run Command, the registry and five instances...",
                flush=True,
            )
            build_fleet(fleet)
            print("before any run:")
            print(pull_matrix(fleet))
            run_step(fleet, "check (read-only)", {"action": "check"})
            run_step(fleet, "refresh (docker login with a fresh token)", {"action": "refresh"})
            run_step(fleet, "helper (install and configure the credential helper)", {"action": "helper"})
            organization_step(fleet)
            if not new_instance_step(fleet):
                return 1
            if not new_instance_step(fleet, "m-web-3-new", MEMBER_ACCOUNT):
                return 1
    except KeyboardInterrupt:
        print("\ninterrupted: everything started has been stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
