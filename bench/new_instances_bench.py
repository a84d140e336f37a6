"""New-instance benchmark (issues 13, 18): a burst of launches covered through the event path, simulated time.

500 tagged instances are launched within one minute (uniformly random moments); each one's
SSM agent registers (``Online``) after a uniformly random 30-180 s; its agent run then takes
2-6 s. Besides them, a few tagged instances never register (``--never-online``, default 5).
Everything is seeded, so every run is the same. EC2 sends each launch's ``running`` event to
EventBridge; the stack's rules, queue and event source mapping
(``localfleet.composition.NewInstanceDelivery``, configured from the synthesized template: batch
size, batching window, maximum concurrency, visibility timeout, and the function's
``RecursiveLoop``: Lambda's recursive loop detection is modelled, ``lambda_runtime.models.recursion``)
hand the real handler its batches, which it runs against the simulated EC2 and Run Command with
the environment the template gives it, putting back the events of instances not online yet to the
same queue. Concurrent invocations overlap in simulated time (``SimulatedClock.run_concurrently``).

The same burst is then launched in a member account of an organization (``--no-member`` skips
it): the stack synthesized with organization context, each launch's event forwarded by the member
template's rule to the central stack's bus (its policy applied), run in the member account through
the member role.

Printed: time from ``Online`` to the end of the instance's first successful agent run
(median, 90th percentile, max), SendCommand calls, Lambda invocations, whether any instance
was commanded twice; for the never-online instances, when each was reported
``not_online_in_time`` (seconds after its event) and how often; the longest chain of invocations
and how many Lambda's recursion guard stopped; wall time. Goals: max under 2 minutes from
``Online``; at most ceil(500/50) + 10 SendCommand calls; each never-online instance reported once,
at its readiness bound.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from bench.fleet import notifications_topic
from localfleet.clocks import SimulatedClock
from localfleet.composition import NewInstanceDelivery
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.composition.simulated_organization import SimulatedOrganization
from localfleet.harnesses.in_process_runner import InProcessRunner, capture_reports
from localfleet.harnesses.in_process_state_machine import RUNS_BUCKET
from localfleet.hosts.canned_agent import CannedRun
from localfleet.identity import ACCOUNT, REGION
from localfleet.runner_environment import (
    ACCOUNT_SERVICES,
    CREDENTIALS,
    ORGANIZATION_SERVICES,
    deploy_time,
    local_runner_environment,
    use_environment,
)
from localfleet.synthesized_stack import (
    Template,
    document_content,
    member_template,
    resolved_runner_environment,
    runner_function,
    synthesize,
)

INSTANCES = 500
LAUNCH_SPREAD_SECONDS = 60
ONLINE_AFTER_SECONDS = (30, 180)
AGENT_SECONDS = (2, 6)
SEED = 13
GOAL_SECONDS = 120
NEVER_ONLINE = 5
MEMBER_ACCOUNT = "111111111111"
ORGANIZATION_CONTEXT = {"organizationalUnitIds": "ou-ab12-cdef3456", "organizationId": "o-a1b2c3d4e5"}
DEPLOY_TIME = deploy_time(ACCOUNT, REGION, RUNS_BUCKET)
DOCUMENT = DEPLOY_TIME["DOCUMENT_NAME"]
OVERRIDES = {"POWERTOOLS_LOG_LEVEL": "WARNING"}  # over the template's settings: quieter logs


@dataclass
class Burst:
    latencies: list[float]  # seconds from Online to the end of the first successful agent run
    uncovered: int
    send_commands: int
    invocations: int
    commanded_twice: int
    api_calls: int
    simulated_seconds: float
    wall_seconds: float
    # Each never-online instance: seconds after its event when it was reported not_online_in_time,
    # once per report that did (empty: never reported).
    never_online_reports: list[list[float]]
    longest_chain: int  # the most invocations of one chain (Lambda's recursion detection counts them)
    recursion_stopped: int  # invocations Lambda's recursion guard stopped (RecursiveInvocationsDropped)
    dead_letters: int
    readiness_seconds: int


@dataclass
class World:
    """Where the burst is launched and the runner invoked: an account, or a member of an organization."""

    launch_in: SimulatedAccount
    delivery: NewInstanceDelivery
    close: Any
    api_calls: Any  # () -> the runner's AWS calls so far


def run_burst(  # noqa: PLR0917 - the burst's shape
    template: Template,
    seed: int = SEED,
    instances: int = INSTANCES,
    spread_seconds: float = LAUNCH_SPREAD_SECONDS,
    never_online: int = NEVER_ONLINE,
    member: Template | None = None,
) -> Burst:
    """``member``: the organization's member template (``template`` is then the central one): the burst
    is launched in a member account and reaches the runner through the central stack's bus."""
    clock = SimulatedClock()
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not a secret
    tags = {"Name": "asg-node", **_target_tag(template)}
    online_at: dict[str, float] = {}
    event_at: dict[str, float] = {}
    start = clock.monotonic()
    environment = local_runner_environment(
        template, DEPLOY_TIME, region=REGION, services=_services(member), overrides=OVERRIDES
    )
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as stack:
        use_environment(patch, environment)
        stack.enter_context(notifications_topic(REGION))  # moto on for the burst: SNS, and STS's gate
        world = (
            _member_world(template, member, clock, patch, stack)
            if member
            else _home_world(template, clock, patch)
        )
        account = world.launch_in
        reports = capture_reports(patch)

        def launch(online_after: float | None, agent_seconds: float) -> None:
            (instance_id,) = account.launch(tags=tags, managed=False)  # its running event goes to the bus
            event_at[instance_id] = clock.monotonic()
            if online_after is None:
                return  # its SSM agent never registers

            def register() -> None:
                online_at[instance_id] = clock.monotonic()
                account.register_agent(instance_id, agent=CannedRun(duration=agent_seconds))

            clock.call_at(clock.monotonic() + online_after, register)

        for number in range(instances + never_online):
            at = start + rng.uniform(0, spread_seconds)
            online_after, agent_seconds = rng.uniform(*ONLINE_AFTER_SECONDS), rng.uniform(*AGENT_SECONDS)
            if number >= instances:
                online_after = None
            clock.call_at(at, lambda o=online_after, a=agent_seconds: launch(o, a))

        delivery = world.delivery
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's logs and EMF metrics
            clock.sleep(spread_seconds)  # every launch has happened
            delivery.run_until_idle(most_seconds=12 * 3600)
        wall = time.perf_counter() - began
        burst = _burst(world, reports, online_at, event_at, instances, clock.monotonic() - start, wall)
        burst.readiness_seconds = int(environment["NEW_INSTANCE_READINESS_SECONDS"])
        world.close()
    return burst


