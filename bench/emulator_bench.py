"""Runner over the SSM Run Command emulator (issue 5): real HTTP requests at fleet scale.

The real handler runs against a simulated account (``localfleet``) whose Run
Command is served over loopback HTTP on a real clock (every SSM call is a real
request, validated against botocore's service model and counted by the server),
with lightweight instances that return a canned agent result, and its EC2
inventory answered in this process (moto takes minutes to create and times out
describing 10,000 instances). Real clock: the wall time includes
the runner's own polling back-off. Figures: SSM requests per operation as the
emulator received them, EC2 calls, wall time, and the call budget 3*ceil(N/50)+10
(the run's calls; its compliance writes, one per instance with a result, apart).
The runner's notifications go to moto's SNS in this process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.fleet import budget, notifications_topic, without_compliance
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS
from localfleet.clocks import RealClock
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.harnesses.in_process_state_machine import RUNS_BUCKET
from localfleet.hosts.executors import CannedExecutor
from localfleet.identity import ACCOUNT, REGION
from localfleet.runner_environment import deploy_time, local_runner_environment, use_environment
from localfleet.synthesized_stack import document_content, synthesize

SIZES = (100, 1_000, 10_000)
# The runner's settings are the default stack's (``runner_environment``); these, its deploy-time values.
DEPLOY_TIME = deploy_time(ACCOUNT, REGION, RUNS_BUCKET)
OVERRIDES = {"POWERTOOLS_LOG_LEVEL": "WARNING"}  # over the template's: quieter logs
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


def run(size: int, document: dict[str, Any]) -> tuple[Counter[str], Counter[str], float, dict[str, int]]:
    account = SimulatedAccount(RealClock())
    try:
        account.register_document(DEPLOY_TIME["DOCUMENT_NAME"], document)
        executor = CannedExecutor(stdout=CANNED_RESULT + "\n")
        for number in range(size):
            account.launch(tags={"ecr-fleet-auth": "enabled", "Name": f"node-{number}"}, executor=executor)
        os.environ["AWS_ENDPOINT_URL_SSM"] = account.serve("ssm")
        with pytest.MonkeyPatch.context() as patch:
            runner = InProcessRunner(account, patch, region=REGION, services=("ec2",))
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics
                report = runner.invoke({"source": "schedule"}, LAMBDA_TIMEOUT_SECONDS)
            wall = time.perf_counter() - began
        return (
            Counter(account.ssm_endpoint.calls),
            Counter(account.ec2_endpoint.calls),
            wall,
            report["summary"],
        )
    finally:
        account.close()


def main() -> None:
    print("runner over simulated Run Command (real HTTP on loopback), canned agent results, real clock")
    template = synthesize()["EcrFleetAuth"]
    # Each run serves its SSM on loopback (AWS_ENDPOINT_URL_SSM, set then); EC2 is answered in this
    # process (its endpoint never dialled), SNS is moto's.
    environment = local_runner_environment(
        template, DEPLOY_TIME, region=REGION, services=("EC2",), overrides=OVERRIDES
    )
    with pytest.MonkeyPatch.context() as patch:
        use_environment(patch, environment)
        with notifications_topic(REGION):
            _report(document_content(template))


def _report(document: dict[str, Any]) -> None:
    columns = ("instances", "SSM requests", "EC2 calls", "budget", "wall")
    print(" | ".join(f"{column:>9}" for column in columns) + " | succeeded")
    details = []
    for size in SIZES:
        ssm_calls, ec2_calls, wall, summary = run(size, document)
        ssm_run, compliance = without_compliance(ssm_calls)
        total = ssm_run + sum(ec2_calls.values())
        print(
            f"{size:>9} | {sum(ssm_calls.values()):>12} | {sum(ec2_calls.values()):>9} | {budget(size):>6} | "
            f"{wall:>6.2f} s | {summary['succeeded']}/{summary['total']}  "
            f"(run's calls {total} against the budget; {compliance} compliance writes apart)"
        )
        details.append(f"  {size:>6}: " + ", ".join(f"{op} {n}" for op, n in sorted(ssm_calls.items())))
    print("SSM requests per operation, as the simulated service received them:")
    print("\n".join(details))
