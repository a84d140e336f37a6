"""The product's on-instance agent, played without running it: what a test says happens on an instance.

A test chooses what the agent does when a command reaches the instance — its
result line, stderr, exit status and how long it runs (``CannedRun``) — and the
Run Command engine derives every status from that. ``CannedAgent`` also keeps the
real agent's promise of one run at a time per instance: a run that starts while
another command's run is still going finds the lock held and answers the agent's
``locked`` result (skipped, exit 0) after ``LOCKED_RUN_SECONDS``.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecr_fleet_auth.shared import contract

from ..clocks import Clock
from ..ssm.models.agent_interface import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult

LOCKED_RUN_SECONDS = 1.0
LOCKED_MESSAGE = "another ecr-fleet-auth run is in progress"


def result_line(outcome: str = "changed", reason: str = "ok", message: str = "", **extra: Any) -> str:
    """The agent's one result line (docs/reference/contract.md), compact JSON."""
    return json.dumps(
        {
            "schema": contract.RESULT_SCHEMA,
            "action": "refresh",
            "outcome": outcome,
            "reason": reason,
            "message": message,
            **extra,
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class CannedRun:
    """What the agent does on an instance each time a command reaches it."""

    stdout: str = field(default_factory=result_line)
    stderr: str = ""
    exit_code: int = 0
    duration: float = 20.0  # seconds; beyond the step's timeout, the run is killed (Execution Timed Out)


class CannedAgent:
    """An executor playing ``run`` on one instance, with the agent's lock; ``runs`` records (start, end)."""

    def __init__(self, run: CannedRun, clock: Clock) -> None:
        self.run_spec = run
        self.clock = clock
        self.runs: list[tuple[float, float]] = []  # agent runs that held the lock
        self.locked_runs = 0
        self._busy_until = float("-inf")
        self._lock = threading.Lock()

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult:
        spec = self.run_spec
        with self._lock:
            now = self.clock.monotonic()
            if now < self._busy_until:
                self.locked_runs += 1
                line = result_line("skipped", "locked", LOCKED_MESSAGE)
                return ExecutionResult(0, line + "\n", "", duration=LOCKED_RUN_SECONDS)
            lasts = min(spec.duration, timeout_seconds)
            self._busy_until = now + lasts
            self.runs.append((now, now + lasts))
        if spec.duration >= timeout_seconds:
            # Killed at the timeout before printing its result line.
            return ExecutionResult(
                STOPPED_PREEMPTIVELY_EXIT_CODE, "", spec.stderr, timed_out=True, duration=timeout_seconds
            )
        return ExecutionResult(spec.exit_code, spec.stdout, spec.stderr, duration=spec.duration)


def runs_overlap(agents: list[CannedAgent]) -> bool:
    """Whether any agent ever worked on its instance for two commands at once (locked runs do not work)."""
    for agent in agents:
        spans = sorted(agent.runs)
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)):
            return True
    return False
