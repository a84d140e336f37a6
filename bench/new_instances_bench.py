"""New-instance benchmark (issue 13): a burst of launches covered through the event path, simulated time.

500 tagged instances are launched within one minute (uniformly random moments); each one's
SSM agent registers (``Online``) after a uniformly random 30-180 s; its agent run then takes
2-6 s. Everything is seeded, so every run is the same. EC2 sends each launch's ``running``
event to EventBridge; the stack's rules, queue and event source mapping
(``localfleet.events.NewInstanceDelivery``, configured from the synthesized template: batch
size, batching window, maximum concurrency, visibility timeout) hand the real handler its
batches, which it runs against the simulated EC2 and Run Command with the environment the
template gives it, putting back the events of instances not online yet to the same queue.
Concurrent invocations overlap in simulated time (``SimulatedClock.run_concurrently``).

Printed: time from ``Online`` to the end of the instance's first successful agent run
(median, 90th percentile, max), SendCommand calls, Lambda invocations, whether any instance
was commanded twice, and wall time. Goals: max under 2 minutes from ``Online``; at most
ceil(500/50) + 10 SendCommand calls.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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

from localfleet.clocks import SimulatedClock
from localfleet.deployment.in_process_runner import InProcessRunner
from localfleet.deployment.simulated_account import ACCOUNT, REGION, SimulatedAccount
from localfleet.events import NewInstanceDelivery
from localfleet.hosts.canned_agent import CannedRun
from localfleet.synthesized_stack import Template, document_content, resolved_runner_environment, synthesize

INSTANCES = 500
LAUNCH_SPREAD_SECONDS = 60
ONLINE_AFTER_SECONDS = (30, 180)
AGENT_SECONDS = (2, 6)
SEED = 13
GOAL_SECONDS = 120
DOCUMENT = "EcrFleetAuth-Agent"
DEPLOY_TIME = {
    "DOCUMENT_NAME": DOCUMENT,
    "REGISTRIES": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
    "OUTPUT_LOG_GROUP": "/ecr-fleet-auth/run-command",
    "TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:ecr-fleet-auth",
    "CLAIM_TABLE_NAME": "EcrFleetAuth-NewInstanceClaims",
}
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    # Loopback only, and never dialled: the simulated account answers before anything is sent.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "NOTIFY_POLICY": "never",  # nothing to publish to here (no SNS); what is published is not measured
}


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


def run_burst(
    template: Template,
    seed: int = SEED,
    instances: int = INSTANCES,
    spread_seconds: float = LAUNCH_SPREAD_SECONDS,
) -> Burst:
    clock = SimulatedClock()
    account = SimulatedAccount(clock)
    account.register_document(DOCUMENT, document_content(template))
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not a secret
    tags = {"Name": "asg-node", **_target_tag(template)}
    online_at: dict[str, float] = {}
    start = clock.monotonic()

    def launch(online_after: float, agent_seconds: float) -> None:
        (instance_id,) = account.launch(tags=tags, managed=False)  # its running event goes to the bus

        def register() -> None:
            online_at[instance_id] = clock.monotonic()
            account.register_agent(instance_id, agent=CannedRun(duration=agent_seconds))

        clock.call_at(clock.monotonic() + online_after, register)

    for _ in range(instances):
        at = start + rng.uniform(0, spread_seconds)
        online_after, agent_seconds = rng.uniform(*ONLINE_AFTER_SECONDS), rng.uniform(*AGENT_SECONDS)
        clock.call_at(at, lambda o=online_after, a=agent_seconds: launch(o, a))

    environment = {**resolved_runner_environment(template, DEPLOY_TIME), **ENVIRONMENT}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        runner = InProcessRunner(account, patch, region=REGION)
        account.create_tables(template, DEPLOY_TIME["CLAIM_TABLE_NAME"])  # moto's, in this process
        delivery = NewInstanceDelivery.from_template(template, clock, account.sqs, runner.invoke)
        account.event_bus.append(delivery.put)
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's logs and EMF metrics
            clock.sleep(spread_seconds)  # every launch has happened
            delivery.run_until_idle()
        wall = time.perf_counter() - began
    latencies, uncovered, twice = [], 0, 0
    for instance_id, agent in account.agents.items():
        runs = [end for _, end in agent.runs]
        if not runs:
            uncovered += 1
            continue
        latencies.append(runs[0] - online_at[instance_id])
        twice += len(agent.runs) + agent.locked_runs > 1
    account.close()
    return Burst(
        latencies=latencies,
        uncovered=uncovered + instances - len(account.agents),
        send_commands=account.ssm_endpoint.calls["SendCommand"],
        invocations=len(delivery.invocations),
        commanded_twice=twice,
        api_calls=sum(account.api_calls.values()),
        simulated_seconds=clock.monotonic() - start,
        wall_seconds=wall,
    )


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
        f"  simulated {burst.simulated_seconds:.0f} s, wall {burst.wall_seconds:.1f} s"
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
    return parser.parse_args(argv)


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


def _measure(template: Template, options: argparse.Namespace) -> list[Burst]:
    """One seed: its full description; several: a line each and the range over them."""
    if options.seeds is None:
        burst = run_burst(template, options.seed, options.instances, options.spread)
        print(describe(burst, options.instances))
        return [burst]
    bursts = []
    for seed in options.seeds:
        burst = run_burst(template, seed, options.instances, options.spread)
        bursts.append(burst)
        print(
            f"  seed {seed:>3}: median {statistics.median(burst.latencies or [math.nan]):.0f} s, "
            f"max {max(burst.latencies, default=math.nan):.0f} s, SendCommand {burst.send_commands}, "
            f"invocations {burst.invocations}, not covered {burst.uncovered}, "
            f"commanded twice {burst.commanded_twice}",
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


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_arguments(argv)
    context = dict(item.partition("=")[::2] for item in options.context)
    os.environ.update(ENVIRONMENT)
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
    print(
        f"event source mapping: batch {mapping.batch_size}, window {mapping.batching_window_seconds} s, "
        f"maximum concurrency {mapping.maximum_concurrency}; runs of instance events: "
        f"MaxConcurrency {environment['NEW_INSTANCE_MAX_CONCURRENCY']}, MaxErrors {environment['MAX_ERRORS']}"
    )
    bursts = _measure(template, options)
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
    every = " for every seed" if len(bursts) > 1 else ""
    results = [verdicts(burst, options.instances) for burst in bursts]
    for index, (name, _) in enumerate(results[0]):
        met = all(result[index][1] for result in results)
        print(f"  [{'met' if met else 'MISSED'}] {name} (as deployed){every}")