def _burst(  # noqa: PLR0917 - what one burst left behind
    world: World,
    reports: list[Any],
    online_at: dict[str, float],
    event_at: dict[str, float],
    instances: int,
    simulated: float,
    wall: float,
) -> Burst:
    account, delivery = world.launch_in, world.delivery
    latencies, uncovered, twice = [], 0, 0
    for instance_id, agent in account.agents.items():
        runs = [end for _, end in agent.runs]
        if not runs:
            uncovered += 1
            continue
        latencies.append(runs[0] - online_at[instance_id])
        twice += len(agent.runs) + agent.locked_runs > 1
    never = [i for i in event_at if i not in online_at]
    reported = {
        i: [
            float(result.detail["waited_seconds"])
            for report in reports
            for result in report.instances
            if result.instance_id == i and str(result.reason) == "not_online_in_time"
        ]
        for i in never
    }
    return Burst(
        latencies=latencies,
        uncovered=uncovered + instances - len(account.agents),
        send_commands=account.ssm_endpoint.calls["SendCommand"],
        invocations=len(delivery.invocations),
        commanded_twice=twice,
        api_calls=world.api_calls(),
        simulated_seconds=simulated,
        wall_seconds=wall,
        never_online_reports=[reported[i] for i in never],
        longest_chain=max((i.lineage for i in delivery.invocations), default=0),
        recursion_stopped=delivery.mapping.recursive_invocations_dropped,
        dead_letters=delivery.dead_letters(),
        readiness_seconds=0,
    )


