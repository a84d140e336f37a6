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

import contextlib
import io
import math
import os
import random
import statistics
import tempfile
import time
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


def run_burst(template: Template, seed: int = SEED) -> Burst:
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

    for _ in range(INSTANCES):
        at = start + rng.uniform(0, LAUNCH_SPREAD_SECONDS)
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
            clock.sleep(LAUNCH_SPREAD_SECONDS)  # every launch has happened
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
        uncovered=uncovered + INSTANCES - len(account.agents),
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


def send_command_budget() -> int:
    return math.ceil(INSTANCES / 50) + 10


def describe(burst: Burst) -> str:
    latencies = sorted(burst.latencies)
    p90 = latencies[int(0.9 * (len(latencies) - 1))] if latencies else float("nan")
    return (
        f"  Online -> agent run done: median {statistics.median(latencies):.0f} s, p90 {p90:.0f} s, "
        f"max {max(latencies):.0f} s ({len(latencies)} covered, {burst.uncovered} not)\n"
        f"  SendCommand calls {burst.send_commands} (budget {send_command_budget()}), "
        f"Lambda invocations {burst.invocations}, API calls {burst.api_calls}, "
        f"instances commanded twice {burst.commanded_twice}\n"
        f"  simulated {burst.simulated_seconds:.0f} s, wall {burst.wall_seconds:.1f} s"
    )


def verdicts(burst: Burst) -> list[tuple[str, bool]]:
    return [
        ("every instance covered, none twice", burst.uncovered == 0 and burst.commanded_twice == 0),
        (
            f"max under {GOAL_SECONDS} s from Online",
            bool(burst.latencies) and max(burst.latencies) < GOAL_SECONDS,
        ),
        (f"SendCommand calls <= ceil({INSTANCES}/50)+10", burst.send_commands <= send_command_budget()),
    ]


# The same burst at the fleet's rate: what runs of instance events did before newInstanceMaxConcurrency.
AT_FLEET_RATE = {"newInstanceMaxConcurrency": ""}


def main() -> None:
    os.environ.update(ENVIRONMENT)
    print(
        f"ecr-fleet-auth new-instance benchmark: {INSTANCES} launches within {LAUNCH_SPREAD_SECONDS} s, "
        f"Online after {ONLINE_AFTER_SECONDS[0]}-{ONLINE_AFTER_SECONDS[1]} s, agent runs "
        f"{AGENT_SECONDS[0]}-{AGENT_SECONDS[1]} s, seed {SEED} (simulated time, the template's settings)"
    )
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
        (template,) = synthesize(outdir=outdir).values()
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-bench-cdk.out-") as outdir:
        (at_fleet_rate,) = synthesize(AT_FLEET_RATE, outdir=outdir).values()
    mapping = NewInstanceDelivery.from_template(
        template, SimulatedClock(), SimulatedAccount(SimulatedClock()).sqs, lambda event: None
    ).settings
    environment = resolved_runner_environment(template, DEPLOY_TIME)
    print(
        f"event source mapping: batch {mapping.batch_size}, window {mapping.batching_window_seconds} s, "
        f"maximum concurrency {mapping.maximum_concurrency}; runs of instance events: "
        f"MaxConcurrency {environment['NEW_INSTANCE_MAX_CONCURRENCY']}, MaxErrors {environment['MAX_ERRORS']}"
    )
    burst = run_burst(template)
    print(describe(burst))
    print()
    fleet_rate = resolved_runner_environment(at_fleet_rate, DEPLOY_TIME)["MAX_CONCURRENCY"]
    print(
        "for comparison, newInstanceMaxConcurrency empty "
        f"(runs of instance events at maxConcurrency {fleet_rate}):"
    )
    print(describe(run_burst(at_fleet_rate)))
    print()
    for name, met in verdicts(burst):
        print(f"  [{'met' if met else 'MISSED'}] {name} (as deployed)")
