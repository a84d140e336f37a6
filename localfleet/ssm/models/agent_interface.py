"""What the Run Command engine asks of an instance: run one shell step, say what came of it.

The engine hands every executor what the SSM agent's ``aws:runShellScript`` plugin
would run: the step's ``runCommand`` lines joined with newlines, the
``SSM_<Name>`` environment of ``ENV_VAR`` parameters, and the step's execution
timeout. Executors (``localfleet.hosts``) differ only in where the script runs
and how long it takes: a sandboxed shell takes real time inside ``run``; a canned
result says how long the run lasts on the engine's clock (``duration``), so a
simulated clock can run ten thousand of them in an instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# amazon-ssm-agent (agent/appconfig, unix): "Exit Code for a command that exits
# before completion (generally due to timeout or cancel)" = 128 + SIGKILL.
STOPPED_PREEMPTIVELY_EXIT_CODE = 137


@dataclass(frozen=True)
class ExecutionResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    # Seconds the run still lasts on the engine's clock once ``run`` has returned: 0 for a
    # script that really ran; a canned run's length otherwise.
    duration: float = 0.0


class Executor(Protocol):
    """Runs one shell step. Must be safe to call from several threads at once."""

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult: ...