def _home_world(template: Template, clock: SimulatedClock, patch: pytest.MonkeyPatch) -> World:
    account = SimulatedAccount(clock)
    account.register_document(DOCUMENT, document_content(template))
    runner = InProcessRunner(account, patch, region=REGION)
    account.create_tables(template, DEPLOY_TIME["CLAIM_TABLE_NAME"])  # moto's, in this process
    delivery = NewInstanceDelivery.from_template(template, clock, account.sqs, runner.invoke)
    account.event_bus.append(delivery.put)
    return World(account, delivery, account.close, lambda: sum(account.api_calls.values()))


def _member_world(
    central: Template,
    member: Template,
    clock: SimulatedClock,
    patch: pytest.MonkeyPatch,
    stack: contextlib.ExitStack,
) -> World:
    """The organization: the central stack in the home pair, a member account whose stack (the member
    template) forwards its instances' events to the central bus; STS is moto's behind the simulator's
    gate (``mock_aws``, on for the burst)."""
    environment = resolved_runner_environment(central, DEPLOY_TIME)
    org = SimulatedOrganization(clock, stack_set_name=environment["STACK_SET_NAME"])
    org.home.register_document(DOCUMENT, document_content(central))
    member_pair = org.deploy_member(
        MEMBER_ACCOUNT,
        REGION,
        document=(environment["MEMBER_DOCUMENT_NAME"], document_content(member)),
    )
    runner = InProcessRunner(org.home, patch, region=REGION, session=org.session())
    org.home.create_tables(central, DEPLOY_TIME["CLAIM_TABLE_NAME"])
    delivery = NewInstanceDelivery.from_template(central, clock, org.home.sqs, runner.invoke)
    org.home.event_bus.append(delivery.put)
    org.forward_new_instances(member, delivery)
    endpoints = [
        member_pair.ec2_endpoint,
        member_pair.ssm_endpoint,
        org.home.sqs_endpoint,
        org.home.dynamodb_endpoint,
        org.sts_endpoint,
        org.cloudformation_endpoint,
    ]
    return World(member_pair, delivery, org.close, lambda: sum(sum(e.calls.values()) for e in endpoints))


def _services(member: Template | None) -> tuple[str, ...]:
    """The services the simulator answers on loopback, as in the tests' worlds (the others: in this
    process, SNS moto's)."""
    return ORGANIZATION_SERVICES if member else ACCOUNT_SERVICES


def _target_tag(template: Template) -> dict[str, str]:
    environment: dict[str, Any] = resolved_runner_environment(template, DEPLOY_TIME)
    return {environment["TARGET_TAG_KEY"]: environment["TARGET_TAG_VALUES"].split(",")[0]}


def send_command_budget(instances: int = INSTANCES) -> int:
    return math.ceil(instances / 50) + 10


def describe(burst: Burst, instances: int = INSTANCES) -> str:
    latencies = sorted(burst.latencies)
    p90 = latencies[int(0.9 * (len(latencies) - 1))] if latencies else float("nan")
    return (
        f"  Online -> agent run done: median {statistics.median(latencies):.0f} s, p90 {p90:.0f} s, "
        f"max {max(latencies):.0f} s ({len(latencies)} covered, {burst.uncovered} not)\n"
        f"  SendCommand calls {burst.send_commands} (budget {send_command_budget(instances)}), "
        f"Lambda invocations {burst.invocations}, API calls {burst.api_calls}, "
        f"instances commanded twice {burst.commanded_twice}\n"
        f"  {describe_never_online(burst)}\n"
        f"  simulated {burst.simulated_seconds:.0f} s, wall {burst.wall_seconds:.1f} s"
    )


def describe_never_online(burst: Burst) -> str:
    reported = [times for times in burst.never_online_reports if times]
    at = [time for times in reported for time in times]
    when = f"at {min(at):.0f}-{max(at):.0f} s after their event" if at else "never"
    return (
        f"never Online ({len(burst.never_online_reports)}): reported not_online_in_time "
        f"{[len(times) for times in burst.never_online_reports]} times each, {when} "
        f"(bound {burst.readiness_seconds} s); longest chain {burst.longest_chain} invocations, "
        f"stopped by Lambda's recursion guard {burst.recursion_stopped}, dead letters {burst.dead_letters}"
    )


