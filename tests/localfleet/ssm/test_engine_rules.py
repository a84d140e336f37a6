"""The rules the engine applies, checked directly: rate limits, output truncation, fleet-wide concurrency."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from localfleet.ssm import ExecutionResult, SsmEmulator
from localfleet.ssm.models.engine import rate_limit, truncate_output
from tests.support.ssm_emulator import DOCUMENT, client_for, instance_id


@pytest.mark.parametrize(
    ("value", "targets", "concurrency", "errors"),
    [
        ("10", 1000, 10, 10),
        ("0", 1000, 1, 0),  # MaxErrors may be 0; concurrency is at least one node
        ("10%", 50, 5, 5),  # "10% for 50 ... stops when the sixth error is received"
        ("10%", 15, 2, 1),  # concurrency rounds up, errors round down
        ("1%", 10, 1, 0),
        ("100%", 7, 7, 7),
    ],
)
def test_rate_limits(value: str, targets: int, concurrency: int, errors: int) -> None:
    assert rate_limit(value, targets, at_least_one=True) == concurrency
    assert rate_limit(value, targets, at_least_one=False) == errors


def test_output_that_fits_is_stdout_then_stderr_under_the_error_title() -> None:
    assert truncate_output("out", "", 2500) == "out"
    assert truncate_output("out", "err", 2500) == "out\n----------ERROR-------\nerr"


@pytest.mark.parametrize(("stdout", "stderr"), [(5000, 5000), (5000, 10), (10, 5000), (2500, 0)])
def test_truncated_output_never_exceeds_the_capacity(stdout: int, stderr: int) -> None:
    output = truncate_output("o" * stdout, "e" * stderr, 2500)

    assert len(output) <= 2500
    assert output.startswith("o" * min(stdout, 1000))


class _CountingExecutor:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._overlap = threading.Barrier(100, timeout=5)

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        # Runs meet in groups of 100: with fewer allowed at once the barrier breaks (after its
        # timeout) and the peak stays below 100; with more, the peak passes 100.
        with contextlib.suppress(threading.BrokenBarrierError):
            self._overlap.wait()
        with self._lock:
            self.running -= 1
        return ExecutionResult(0, "{}", "")


def test_max_concurrency_is_fleet_wide_across_a_thousand_tag_targets(emulator: SsmEmulator) -> None:
    counting = _CountingExecutor()
    for number in range(1000):
        emulator.register_instance(instance_id(number), counting, tags={"ecr-fleet-auth": "enabled"})
    ssm: Any = client_for(emulator)

    command_id = ssm.send_command(
        DocumentName=DOCUMENT,
        Targets=[{"Key": "tag:ecr-fleet-auth", "Values": ["enabled"]}],
        MaxConcurrency="10%",
    )["Command"]["CommandId"]
    assert emulator.wait_idle(30)

    assert counting.peak == 100  # 10% of 1,000, not 10% of each batch of 50
    (finished,) = ssm.list_commands(CommandId=command_id)["Commands"]
    assert (finished["Status"], finished["TargetCount"], finished["CompletedCount"]) == (
        "Success",
        1000,
        1000,
    )
