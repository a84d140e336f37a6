"""Organization benchmark (issue 14): one invocation over accounts x regions x instances.

The real handler runs with the environment of the stack synthesized with organization context
(``organizationalUnitIds``, ``memberRegions``: the template's own values, deploy-time references
replaced by this world's names) against ``localfleet``'s ``SimulatedOrganization``: every
(account, region) pair an EC2 inventory and Run Command engine of its own, the member document
from the member template, member roles behind STS, the StackSet's stack instances behind
CloudFormation, all on one simulated clock. Each agent run takes 5-15 simulated seconds; the rate
is the template's (``maxConcurrency`` 10%). The home account is the first account, so its home
region is the home pair and the other pairs are member pairs.

Printed: the simulated run time against Lambda's 15 minutes; API calls per pair (EC2 and SSM
requests each pair received, retries included: none are throttled here) against the budget
3*ceil(N/50)+10 of a pair of N instances, max and median, SSM Compliance's writes apart (one
``PutComplianceItems`` per instance with a result: at most N a pair); STS and CloudFormation calls; the
process's peak memory (``ru_maxrss``, before and after the run: the simulator's 40,000 instances
included, so an upper bound of the runner's; ``--tracemalloc`` adds Python allocations traced
during the run, slower); wall time.

    make bench BENCH=organization                      # 50 accounts x 4 regions x 200 instances
    make bench BENCH="organization --accounts 10 --regions 2 --instances 50"
    make bench BENCH="organization --state-machine"    # beyond one invocation: 2,000 pairs (its own module)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.fleet import (
    AGENT_RUNS,
    agent_run,
    budget,
    notifications_topic,
    pair_calls,
    print_calls,
    print_outcome,
)
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS
from ecr_fleet_auth_cdk.member_stack import MEMBER_STACK_ID
from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_organization import SimulatedOrganization
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.harnesses.in_process_state_machine import RUNS_BUCKET
from localfleet.harnesses.organization_fleet import populate
from localfleet.identity import ACCOUNT
from localfleet.runner_environment import (
    ORGANIZATION_SERVICES,
    deploy_time,
    local_runner_environment,
    use_environment,
)
from localfleet.synthesized_stack import Template, document_content, synthesize

HOME_REGION = "eu-west-1"
# Regions enabled by default (no opt-in), the home region first.
REGIONS = (
    HOME_REGION,
    "us-east-1",
    "us-west-2",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "eu-north-1",
    "ap-south-1",
)
FIRST_ACCOUNT = 100_000_000_000
ORGANIZATION_ID = "o-a1b2c3d4e5"
UNIT = "ou-ab12-cdef3456"
FUNCTION_MEMORY_MB = 512
LABEL_WIDTH = 19  # the printed figures' names, padded
OVERRIDES = {"POWERTOOLS_LOG_LEVEL": "WARNING"}  # over the template's: quieter logs
# The deploy-time values of the runner's account (moto's: its SNS topic's, in this process).
DEPLOY_TIME = deploy_time(ACCOUNT, HOME_REGION, RUNS_BUCKET)
DOCUMENT = DEPLOY_TIME["DOCUMENT_NAME"]


def fleet_tags(environment: dict[str, str]) -> Any:
    """The n-th instance's tags: a name, and the stack's target tag."""
    return lambda number: {"Name": f"node-{number}", environment["TARGET_TAG_KEY"]: "enabled"}


def runner_environment(central: Template) -> dict[str, str]:
    """The runner's environment as the central template gives it, in this benchmark's organization."""
    return local_runner_environment(
        central, DEPLOY_TIME, region=HOME_REGION, services=ORGANIZATION_SERVICES, overrides=OVERRIDES
    )


@dataclass(frozen=True)
class Shape:
    accounts: int
    regions: int
    instances: int  # per pair
    wait_seconds: int | None  # None: cdk.json's waitSeconds
    trace_memory: bool
    state_machine: bool = False

    @property
    def pairs(self) -> int:
        return self.accounts * self.regions

    @property
    def total(self) -> int:
        return self.pairs * self.instances


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def synthesize_organization(shape: Shape) -> tuple[Template, dict[str, Any]]:
    """The central stack's template and the member template for ``shape``'s regions and wait."""
    regions = REGIONS[: shape.regions]
    context: dict[str, Any] = {
        "organizationalUnitIds": UNIT,
        "memberRegions": ",".join(regions),
        "organizationId": ORGANIZATION_ID,
    }
    if shape.wait_seconds is not None:
        context["waitSeconds"] = shape.wait_seconds
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
        central = synthesize(context, outdir=outdir)["EcrFleetAuth"]
        member = json.loads(
            (Path(outdir) / "EcrFleetAuth.members" / f"{MEMBER_STACK_ID}.template.json").read_text()
        )
    return central, member


def measure(shape: Shape) -> None:
    regions = REGIONS[: shape.regions]
    central, member = synthesize_organization(shape)
    home_document, member_document = document_content(central), document_content(member)
    environment = runner_environment(central)
    accounts = [f"{FIRST_ACCOUNT + index:012d}" for index in range(shape.accounts)]
    home = accounts[0]
    print(
        f"shape: {shape.accounts} accounts x {shape.regions} regions x {shape.instances} instances = "
        f"{shape.pairs} pairs, {shape.total:,} instances; {AGENT_RUNS}; MaxConcurrency "
        f"{environment['MAX_CONCURRENCY']}, WAIT_SECONDS {environment['WAIT_SECONDS']}, REGISTRIES "
        f"{environment['REGISTRIES']!r} (each pair's own)"
    )
    with pytest.MonkeyPatch.context() as patch:
        use_environment(patch, environment)
        with notifications_topic(HOME_REGION):
            _run(shape, regions, accounts, home, home_document, member_document, environment, patch)


def _run(  # noqa: PLR0917 - one benchmark, printed top to bottom
    shape: Shape,
    regions: tuple[str, ...],
    accounts: list[str],
    home: str,
    home_document: dict[str, Any],
    member_document: dict[str, Any],
    environment: dict[str, str],
    patch: pytest.MonkeyPatch,
) -> None:
    began_setup = time.perf_counter()
    org = SimulatedOrganization(
        SimulatedClock(),
        stack_set_name=environment["STACK_SET_NAME"],
        home_account=home,
        home_region=HOME_REGION,
    )
    try:
        org.home.register_document(DOCUMENT, home_document)
        populate(
            org,
            [(account, region) for account in accounts for region in regions],
            document=(environment["MEMBER_DOCUMENT_NAME"], member_document),
            instances=shape.instances,
            tags=fleet_tags(environment),
            agent=agent_run,
        )
        setup_wall = time.perf_counter() - began_setup
        rss_before = _max_rss_mib()
        runner = InProcessRunner(org.home, patch, region=HOME_REGION, session=org.session())
        if shape.trace_memory:
            tracemalloc.start()
        started = org.clock.monotonic()
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics and the run's log
            report = runner.invoke({"source": "schedule"}, LAMBDA_TIMEOUT_SECONDS)
        wall = time.perf_counter() - began
        simulated = org.clock.monotonic() - started
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if shape.trace_memory else None
        if shape.trace_memory:
            tracemalloc.stop()
        rss_after = _max_rss_mib()
        _print(shape, org, report, simulated, wall, setup_wall, rss_before, rss_after, traced)
    finally:
        org.close()


def _print(  # noqa: PLR0917 - the figures of one run
    shape: Shape,
    org: SimulatedOrganization,
    report: dict[str, Any],
    simulated: float,
    wall: float,
    setup_wall: float,
    rss_before: float,
    rss_after: float,
    traced: float | None,
) -> None:
    per_pair = {key: pair_calls(pair) for key, pair in org.pairs.items()}
    calls = sorted(run for run, _ in per_pair.values())
    compliance = sorted(writes for _, writes in per_pair.values())
    summary = report["summary"]
    limit = budget(shape.instances)
    members = {
        account for account, region in org.pairs if (account, region) != (org.home_account, org.home_region)
    }
    print()
    unreached = print_outcome(LABEL_WIDTH, summary, report.get("targets", []), shape.pairs)
    from ecr_fleet_auth.run.runner import MAX_CONCURRENT_PAIRS  # noqa: PLC0415 - after the bench's environment

    print(
        f"  simulated run time : {simulated:,.0f} s of Lambda's {LAMBDA_TIMEOUT_SECONDS} s "
        f"({simulated / LAMBDA_TIMEOUT_SECONDS:.0%}); pairs {MAX_CONCURRENT_PAIRS} at once, "
        f"{math.ceil(shape.pairs / MAX_CONCURRENT_PAIRS)} waves"
    )
    print_calls(LABEL_WIDTH, shape.instances, calls, compliance)
    print(f"  STS                : {dict(org.sts_endpoint.calls)}")
    print(f"  CloudFormation     : {dict(org.cloudformation_endpoint.calls)}")
    memory = f"  peak memory        : ru_maxrss {rss_before:,.0f} MiB before the run (simulator set up), "
    memory += f"{rss_after:,.0f} MiB after (whole process, simulator included)"
    if traced is not None:
        memory += (
            f"; tracemalloc peak during the run {traced:,.0f} MiB (Python allocations, simulator included)"
        )
    print(memory)
    report_mib = len(json.dumps(report)) / 2**20
    print(f"  report             : {report_mib:,.1f} MiB as JSON ({summary['total']:,} instances)")
    print(
        f"  wall time          : {wall:,.1f} s for the invocation ({setup_wall:,.1f} s to set up the fleet)"
    )
    print()
    verdicts = [
        (
            f"one invocation: finished before Lambda's {LAMBDA_TIMEOUT_SECONDS} s",
            simulated < LAMBDA_TIMEOUT_SECONDS,
        ),
        (
            "every instance succeeded, every pair reached",
            summary["succeeded"] == shape.total and not unreached,
        ),
        (f"API calls per pair <= {limit} (compliance writes apart)", calls[-1] <= limit),
        (
            f"compliance writes per pair <= its instances ({shape.instances})",
            compliance[-1] <= shape.instances,
        ),
        (
            f"one AssumeRole per account with a member pair ({len(members)})",
            org.sts_endpoint.calls["AssumeRole"] == len(members),
        ),
    ]
    for name, met in verdicts:
        print(f"  [{'met' if met else 'MISSED'}] {name}")


def parse(argv: list[str]) -> Shape:
    parser = argparse.ArgumentParser(
        prog="python -m bench.organization_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--accounts", type=int, default=None, help="accounts (default 50; 500 with --state-machine)"
    )
    parser.add_argument(
        "--regions",
        type=int,
        default=4,
        choices=range(1, len(REGIONS) + 1),
        metavar="1-10",
        help="regions per account (default 4)",
    )
    parser.add_argument("--instances", type=int, default=200, help="tagged instances per pair (default 200)")
    parser.add_argument(
        "--wait-seconds", type=int, default=None, help="the waitSeconds context (default cdk.json's)"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument(
        "--state-machine",
        action="store_true",
        help="run through the stack's state machine (moto's interpreter, a child per batch; issue 23)",
    )
    args = parser.parse_args(argv)
    accounts = args.accounts or (500 if args.state_machine else 50)
    return Shape(
        accounts, args.regions, args.instances, args.wait_seconds, args.tracemalloc, args.state_machine
    )


def main(argv: list[str] | None = None) -> None:
    """``make bench BENCH=organization`` calls this with no arguments: the 50 x 4 x 200 shape."""
    shape = parse(argv or [])
    if shape.state_machine:
        from .organization_state_machine_bench import measure as through_the_state_machine  # noqa: PLC0415

        print(
            "ecr-fleet-auth organization benchmark, state-machine mode (the synthesized state machine on "
            "moto's interpreter, the real handler, simulated organization and clock)"
        )
        through_the_state_machine(shape)
        return
    print("ecr-fleet-auth organization benchmark (simulated organization, in-process, simulated clock)")
    measure(shape)


if __name__ == "__main__":
    main(sys.argv[1:])