def reported_once_at_the_bound(burst: Burst) -> bool:
    """Each never-online instance reported exactly once, no earlier than its bound and at most two looks
    (put-back delay plus batching window, and a run's wait for a batch slot) later."""
    return all(
        len(times) == 1 and burst.readiness_seconds <= times[0] <= burst.readiness_seconds + 120
        for times in burst.never_online_reports
    )


def verdicts(burst: Burst, instances: int = INSTANCES) -> list[tuple[str, bool]]:
    return [
        ("every instance covered, none twice", burst.uncovered == 0 and burst.commanded_twice == 0),
        (
            f"max under {GOAL_SECONDS} s from Online",
            bool(burst.latencies) and max(burst.latencies) < GOAL_SECONDS,
        ),
        (
            f"SendCommand calls <= ceil({instances}/50)+10",
            burst.send_commands <= send_command_budget(instances),
        ),
        ("each never-online instance reported once, at its bound", reported_once_at_the_bound(burst)),
    ]


# The same burst at the fleet's rate: what runs of instance events did before newInstanceMaxConcurrency.
AT_FLEET_RATE = {"newInstanceMaxConcurrency": ""}


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench new_instances",
        description="A burst of tagged launches covered through the event path, in simulated time "
        '(make bench BENCH="new_instances --seed 2 --instances 2000").',
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed of the burst (default {SEED})")
    parser.add_argument(
        "--seeds",
        type=_seed_range,
        metavar="FIRST-LAST",
        help="run every seed from FIRST to LAST (e.g. 1-20) and print the range (min-max over the seeds)",
    )
    parser.add_argument(
        "--instances", type=_positive, default=INSTANCES, help=f"instances launched (default {INSTANCES})"
    )
    parser.add_argument(
        "--spread",
        type=_positive,
        default=LAUNCH_SPREAD_SECONDS,
        metavar="SECONDS",
        help=f"the launches happen within this many seconds (default {LAUNCH_SPREAD_SECONDS})",
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the measured stack, as cdk's -c takes it "
        "(e.g. -c newInstanceMaxConcurrency=100%%)",
    )
    parser.add_argument(
        "--no-comparison",
        dest="comparison",
        action="store_false",
        help="skip the second measurement, with newInstanceMaxConcurrency empty",
    )
    parser.add_argument(
        "--never-online",
        type=_whole,
        default=NEVER_ONLINE,
        metavar="N",
        help=f"tagged instances launched too whose SSM agent never registers (default {NEVER_ONLINE})",
    )
    parser.add_argument(
        "--no-member",
        dest="member",
        action="store_false",
        help="skip the same burst in a member account of an organization",
    )
    parser.add_argument(
        "--recursive-loop",
        choices=("Allow", "Terminate"),
        help="what the function tells Lambda's recursive loop detection (default: the template's; "
        "Terminate shows what Lambda's default guard does to the put-back chains)",
    )
    return parser.parse_args(argv)


