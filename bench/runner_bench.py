"""Runner benchmark (issue 4): API calls and wall time over emulated fleets.

For fleets of 100, 1,000 and 10,000 tagged instances the real handler runs
against a simulated account (``localfleet``: the EC2 inventory and the Run Command
engine with the stack's document, reached in-process through real boto3 clients —
the same simulator the runner's tests use) on a simulated clock: each agent run
takes 5-15 simulated seconds, the configured rate is 10% at a time. Next to it, measured
on the same emulated fleet, a naive baseline: one SendCommand per instance,
then boto3's ``command_executed`` waiter per instance (GetCommandInvocation
every 5 s). API calls are counted per operation as the clients make them
(retries excluded); wall time is real time spent in the process. Finally the
handler's cold import time, in fresh interpreters as Lambda starts it
(``bench/cold_start.py``).

Targets: <= 3*ceil(N/50) + 10 calls per run; >= 20x fewer calls than the
baseline at 1,000; 10,000 instances in one invocation; import < 300 ms.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from bench import cold_start
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS
from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_account import ACCOUNT, REGION, SimulatedAccount
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.hosts.canned_agent import CannedRun
from localfleet.runner_environment import local_runner_environment, use_environment
from localfleet.synthesized_stack import Template, document_content, synthesize
from localfleet.transport import simulate_botocore_time

ROOT = Path(__file__).resolve().parent.parent

# The runner's settings are the default stack's (``runner_environment``); these, its deploy-time values.
DEPLOY_TIME = {
    "DOCUMENT_NAME": "EcrFleetAuth-Agent",
    "REGISTRIES": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
    "OUTPUT_LOG_GROUP": "/ecr-fleet-auth/run-command",
    "TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:ecr-fleet-auth",
    "CLAIM_TABLE_NAME": "EcrFleetAuth-NewInstanceClaims",
    "RUNS_BUCKET_NAME": "unused: no state machine in this benchmark",
}
# Over the template's: quieter logs, and nothing to publish to here (no SNS; not measured).
OVERRIDES = {"POWERTOOLS_LOG_LEVEL": "WARNING", "NOTIFY_POLICY": "never"}
SIZES = (100, 1_000, 10_000)
# The baseline makes ~N*(1 + polls) calls; at 10,000 that is minutes of emulation for a known answer.
BASELINE_SIZES = (100, 1_000)
IMPORT_RUNS = 7


@dataclass
class Measurement:
    calls: Counter[str]
    wall_seconds: float
    simulated_seconds: float
    summary: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class Simulation:
    """One simulated account holding ``size`` tagged, online Linux instances and the stack's document."""

    def __init__(self, size: int, document: dict[str, Any]) -> None:
        self.account = SimulatedAccount(SimulatedClock())
        self.account.register_document(DEPLOY_TIME["DOCUMENT_NAME"], document)
        for number in range(size):
            tags = {"Name": f"node-{number}", "ecr-fleet-auth": "enabled"}
            self.account.launch(tags=tags, agent=CannedRun(duration=5 + number % 11))

    @property
    def clock(self) -> SimulatedClock:
        assert isinstance(self.account.clock, SimulatedClock)
        return self.account.clock


def run_handler(size: int, document: dict[str, Any]) -> Measurement:
    simulation = Simulation(size, document)
    start = simulation.clock.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        runner = InProcessRunner(simulation.account, patch, region=REGION)
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics and logs
            report = runner.invoke({"source": "schedule"}, LAMBDA_TIMEOUT_SECONDS)
        wall = time.perf_counter() - began
    calls = simulation.account.api_calls
    return Measurement(calls, wall, simulation.clock.monotonic() - start, report["summary"])


