"""The Lambda context for a handler called inside this process, on any clock.

The runner's tests and benchmarks call ``handler.handler`` directly (their AWS
answers come from this process); Lambda's deadline is then read from the clock
the run uses, real or simulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...identity import ACCOUNT, REGION


@dataclass
class InProcessContext:
    """What the runner and Powertools read of Lambda's context."""

    monotonic: Callable[[], float]
    deadline: float  # on ``monotonic``'s clock
    function_name: str = "ecr-fleet-auth-runner"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-4000-8000-000000000001"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.monotonic()) * 1000))