def _whole(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number")
    return int(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of 1 or more")
    return value


def _seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    try:
        seeds = range(int(first), int(last or first) + 1)
    except ValueError:
        seeds = range(0)
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIRST-LAST, e.g. 1-20")
    return seeds


def _measure(template: Template, options: argparse.Namespace, member: Template | None = None) -> list[Burst]:
    """One seed: its full description; several: a line each and the range over them."""
    template = _with_recursive_loop(template, options.recursive_loop)
    if options.seeds is None:
        burst = run_burst(
            template, options.seed, options.instances, options.spread, options.never_online, member
        )
        print(describe(burst, options.instances))
        return [burst]
    bursts = []
    for seed in options.seeds:
        burst = run_burst(template, seed, options.instances, options.spread, options.never_online, member)
        bursts.append(burst)
        print(
            f"  seed {seed:>3}: median {statistics.median(burst.latencies or [math.nan]):.0f} s, "
            f"max {max(burst.latencies, default=math.nan):.0f} s, SendCommand {burst.send_commands}, "
            f"invocations {burst.invocations}, not covered {burst.uncovered}, "
            f"commanded twice {burst.commanded_twice}; {describe_never_online(burst)}",
            flush=True,
        )
    medians = [statistics.median(b.latencies or [math.nan]) for b in bursts]
    maxima = [max(b.latencies, default=math.nan) for b in bursts]
    sends = [b.send_commands for b in bursts]
    print(
        f"  seeds {options.seeds[0]}-{options.seeds[-1]}: median {min(medians):.0f}-{max(medians):.0f} s, "
        f"max {min(maxima):.0f}-{max(maxima):.0f} s, SendCommand {min(sends)}-{max(sends)} "
        f"(budget {send_command_budget(options.instances)}), "
        f"seeds with max >= {GOAL_SECONDS} s: {sum(m >= GOAL_SECONDS for m in maxima)}"
    )
    return bursts


def _with_recursive_loop(template: Template, recursive_loop: str | None) -> Template:
    """The template, its runner function saying ``recursive_loop`` to Lambda if given."""
    if recursive_loop is None:
        return template
    changed: Template = json.loads(json.dumps(template))
    runner_function(changed)["Properties"]["RecursiveLoop"] = recursive_loop
    return changed


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_arguments(argv)
    context = dict(item.partition("=")[::2] for item in options.context)
    os.environ.update({**CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION})
    seeds = (
        f"seed {options.seed}" if options.seeds is None else f"seeds {options.seeds[0]}-{options.seeds[-1]}"
    )
    print(
        f"ecr-fleet-auth new-instance benchmark: {options.instances} launches within {options.spread} s, "
        f"Online after {ONLINE_AFTER_SECONDS[0]}-{ONLINE_AFTER_SECONDS[1]} s, agent runs "
        f"{AGENT_SECONDS[0]}-{AGENT_SECONDS[1]} s, {seeds} (simulated time, the template's settings"
        + "".join(f", {key}={value!r}" for key, value in context.items())
        + ")"
    )
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
        (template,) = synthesize(context, outdir=outdir).values()
    mapping = NewInstanceDelivery.from_template(
        template, SimulatedClock(), SimulatedAccount(SimulatedClock()).sqs, lambda event, lineage: None
    ).settings
    environment = resolved_runner_environment(template, DEPLOY_TIME)
    recursive_loop = options.recursive_loop or runner_function(template)["Properties"].get("RecursiveLoop")
    print(
        f"event source mapping: batch {mapping.batch_size}, window {mapping.batching_window_seconds} s, "
        f"maximum concurrency {mapping.maximum_concurrency}; runs of instance events: "
        f"MaxConcurrency {environment['NEW_INSTANCE_MAX_CONCURRENCY']}, "
        f"MaxErrors {environment['MAX_ERRORS']}; "
        f"readiness {environment['NEW_INSTANCE_READINESS_SECONDS']} s; the function's RecursiveLoop "
        f"{recursive_loop or 'Terminate (absent)'}; {options.never_online} instances never Online"
    )
    bursts = _measure(template, options)
    if options.member:
        with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
            (central,) = synthesize({**context, **ORGANIZATION_CONTEXT}, outdir=outdir).values()
            member = member_template(outdir)
        print()
        print(
            f"the same burst in member account {MEMBER_ACCOUNT} (forwarded to the central bus, run through "
            "the member role):"
        )
        bursts += _measure(central, options, member)
    if options.comparison:
        with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
            (at_fleet_rate,) = synthesize({**context, **AT_FLEET_RATE}, outdir=outdir).values()
        fleet_rate = resolved_runner_environment(at_fleet_rate, DEPLOY_TIME)["MAX_CONCURRENCY"]
        print()
        print(
            "for comparison, newInstanceMaxConcurrency empty "
            f"(runs of instance events at maxConcurrency {fleet_rate}):"
        )
        _measure(at_fleet_rate, options)
    print()
    every = " for every seed" if options.seeds is not None else ""
    where = " (as deployed, and in a member account)" if options.member else " (as deployed)"
    results = [verdicts(burst, options.instances) for burst in bursts]
    for index, (name, _) in enumerate(results[0]):
        met = all(result[index][1] for result in results)
        print(f"  [{'met' if met else 'MISSED'}] {name}{where}{every}")
