"""End to end, with real parts: the runner handler -> simulated Run Command -> the document's agent in
sandboxed instances -> docker login / credential helper -> a real registry; pull probes decide."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.fleet_demo import CORRUPT_CONFIG, build_fleet
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.troubleshooting import NEXT_STEPS
from ecr_fleet_auth_cdk.dashboard import SHOWN_STATUSES
from localfleet.harnesses.local_fleet import OUTPUT_LOG_GROUP, FleetInstance, LocalFleet
from localfleet.harnesses.local_services import REGISTRY, prerequisites
from localfleet.lambda_runtime import FunctionError, asset_directory
from tests.support.prerequisites import require
from tests.support.template import Template

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet(synthesized_template: Template, synthesized_outdir: Path) -> Iterator[LocalFleet]:
    for present, what in prerequisites():
        require(present, what)
    asset = asset_directory(synthesized_template, synthesized_outdir)
    with LocalFleet(synthesized_template, asset=asset) as local:
        build_fleet(local)
        yield local


def by_name(fleet: LocalFleet, name: str) -> FleetInstance:
    return next(instance for instance in fleet.instances if instance.name == name)


def managed_users(instance: FleetInstance) -> list[str]:
    """`auto`: root and the docker group's members."""
    return [user.name for user in instance.sandbox.users if user.name == "root" or user.docker_group]


