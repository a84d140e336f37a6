"""Organization benchmark, state-machine mode (issue 23): a run beyond one invocation, on Step Functions.

The stack synthesized with organization context gives the state machine; moto 5.2's Amazon States
Language interpreter runs its definition as synthesized (``localfleet.harnesses.in_process_state_machine``):
the plan, the Distributed Map reading its items from S3 (``MaxConcurrency`` as the template says),
each child's Lambda task and Catch, the merge. Every Lambda task reaches the real handler with the
environment the template gives it. The children take turns in real time and run on simulated time
(``SimulatedTimeline``): each child's invocation gets a world of its own on a clock starting when its
Map slot frees — the (account, region) pairs of its batch only, each with its instances (agent runs of
5-15 s, ``maxConcurrency`` 10%), built before the invocation and dropped after it, so that two million
instances never live in memory at once. The plan's world is the StackSet's stack instances (every
pair; ListStackInstances is all the plan reads), the merge's an empty one (it reads the bucket).
A child's clock does not hand the turn over when a request looks at the state
(``SimulatedClock(settle_hands_over=False)``): its threads interleave at their sleeps only, with the
same simulated times and a thread switch fewer per request (each of its 40,000 compliance writes at
200 pairs of 200 instances). Each child's patches are undone when its world is dropped, so no world
outlives its child. Progress (each child's simulated and wall time, ``ru_maxrss``) goes to stderr.

Printed: the execution's total simulated time against one invocation's (the slowest child: one
invocation of the runner on one child's load, at most ``pairs_per_child`` pairs — what one
invocation runs before the ceiling), API calls per pair (EC2 + SSM, max and median over every pair,
against the budget 3*ceil(N/50)+10), children, state transitions (every ``*StateEntered``, the
children's included: what Step Functions bills, plus one per child execution started), the largest
state payload the interpreter checked against 256 KiB, the peak of Python allocations during one
child's invocation (``ru_maxrss`` after the first and the last child, an upper bound: the whole
process; ``--tracemalloc`` adds the first child's Python allocations, slower: both measured on a
sample, the children this run had), Lambda invocations and S3 requests (the runner's and the Map's
ItemReader's, for the cost per run), wall time.

    make bench BENCH="organization --state-machine"                      # 500 accounts x 4 regions x 200
    make bench BENCH="organization --state-machine --accounts 2500"      # 10,000 pairs, 2,000,000 instances
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import resource
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS
from localfleet.clocks import SimulatedClock
from localfleet.cloudformation.models import StackInstance
from localfleet.composition.simulated_organization import SimulatedOrganization
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.harnesses.in_process_state_machine import InProcessStateMachine
from localfleet.harnesses.organization_fleet import populate
from localfleet.lambda_runtime.models.in_process import ACCOUNT
from localfleet.runner_environment import use_environment
from localfleet.stepfunctions import MOTO_CONFIG
from localfleet.synthesized_stack import document_content

from .fleet import AGENT_RUNS, agent_run, budget, notifications_topic, pair_calls, print_calls, print_outcome
from .organization_bench import (
    DOCUMENT,
    FIRST_ACCOUNT,
    HOME_REGION,
    REGIONS,
    UNIT,
    Shape,
    fleet_tags,
    runner_environment,
    synthesize_organization,
)

START = 1000.0
# Step Functions' quota on a state's input or output (Developer Guide, "Step Functions service quotas").
STATE_PAYLOAD_LIMIT = 256 * 1024
LABEL_WIDTH = 20  # the printed figures' names, padded


@dataclass
class Worlds:
    """The world each invocation runs on, built when it starts and dropped when the next one starts."""

    shape: Shape
    regions: tuple[str, ...]
    accounts: list[str]
    environment: dict[str, str]
    home_document: dict[str, Any]
    member_document: dict[str, Any]
    patch: pytest.MonkeyPatch
    s3: Any = None
    bucket: str = ""
    calls_per_pair: list[int] = field(default_factory=list)  # without compliance writes
    compliance_per_pair: list[int] = field(default_factory=list)
    sts_calls: Counter[str] = field(default_factory=Counter)
    cloudformation_calls: Counter[str] = field(default_factory=Counter)
    # S3 requests by operation: the runner's (every invocation's session) and the interpreter's (its
    # ItemReader, on boto3's default session); the benchmark's own reads are on a session of their own.
    s3_requests: Counter[str] = field(default_factory=Counter)
    build_wall: float = 0.0
    child_traced_mib: float | None = None
    child_rss_mib: list[float] = field(default_factory=list)  # the process's ru_maxrss after each child
    child_wall: list[float] = field(default_factory=list)  # each child's wall time, its world built
    _began: float = 0.0
    _current: SimulatedOrganization | None = None
    _kind: str = ""
    # The current invocation's patches (its runner's clock and clients), undone when it is dropped: on
    # the bench's own patch, each would keep the one before it (its saved value) and so every world.
    _patch: pytest.MonkeyPatch | None = None

    def __call__(self, event: Any, at: float) -> InProcessRunner:
        self.drop()
        began = self._began = time.perf_counter()
        step = event.get(contract.STEP_FIELD)
        org = SimulatedOrganization(
            SimulatedClock(start=at, settle_hands_over=False),
            stack_set_name=self.environment["STACK_SET_NAME"],
            home_account=ACCOUNT,
            home_region=HOME_REGION,
        )
        org.home.register_document(DOCUMENT, self.home_document)
        if step == "plan":
            for account in self.accounts:
                for region in self.regions:
                    if (account, region) != (ACCOUNT, HOME_REGION):
                        org.stack_set.put(StackInstance(account, region, organizational_unit_id=UNIT))
        elif step == "child":
            populate(
                org,
                self._batch(int(event["batch"])),
                document=(self.environment["MEMBER_DOCUMENT_NAME"], self.member_document),
                instances=self.shape.instances,
                tags=fleet_tags(self.environment),
                agent=agent_run,
            )
        self._current, self._kind = org, step
        self.build_wall += time.perf_counter() - began
        if step == "child" and self.shape.trace_memory and self.child_traced_mib is None:
            tracemalloc.start()
        self._patch = pytest.MonkeyPatch()
        session = org.session()
        session.events.register("before-call.s3", self.count_s3)
        return InProcessRunner(org.home, self._patch, region=HOME_REGION, session=session)

    def count_s3(self, model: Any, **_: Any) -> None:
        self.s3_requests[model.name] += 1

    def drop(self) -> None:
        org = self._current
        if org is None:
            return
        if self._kind == "child":
            self.child_rss_mib.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            self.child_wall.append(time.perf_counter() - self._began)
            print(  # progress on stderr (stdout holds the runs' logs until the end)
                f"  child {len(self.child_wall)}: "
                f"{org.clock.monotonic() - org.clock.start:,.0f} s simulated, "
                f"{self.child_wall[-1]:,.0f} s wall, ru_maxrss {self.child_rss_mib[-1]:,.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            if tracemalloc.is_tracing():
                self.child_traced_mib = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
            for (account, region), pair in org.pairs.items():
                calls, compliance = pair_calls(pair)
                if calls or (account, region) != (ACCOUNT, HOME_REGION):
                    self.calls_per_pair.append(calls)
                    self.compliance_per_pair.append(compliance)
        self.sts_calls.update(org.sts_endpoint.calls)
        self.cloudformation_calls.update(org.cloudformation_endpoint.calls)
        org.close()
        if self._patch is not None:
            self._patch.undo()
            self._patch = None
        self._current = None

    def _batch(self, index: int) -> list[tuple[str, str]]:
        """The batch's pairs, as the plan wrote them to the runs bucket."""
        suffix = f"/batches/{index:05d}.json"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="runs/")
        (key,) = [o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
        kept = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return [(target["account_id"], target["region"]) for target in kept]


def measure(shape: Shape) -> None:
    regions = REGIONS[: shape.regions]
    central, member = synthesize_organization(shape)
    environment = runner_environment(central)
    # The home account first (the function's own: the state machine's executions are its).
    accounts = [ACCOUNT] + [f"{FIRST_ACCOUNT + index:012d}" for index in range(shape.accounts - 1)]
    with pytest.MonkeyPatch.context() as patch:
        use_environment(patch, environment)
        # The runner's modules read the environment when imported (its Logger): import them now.
        from ecr_fleet_auth.run.fan_out import pairs_per_child  # noqa: PLC0415

        per_child = pairs_per_child(int(environment["WAIT_SECONDS"]))
        print(
            f"shape: {shape.accounts} accounts x {shape.regions} regions x {shape.instances} instances = "
            f"{shape.pairs:,} pairs, {shape.total:,} instances; {AGENT_RUNS}; MaxConcurrency "
            f"{environment['MAX_CONCURRENCY']}, WAIT_SECONDS {environment['WAIT_SECONDS']} "
            f"(at most {per_child} pairs a child)"
        )
        with notifications_topic(HOME_REGION, moto_config=MOTO_CONFIG):
            worlds = Worlds(
                shape,
                regions,
                accounts,
                environment,
                document_content(central),
                document_content(member),
                patch,
            )
            machine = InProcessStateMachine(central, patch, worlds=worlds, start=START, region=HOME_REGION)
            assert boto3.DEFAULT_SESSION is not None  # mock_aws made it; the interpreter's clients use it
            boto3.DEFAULT_SESSION.events.register("before-call.s3", worlds.count_s3)
            worlds.s3, worlds.bucket = machine.s3, machine.bucket
            try:
                began = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics and the runs' logs
                    described = machine.run({"source": "schedule"}, name="bench-1", timeout=24 * 3600)
                wall = time.perf_counter() - began
                worlds.drop()
            finally:
                machine.close()
            if described["status"] != "SUCCEEDED":
                print(f"  execution {described['status']}: {described.get('error')} {described.get('cause')}")
                return
            _print(shape, machine, machine.report(described), worlds, per_child, wall)


def _print(  # noqa: PLR0917 - the figures of one run
    shape: Shape,
    machine: InProcessStateMachine,
    report: dict[str, Any],
    worlds: Worlds,
    per_child: int,
    wall: float,
) -> None:
    timeline, figures = machine.timeline, machine.figures
    one = max(timeline.child_seconds) if timeline.child_seconds else 0.0
    total = timeline.elapsed
    calls = sorted(worlds.calls_per_pair) or [0]
    compliance = sorted(worlds.compliance_per_pair) or [0]
    summary = report["summary"]
    limit = budget(shape.instances)
    child_transitions = figures.transitions + timeline.children  # AWS bills each child execution started
    print()
    unreached = print_outcome(LABEL_WIDTH, summary, report.get("targets", []), shape.pairs)
    print(
        f"  total simulated time: {total:,.0f} s; one invocation (the slowest child) {one:,.0f} s: "
        f"{total / one if one else 0:.2f}x"
    )
    print(
        f"  children            : {timeline.children} (MaxConcurrency {_max_concurrency(machine)}); "
        f"child durations median {statistics.median(timeline.child_seconds or [0]):,.0f} s"
    )
    print_calls(LABEL_WIDTH, shape.instances, calls, compliance)
    print(f"  STS, CloudFormation : {dict(worlds.sts_calls)}, {dict(worlds.cloudformation_calls)}")
    print(
        f"  Lambda, S3 requests : {len(machine.lambda_tasks.invocations)} invocations; S3 "
        f"{dict(sorted(worlds.s3_requests.items()))} (the runner's and the Map's ItemReader)"
    )
    print(
        f"  state transitions   : {figures.transitions:,} states entered "
        f"({', '.join(f'{name} {count}' for name, count in sorted(figures.entered.items()))}); "
        f"billed {child_transitions:,} with one per child execution started"
    )
    print(
        f"  largest state       : {figures.largest_payload:,} B of {STATE_PAYLOAD_LIMIT:,} B "
        f"({figures.largest_payload / STATE_PAYLOAD_LIMIT:.1%})"
    )
    traced, rss = worlds.child_traced_mib, worlds.child_rss_mib or [0.0]
    memory = f"  one child's memory  : ru_maxrss {rss[0]:,.0f} MiB after the first child, {rss[-1]:,.0f} MiB "
    memory += "after the last (whole process: the interpreter, moto and one child's simulator included)"
    if traced is not None:
        memory += f"; tracemalloc peak {traced:,.0f} MiB during the first child (Python allocations)"
    print(memory)
    part = machine.s3.head_object(Bucket=machine.bucket, Key=report["parts"][0]) if report["parts"] else {}
    print(
        f"  wall time           : {wall:,.0f} s ({worlds.build_wall:,.0f} s of it building the children's "
        f"worlds); a child's report in S3 {part.get('ContentLength', 0) / 1024:,.0f} KiB gzipped"
    )
    print()
    verdicts = [
        (f"total simulated time <= 1.2x one invocation's ({1.2 * one:,.0f} s)", total <= 1.2 * one),
        (f"every child within Lambda's {LAMBDA_TIMEOUT_SECONDS} s", one < LAMBDA_TIMEOUT_SECONDS),
        (
            "every instance succeeded, every pair reached",
            summary["succeeded"] == shape.total and not unreached,
        ),
        (f"API calls per pair <= {limit} (compliance writes apart)", calls[-1] <= limit),
        (
            f"compliance writes per pair <= its instances ({shape.instances})",
            compliance[-1] <= shape.instances,
        ),
        ("largest state payload <= 256 KiB", figures.largest_payload <= STATE_PAYLOAD_LIMIT),
        (
            f"children = ceil(pairs / {per_child}) ({math.ceil(shape.pairs / per_child)})",
            timeline.children == math.ceil(shape.pairs / per_child),
        ),
    ]
    for name, met in verdicts:
        print(f"  [{'met' if met else 'MISSED'}] {name}")


def _max_concurrency(machine: InProcessStateMachine) -> int:
    definition = json.loads(
        machine.machines.client.describe_state_machine(stateMachineArn=machine.arn)["definition"]
    )
    return int(definition["States"]["Children"]["MaxConcurrency"])
