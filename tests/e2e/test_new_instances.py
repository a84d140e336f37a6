"""End to end, with real parts: instances launched (or tagged) after the last scheduled run, covered through
the event path — EC2's events -> the stack's rules -> the queue -> the event source mapping (as the template
builds them, ``localfleet.composition``, on the real clock) -> the real handler started as Lambda starts
it -> the SSM simulator over HTTP -> the document's agent in sandboxed instances -> a real registry; pull
probes decide.

One scenario, all cases at once so that the wall time stays near two minutes (batches are 20 s apart, a
put-back waits 30 s): an instance launched after the last run (covered without a scheduled run, its users
can pull); one whose agent registers late (covered once it does); one that never registers (reported
``unreachable`` / ``not_online_in_time`` once, the stack synthesized with the shortest readiness bound,
``newInstanceReadinessSeconds`` = 60 s; the default 900 s bound is proven on the simulated clock in
tests/runner/new_instances/test_new_instances.py); one tagged after it started (covered through its
tag-change event); one never tagged (never commanded).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecr_fleet_auth.shared.settings import MIN_READINESS_SECONDS
from localfleet.harnesses.local_fleet import FleetInstance, LocalFleet
from localfleet.harnesses.local_services import prerequisites
from localfleet.hosts.sandbox_instance import User
from localfleet.lambda_runtime import asset_directory
from tests.support.prerequisites import require
from tests.support.template import synthesize

pytestmark = pytest.mark.integration

SHORT_BOUND = {"newInstanceReadinessSeconds": MIN_READINESS_SECONDS}
# Generous: the scenario needs about 90 s (window, put-back, window, the 60 s bound, cold starts).
SETTLE_SECONDS = 240


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    for present, what in prerequisites():
        require(present, what)
    outdir = tmp_path_factory.mktemp("cdk.out-short-readiness")
    template = synthesize(SHORT_BOUND, outdir=str(outdir))["EcrFleetAuth"]
    with LocalFleet(template, asset=asset_directory(template, outdir), new_instances=True) as local:
        yield local


def invocations(fleet: LocalFleet, instance: FleetInstance) -> list[dict[str, Any]]:
    ssm = fleet.client("ssm")
    pages = ssm.get_paginator("list_command_invocations").paginate(InstanceId=instance.instance_id)
    return [invocation for page in pages for invocation in page["CommandInvocations"]]


def covered_by(fleet: LocalFleet, instance: FleetInstance) -> dict[str, Any]:
    """The one command that reached ``instance``, which succeeded, and the logged report of its run."""
    (invocation,) = invocations(fleet, instance)
    assert invocation["Status"] == "Success", invocation
    (report,) = [r for r in fleet.event_reports() if invocation["CommandId"] in r["command_ids"]]
    return report


def entries(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["instance_id"]: entry for entry in report["instances_not_succeeded"]}


def test_instances_launched_or_tagged_after_the_last_run_are_covered_through_their_events(
    fleet: LocalFleet,
) -> None:
    delivery = fleet.delivery
    assert delivery is not None
    existing = fleet.add_instance("web-existing", [User("root")])
    last_run = fleet.invoke({"source": "schedule"})
    assert [(i["name"], i["status"]) for i in last_run["instances"]] == [("web-existing", "succeeded")]

    # After the last run: five launches, their running events on the bus.
    users = [User("root"), User("ec2-user"), User("analyst", docker_group=False)]
    new = fleet.add_instance("asg-new", users, launched_now=True)
    late = fleet.add_instance("asg-late", [User("root")], registered=False, launched_now=True)
    never = fleet.add_instance("asg-never", [User("root")], registered=False, launched_now=True)
    tagged_later = fleet.add_instance("tagged-later", [User("root")], tagged=False, launched_now=True)
    untagged = fleet.add_instance("build-untagged", [User("root")], tagged=False, launched_now=True)
    for instance in (new, late, never, tagged_later, untagged):
        assert not any(instance.sandbox.can_pull(u.name) for u in instance.sandbox.users), instance.name

    # The first batch: the online instance is run; the two not registered wait in the queue.
    assert delivery.wait_until(lambda: any(i.ended for i in delivery.invocations), SETTLE_SECONDS)
    assert invocations(fleet, late) == [] and invocations(fleet, never) == []
    assert len(delivery.put_back_delays()) >= 2
    fleet.register_agent(late)  # it comes online late
    fleet.tag(tagged_later)  # a running instance gains the tag
    assert fleet.wait_for_new_instances(SETTLE_SECONDS), f"{delivery.pending()} messages still queued"

    report = covered_by(fleet, new)
    assert report["source"] == "instance_running" and report["action"] == "refresh"
    for user in new.sandbox.users:
        assert new.sandbox.can_pull(user.name) == (user.name != "analyst"), user.name  # auto: docker group
    assert covered_by(fleet, late)["source"] == "instance_running"
    assert late.sandbox.can_pull("root")
    assert covered_by(fleet, tagged_later)["source"] == "tag_change"
    assert tagged_later.sandbox.can_pull("root")

    # Never online: reported unreachable once, after the bound; never commanded.
    reported = [
        entries(r)[never.instance_id] for r in fleet.event_reports() if never.instance_id in entries(r)
    ]
    (entry,) = reported
    assert (entry["status"], entry["reason"]) == ("unreachable", "not_online_in_time")
    assert int(entry["detail"]["waited_seconds"]) >= MIN_READINESS_SECONDS
    assert invocations(fleet, never) == []
    assert any(never.instance_id in note["message"] for note in fleet.notifications())

    # Never tagged: never commanded, never reported; the last run's instance is not run again.
    assert invocations(fleet, untagged) == []
    assert all(untagged.instance_id not in entries(r) for r in fleet.event_reports())
    assert len(invocations(fleet, existing)) == 1
    assert all(i.error is None and not i.kept for i in delivery.invocations)
    assert delivery.dead_letters() == 0