def run_baseline(size: int, document: dict[str, Any]) -> Measurement:
    """One SendCommand per instance, then a per-instance waiter polling every 5 s."""
    simulation = Simulation(size, document)
    session = simulation.account.session(REGION)
    ssm, ec2 = session.client("ssm"), session.client("ec2")
    start = simulation.clock.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        simulate_botocore_time(patch, simulation.clock, [])
        began = time.perf_counter()
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:ecr-fleet-auth", "Values": ["enabled"]}]
        )
        ids = [i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]]
        commands = {}
        for instance_id in ids:
            response = ssm.send_command(
                InstanceIds=[instance_id],
                DocumentName=DEPLOY_TIME["DOCUMENT_NAME"],
                DocumentVersion="1",
                Parameters={"Action": ["refresh"], "Registries": [DEPLOY_TIME["REGISTRIES"]]},
            )
            commands[instance_id] = response["Command"]["CommandId"]
        waiter = ssm.get_waiter("command_executed")
        succeeded = 0
        for instance_id, command_id in commands.items():
            try:
                waiter.wait(
                    CommandId=command_id,
                    InstanceId=instance_id,
                    WaiterConfig={"Delay": 5, "MaxAttempts": 200},
                )
                succeeded += 1
            except WaiterError:
                pass
        wall = time.perf_counter() - began
    summary = {"total": len(ids), "succeeded": succeeded}
    calls = simulation.account.api_calls
    return Measurement(calls, wall, simulation.clock.monotonic() - start, summary)


def _budget(size: int) -> int:
    return 3 * math.ceil(size / 50) + 10


def _calls(calls: Counter[str]) -> str:
    return ", ".join(f"{name.split('.', 1)[1]} {count}" for name, count in sorted(calls.items()))


def main() -> None:
    print("ecr-fleet-auth runner benchmark (simulated EC2 + Run Command, in-process, simulated clock)")
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
        (template,) = synthesize(outdir=outdir).values()
        environment = local_runner_environment(template, DEPLOY_TIME, region=REGION, overrides=OVERRIDES)
        with pytest.MonkeyPatch.context() as patch:
            use_environment(patch, environment)
            _report(template, Path(outdir))


def _report(template: Template, outdir: Path) -> None:
    document = document_content(template)
    rate = os.environ["MAX_CONCURRENCY"]
    print(f"fleet: tagged online Linux instances, agent run 5-15 s, MaxConcurrency {rate}")
    print()
    header = (
        f"{'instances':>9} | {'runner calls':>12} | {'budget':>6} | {'baseline calls':>14} | {'ratio':>6} | "
    )
    header += f"{'runner wall':>11} | {'baseline wall':>13} | {'simulated':>9} | result"
    print(header)
    print("-" * len(header))
    verdicts = []
    details = []
    for size in SIZES:
        measured = run_handler(size, document)
        baseline = run_baseline(size, document) if size in BASELINE_SIZES else None
        ratio = f"{baseline.total / measured.total:.0f}x" if baseline else "-"
        baseline_calls = str(baseline.total) if baseline else "not run"
        baseline_wall = f"{baseline.wall_seconds:.2f} s" if baseline else "-"
        outcome = f"{measured.summary['succeeded']}/{measured.summary['total']} succeeded"
        if measured.summary["pending"]:
            outcome += f", {measured.summary['pending']} pending"
        print(
            f"{size:>9} | {measured.total:>12} | {_budget(size):>6} | {baseline_calls:>14} | {ratio:>6} | "
            f"{measured.wall_seconds:>9.2f} s | {baseline_wall:>13} | "
            f"{measured.simulated_seconds:>7.0f} s | {outcome}"
        )
        details.append(f"  runner   {size:>6}: {_calls(measured.calls)}")
        if baseline:
            details.append(f"  baseline {size:>6}: {_calls(baseline.calls)}")
        verdicts.append((f"calls <= 3*ceil(N/50)+10 at {size}", measured.total <= _budget(size)))
        if size == 1_000 and baseline:
            verdicts.append(
                ("at least 20x fewer calls than the baseline at 1,000", baseline.total >= 20 * measured.total)
            )
        if size == 10_000:
            complete = (
                measured.summary["succeeded"] == size and measured.simulated_seconds < LAMBDA_TIMEOUT_SECONDS
            )
            verdicts.append(("10,000 instances in one invocation", complete))
    print()
    print("API calls per operation:")
    print("\n".join(details))
    print()
    imports = cold_start.measure(IMPORT_RUNS, (template, outdir))
    print(imports.summary())
    verdicts.append(("cold import under 300 ms (median, as deployed)", imports.met))
    verdicts.append(
        (f"cold import within {cold_start.TARGET_RATIO}x the boto3 + Powertools floor", imports.ratio_met)
    )
    print()
    for name, met in verdicts:
        print(f"  [{'met' if met else 'MISSED'}] {name}")
