"""What the runner benchmarks share: the fleet's agent runs, the per-run call budget and how calls
are counted against it, and the lines that print an organization run's outcome and calls."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
from moto import mock_aws

from localfleet.hosts.canned_agent import CannedRun
from localfleet.runner_environment import TOPIC_NAME

AGENT_RUNS = "agent run 5-15 s"


def agent_run(number: int) -> CannedRun:
    """The n-th instance's agent: its run takes 5-15 simulated seconds (``AGENT_RUNS``)."""
    return CannedRun(duration=5 + number % 11)


@contextlib.contextmanager
def notifications_topic(region: str, moto_config: Any = None) -> Iterator[None]:
    """moto's SNS in this process holding the stack's topic, as the tests' world has it: the runner
    publishes its notifications as deployed (no setting of its own overridden). Enter it once the
    runner's environment is this process's (its ``TOPIC_ARN``, ``deploy_time``'s); ``moto_config``:
    moto's options, if any."""
    with mock_aws(config=moto_config) if moto_config else mock_aws():
        topic = boto3.client("sns", region_name=region).create_topic(Name=TOPIC_NAME)["TopicArn"]
        if topic != os.environ["TOPIC_ARN"]:
            raise RuntimeError(f"the topic {topic} is not the runner's TOPIC_ARN {os.environ['TOPIC_ARN']}")
        yield


def budget(instances: int) -> int:
    """A run's EC2 + SSM calls over ``instances`` instances at most (compliance writes apart)."""
    return 3 * math.ceil(instances / 50) + 10


# SSM Compliance (issue 22): one PutComplianceItems per instance with a result (the API takes one
# resource per call), outside the budget of the run's own calls, and counted apart
# (docs/how-it-works/how-a-run-works.md).
COMPLIANCE_WRITE = "PutComplianceItems"


def without_compliance(calls: Mapping[str, int]) -> tuple[int, int]:
    """The calls without the compliance writes, and the compliance writes. ``calls``: by operation,
    plain (``PutComplianceItems``) or under its service (``ssm.PutComplianceItems``)."""
    compliance = sum(count for name, count in calls.items() if name.rsplit(".", 1)[-1] == COMPLIANCE_WRITE)
    return sum(calls.values()) - compliance, compliance


def pair_calls(pair: Any) -> tuple[int, int]:
    """A pair's EC2 + SSM calls without its compliance writes, and its compliance writes."""
    calls, compliance = without_compliance(pair.ssm_endpoint.calls)
    return calls + sum(pair.ec2_endpoint.calls.values()), compliance


def print_outcome(
    label_width: int, summary: Mapping[str, int], targets: list[dict[str, Any]], pairs: int
) -> list[str]:
    """An organization run's outcome line; the reasons of the pairs not reached."""
    reached = sum(1 for t in targets if t["status"] == "reached")
    unreached = sorted({t["reason"] for t in targets if t["status"] != "reached"})
    outcome = f"{summary['succeeded']:,}/{summary['total']:,} succeeded, {summary['pending']:,} pending, "
    outcome += f"{summary['failed']:,} failed; pairs reached {reached:,}/{pairs:,}"
    if unreached:
        outcome += f" (unreached: {unreached})"
    print(f"  {'outcome':<{label_width}}: {outcome}")
    return unreached


def print_calls(label_width: int, instances: int, calls: list[int], compliance: list[int]) -> None:
    """The calls per pair against the budget, and the compliance writes apart (per pair, sorted)."""
    print(
        f"  {'API calls per pair':<{label_width}}: max {calls[-1]}, median {statistics.median(calls):g}, "
        f"min {calls[0]} (EC2 + SSM without compliance writes, over {len(calls):,} pairs; "
        f"budget 3*ceil({instances}/50)+10 = {budget(instances)})"
    )
    print(
        f"  {'compliance writes':<{label_width}}: max {compliance[-1]}, median "
        f"{statistics.median(compliance):g} per pair ({COMPLIANCE_WRITE}: one per instance with a result, "
        f"{instances} a pair at most)"
    )
