"""Runner benchmark (issue 4): API calls and wall time over emulated fleets.

For fleets of 100, 1,000 and 10,000 tagged instances the real handler runs
against a simulated account (``localfleet``: the EC2 inventory and the Run Command
engine with the stack's document, reached in-process through real boto3 clients —
the same simulator the runner's tests use) on a simulated clock: each agent run
takes 5-15 simulated seconds, the configured rate is 10% at a time. Next to it, measured
on the same emulated fleet, a naive baseline: one SendCommand per instance,
then boto3's ``command_executed`` waiter per instance (GetCommandInvocation
every 5 s). API calls are counted per operation as the clients make them
(retries excluded); the run's SSM Compliance writes (one ``PutComplianceItems``
per instance with a result) come on top of its calls and are counted apart, as
docs/how-it-works/how-a-run-works.md says. Wall time is real time spent in the
process. The runner's notifications go to moto's SNS in this process. Finally the
handler's cold start in fresh interpreters as Lambda starts it: init alone, and
init + each path's first event, against the floor (``bench/cold_start.py``).

Targets: <= 3*ceil(N/50) + 10 calls per run (compliance writes apart); >= 20x
fewer calls than the baseline at 1,000; 10,000 instances in one invocation;
init < 300 ms and within 1.5x the floor.
"""

from __future__ import annotations

import contextlib
import io
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
from bench.fleet import (
    AGENT_RUNS,
    COMPLIANCE_WRITE,
    agent_run,
    budget,
    notifications_topic,
    without_compliance,
)
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS
from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.harnesses.in_process_state_machine import RUNS_BUCKET
from localfleet.identity import ACCOUNT, REGION
from localfleet.runner_environment import (
    ACCOUNT_SERVICES,
    deploy_time,
    local_runner_environment,
    use_environment,
)
from localfleet.synthesized_stack import Template, document_content, synthesize
from localfleet.transport import simulate_botocore_time

ROOT = Path(__file__).resolve().parent.parent

# The runner's settings are the default stack's (``runner_environment``); these, its deploy-time values.
DEPLOY_TIME = deploy_time(ACCOUNT, REGION, RUNS_BUCKET)
OVERRIDES = {"POWERTOOLS_LOG_LEVEL": "WARNING"}  # over the template's: quieter logs
SIZES = (100, 1_000, 10_000)
# The baseline makes ~N*(1 + polls) calls; at 10,000 that is minutes of emulation for a known answer.
BASELINE_SIZES = (100, 1_000)
# Interleaved rounds of fresh interpreters (floor, init, init + each first event): enough for a
# median ratio that holds to a few percent on a shared machine.
IMPORT_RUNS = 15


@dataclass
class Measurement:
    calls: Counter[str]
    wall_seconds: float
    simulated_seconds: float
    summary: dict[str, int]

    @property
    def total(self) -> int:
        """The run's calls, compliance writes apart (``bench.fleet.without_compliance``)."""
        return without_compliance(self.calls)[0]

    @property
    def compliance_writes(self) -> int:
        return without_compliance(self.calls)[1]


class Simulation:
    """One simulated account holding ``size`` tagged, online Linux instances and the stack's document."""

    def __init__(self, size: int, document: dict[str, Any]) -> None:
        self.account = SimulatedAccount(SimulatedClock())
        self.account.register_document(DEPLOY_TIME["DOCUMENT_NAME"], document)
        for number in range(size):
            tags = {"Name": f"node-{number}", "ecr-fleet-auth": "enabled"}
            self.account.launch(tags=tags, agent=agent_run(number))

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


def _calls(calls: Counter[str]) -> str:
    return ", ".join(f"{name.split('.', 1)[1]} {count}" for name, count in sorted(calls.items()))


def main() -> None:
    print("ecr-fleet-auth runner benchmark (simulated EC2 + Run Command, in-process, simulated clock)")
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
        (template,) = synthesize(outdir=outdir).values()
        environment = local_runner_environment(
            template, DEPLOY_TIME, region=REGION, services=ACCOUNT_SERVICES, overrides=OVERRIDES
        )
        with pytest.MonkeyPatch.context() as patch:
            use_environment(patch, environment)
            with notifications_topic(REGION):
                _report(template, Path(outdir))


def _report(template: Template, outdir: Path) -> None:
    document = document_content(template)
    rate = os.environ["MAX_CONCURRENCY"]
    print(f"fleet: tagged online Linux instances, {AGENT_RUNS}, MaxConcurrency {rate}")
    print(
        f"runner calls: EC2 + SSM without the compliance writes ({COMPLIANCE_WRITE}, one per instance "
        "with a result), which come on top and are printed apart"
    )
    print()
    header = (
        f"{'instances':>9} | {'runner calls':>12} | {'budget':>6} | {'baseline calls':>14} | {'ratio':>6} | "
    )
    header += f"{'runner wall':>11} | {'baseline wall':>13} | {'simulated':>9} | result"
    print(header)
    print("-" * len(header))
    verdicts = []
    details: list[str] = []
    compliance: list[str] = []
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
            f"{size:>9} | {measured.total:>12} | {budget(size):>6} | {baseline_calls:>14} | {ratio:>6} | "
            f"{measured.wall_seconds:>9.2f} s | {baseline_wall:>13} | "
            f"{measured.simulated_seconds:>7.0f} s | {outcome}"
        )
        details.append(f"  runner   {size:>6}: {_calls(measured.calls)}")
        compliance.append(
            f"  runner   {size:>6}: {measured.compliance_writes} {COMPLIANCE_WRITE} "
            f"(one per instance with a result: at most {size})"
        )
        if baseline:
            details.append(f"  baseline {size:>6}: {_calls(baseline.calls)}")
        verdicts.append(
            (f"calls <= 3*ceil(N/50)+10 at {size} (compliance writes apart)", measured.total <= budget(size))
        )
        verdicts.append((f"compliance writes <= instances at {size}", measured.compliance_writes <= size))
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
    print("Compliance writes (on top of the run's calls, counted apart):")
    print("\n".join(compliance))
    print()
    imports = cold_start.measure(IMPORT_RUNS, (template, outdir))
    print(imports.summary())
    verdicts.append(("cold import (init) under 300 ms (median, as deployed)", imports.met))
    verdicts.append(
        (
            f"cold import (init only) within {cold_start.TARGET_RATIO}x the boto3 + Powertools floor "
            "(each path's imports deferred to its first event: init + first event printed above)",
            imports.ratio_met,
        )
    )
    print()
    for name, met in verdicts:
        print(f"  [{'met' if met else 'MISSED'}] {name}")