def reported(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = {entry["name"]: entry for entry in report["instances"]}
    assert report["summary"]["total"] == len(report["instances"])
    return names


def configs(fleet: LocalFleet) -> dict[tuple[str, str], bytes | None]:
    return {
        (instance.name, user.name): instance.sandbox.config_bytes(user.name)
        for instance in fleet.instances
        for user in instance.sandbox.users
    }


def invocations(fleet: LocalFleet, instance: FleetInstance) -> list[dict[str, Any]]:
    ssm = fleet.client("ssm")
    pages = ssm.get_paginator("list_command_invocations").paginate(InstanceId=instance.instance_id)
    return [invocation for page in pages for invocation in page["CommandInvocations"]]


def emitted_metrics(stdout: str) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions) from the EMF lines the handler printed."""
    found = set()
    for line in stdout.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for dimension_set in directive["Dimensions"]:
                dimensions = tuple(sorted((name, record[name]) for name in dimension_set))
                found.update((directive["Namespace"], m["Name"], dimensions) for m in directive["Metrics"])
    return found


def test_remediation_end_to_end(fleet: LocalFleet) -> None:
    web1, web2, offline, untagged, corrupt = (
        by_name(fleet, name)
        for name in ("web-1", "web-2", "web-3-offline", "build-untagged", "web-4-corrupt")
    )
    reachable = [web1, web2, corrupt]
    for instance in [*reachable, untagged]:
        for user in instance.sandbox.users:
            assert not instance.sandbox.can_pull(user.name), (
                f"{instance.name}/{user.name} pulls before any run"
            )

    # check: read-only, every file byte-identical
    before = configs(fleet)
    report = reported(fleet.invoke({"action": "check"}))
    assert configs(fleet) == before
    assert set(report) == {"web-1", "web-2", "web-3-offline", "web-4-corrupt"}, "untagged is not in the run"
    assert report["web-3-offline"]["status"] == "unreachable"
    assert report["web-3-offline"]["reason"] == "ssm_connection_lost"
    assert all(report[i.name]["status"] == "succeeded" for i in reachable)
    assert report["web-4-corrupt"]["reason"] == "config_corrupt"
    emitted = emitted_metrics(fleet.last_stdout)
    dimensions = (("action", "check"), ("service", "EcrFleetAuth"))  # service: the stack's name
    for status in SHOWN_STATUSES:  # what the dashboard and the alarm read
        assert (contract.METRIC_NAMESPACE, contract.status_metric_name(status), dimensions) in emitted
    assert (contract.METRIC_NAMESPACE, contract.RUN_DURATION_METRIC, dimensions) in emitted
    fleet.notifications()  # the check's own notification (an unreachable instance) is not under test here

    # refresh: every managed user on every reachable tagged instance can pull
    corrupt_before = corrupt.sandbox.config_bytes("ec2-user")
    report = reported(fleet.invoke({"action": "refresh"}))
    for instance in (web1, web2):
        assert (report[instance.name]["status"], report[instance.name]["outcome"]) == ("succeeded", "changed")
        for user in instance.sandbox.users:
            assert instance.sandbox.can_pull(user.name) == (user.name in managed_users(instance)), user.name
    assert (report["web-4-corrupt"]["status"], report["web-4-corrupt"]["reason"]) == (
        "failed",
        "config_corrupt",
    )
    assert corrupt.sandbox.config_bytes("ec2-user") == corrupt_before == CORRUPT_CONFIG.encode()
    assert corrupt.sandbox.can_pull("root"), "one bad config does not stop the instance's other users"
    assert report["web-3-offline"]["status"] == "unreachable"
    existing = json.loads(web1.sandbox.config_bytes("ec2-user") or b"{}")
    assert "ghcr.io" in existing["auths"] and existing["detachKeys"] == "ctrl-e,e", "other keys are kept"
    assert REGISTRY in existing["auths"]
    (notification,) = fleet.notifications()
    assert "1 failed" in notification["subject"] and "1 unreachable" in notification["subject"]
    assert corrupt.instance_id in notification["message"] and "config_corrupt" in notification["message"]
    assert f"next step: {NEXT_STEPS['config_corrupt']}" in notification["message"]
    assert f"log-group/{OUTPUT_LOG_GROUP.replace('/', '$252F')}" in notification["message"]

    # helper: credHelpers instead of the stored login, and pulls still work
    report = reported(fleet.invoke({"action": "helper"}))
    for instance in (web1, web2):
        assert report[instance.name]["status"] == "succeeded"
        for name in managed_users(instance):
            config = json.loads(instance.sandbox.config_bytes(name) or b"{}")
            assert config["credHelpers"][REGISTRY] == "ecr-login"
            assert REGISTRY not in config.get("auths", {}), "the stale login would shadow the helper"
            assert instance.sandbox.can_pull(name), f"{instance.name}/{name} cannot pull with the helper"
    assert "ghcr.io" in json.loads(web1.sandbox.config_bytes("ec2-user") or b"{}")["auths"]
    assert corrupt.sandbox.config_bytes("ec2-user") == CORRUPT_CONFIG.encode()

    # a second helper run has nothing to do
    before = configs(fleet)
    report = reported(fleet.invoke({"action": "helper"}))
    assert report["web-1"]["outcome"] == report["web-2"]["outcome"] == "unchanged"
    assert configs(fleet) == before

    assert invocations(fleet, untagged) == [], "the untagged instance is never commanded"
    # Tag targets include the offline instance, as in SSM; nothing ever runs there: SSM keeps
    # retrying it (Delayed) until the delivery timeout, or, when the corrupt instance's failure
    # reached maxErrors while it was still queued behind maxConcurrency (the order of the targets
    # is SSM's), stops it unsent (Terminated).
    details = {i["StatusDetails"] for i in invocations(fleet, offline)}
    assert details and details <= {"Delayed", "Delivery Timed Out", "Terminated"}, details


def test_a_narrowed_run_cannot_reach_an_untagged_instance(fleet: LocalFleet) -> None:
    untagged, web2 = by_name(fleet, "build-untagged"), by_name(fleet, "web-2")
    report = fleet.invoke({"action": "check", "instance_ids": [untagged.instance_id, web2.instance_id]})
    entries = {entry["instance_id"]: entry for entry in report["instances"]}
    assert entries[untagged.instance_id]["reason"] == "not_target_tagged"
    assert entries[untagged.instance_id]["status"] != "succeeded"
    assert entries[web2.instance_id]["status"] == "succeeded"
    assert invocations(fleet, untagged) == []


def test_dry_run_sends_nothing(fleet: LocalFleet) -> None:
    sent = fleet.account.ssm_endpoint.calls["SendCommand"]
    report = fleet.invoke({"action": "refresh", "dry_run": True})
    assert report["dry_run"] is True
    assert fleet.account.ssm_endpoint.calls["SendCommand"] == sent
    assert report["command_ids"] == []


def test_an_invalid_event_fails_the_invocation_and_sends_nothing(fleet: LocalFleet) -> None:
    sent = fleet.account.ssm_endpoint.calls["SendCommand"]
    fleet.notifications()  # what earlier runs published
    with pytest.raises(FunctionError) as rejected:
        fleet.invoke({"action": "check", "instance_ids": ["i-123; reboot"]})
    assert rejected.value.invocation.error_type == "InvalidEvent"
    assert "instance_ids" in str(rejected.value)
    assert fleet.account.ssm_endpoint.calls["SendCommand"] == sent
    assert fleet.notifications() == []


def test_a_run_is_traced_as_deployed(fleet: LocalFleet) -> None:
    """Tracing is active as in the stack: the handler and every AWS call it makes are segments
    of the invocation's trace, sent to the X-Ray daemon address."""
    fleet.invoke({"action": "check"})
    assert fleet.last_trace_id is not None

    def handler_segment() -> list[dict[str, Any]]:
        return [d for d in fleet.xray.documents(fleet.last_trace_id) if d["name"] == "## handler"]

    deadline = time.monotonic() + 5  # UDP: the last datagrams may still be on their way
    while not handler_segment() and time.monotonic() < deadline:
        time.sleep(0.05)
    (handler,) = handler_segment()
    assert handler["annotations"] == {"ColdStart": True, "Service": contract.METRIC_SERVICE}
    trace = fleet.xray.documents(fleet.last_trace_id)
    calls = {(d["name"], d["aws"]["operation"]) for d in trace if "aws" in d}
    assert {
        ("ec2", "DescribeInstances"),
        ("ssm", "DescribeInstanceInformation"),
        ("ssm", "SendCommand"),
        ("ssm", "ListCommandInvocations"),
    } <= calls
    assert all(d["parent_id"] == handler["id"] for d in trace if "aws" in d)
    assert fleet.xray.rejected == []
