"""Runner over the SSM Run Command emulator (issue 5): real HTTP requests at fleet scale.

The real handler runs against ``localfleet.SsmEmulator`` on loopback (every SSM
call is a real request, validated against botocore's service model and counted
by the server) with lightweight instances that return a canned agent result,
and EC2 answered by the test suite's ``FakeEc2`` (moto takes minutes to create
and times out describing 10,000 instances). Real clock: the wall time includes
the runner's own polling back-off. Figures: SSM requests per operation as the
emulator received them, EC2 calls, wall time, and the call budget 3*ceil(N/50)+10.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecr_fleet_auth import clients
from localfleet import CannedExecutor, SsmEmulator
from localfleet.local_fleet import DOCUMENT_NAME
from localfleet.services import ACCOUNT, REGION
from localfleet.stack import document_content, synthesize
from tests.runner.fake_ec2 import Ec2Instance, FakeEc2

SIZES = (100, 1_000, 10_000)
LAMBDA_TIMEOUT_SECONDS = 900
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "DOCUMENT_NAME": DOCUMENT_NAME,
    "TARGET_TAG_KEY": "ecr-fleet-auth",
    "TARGET_TAG_VALUES": "enabled",
    "ACTION": "refresh",
    "REGISTRIES": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "MAX_CONCURRENCY": "10%",
    "MAX_ERRORS": "10%",
    "WAIT_SECONDS": "840",
    "NOTIFY_POLICY": "never",
}
CANNED_RESULT = json.dumps(
    {
        "schema": 1,
        "action": "refresh",
        "outcome": "unchanged",
        "reason": "ok",
        "message": "canned",
        "users": [],
    }
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LocalContext:
    """The parts of the Lambda context the runner and Powertools read (the handler runs in-process
    here, because the emulated EC2 answers at botocore's level in this process)."""

    deadline: float
    function_name: str = "ecr-fleet-auth-local-runner"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: f"local-{time.time_ns()}")

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def run(size: int, document: dict[str, Any]) -> tuple[Counter[str], Counter[str], float, dict[str, int]]:
    from handler import handler  # noqa: PLC0415 - after main() set the environment it reads

    ec2 = FakeEc2()
    tags = {"ecr-fleet-auth": "enabled"}
    ids = [f"i-{number:017x}" for number in range(size)]
    for instance_id in ids:
        ec2.add(Ec2Instance(instance_id, {**tags, "Name": instance_id}))
    executor = CannedExecutor(stdout=CANNED_RESULT + "\n")
    with SsmEmulator(tag_resolver=lambda key, values: ids) as emulator:
        emulator.register_document(DOCUMENT_NAME, document)
        for instance_id in ids:
            emulator.register_instance(instance_id, executor, tags=tags)
        session = boto3.Session(region_name=ENVIRONMENT["AWS_REGION"])
        session.events.register("before-send.ec2", ec2)
        factory = clients.ClientFactory(session=session)
        os.environ["AWS_ENDPOINT_URL_SSM"] = emulator.endpoint_url
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(clients, "default_factory", lambda: factory)
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics
                report = handler(
                    {"source": "schedule"}, LocalContext(time.monotonic() + LAMBDA_TIMEOUT_SECONDS)
                )
            wall = time.perf_counter() - began
        return Counter(emulator.calls), Counter(ec2.calls), wall, report["summary"]


def main() -> None:
    os.environ.update(ENVIRONMENT)
    print("runner over the SSM emulator (real HTTP on loopback), canned agent results, real clock")
    document = document_content(synthesize()["EcrFleetAuth"])
    columns = ("instances", "SSM requests", "EC2 calls", "budget", "wall")
    print(" | ".join(f"{column:>9}" for column in columns) + " | succeeded")
    details = []
    for size in SIZES:
        ssm_calls, ec2_calls, wall, summary = run(size, document)
        budget = 3 * math.ceil(size / 50) + 10
        total = sum(ssm_calls.values()) + sum(ec2_calls.values())
        print(
            f"{size:>9} | {sum(ssm_calls.values()):>12} | {sum(ec2_calls.values()):>9} | {budget:>6} | "
            f"{wall:>6.2f} s | {summary['succeeded']}/{summary['total']}  (total {total})"
        )
        details.append(f"  {size:>6}: " + ", ".join(f"{op} {n}" for op, n in sorted(ssm_calls.items())))
    print("SSM requests per operation, as the emulator received them:")
    print("\n".join(details))
