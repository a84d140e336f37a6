"""The real runner handler, called in this process against a ``SimulatedAccount``.

Only what lies under the runner is replaced: its client factory gets a session
whose EC2 and SSM clients the account answers (the runner's own client
configuration — retries, timeouts — is kept), and with a ``SimulatedClock`` its
clock and botocore's back-off run on simulated time. ``handler.handler`` is
(and the runner module, whose Logger Powertools configures at import) imported only
once the caller has set the environment they read; ``handler`` is the asset's own
``handler.py``, imported by that name as Lambda does (it is not an installed module).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import boto3

from ecr_fleet_auth import clients
from ecr_fleet_auth.clock import Clock as RunnerClock

from ..clocks import SimulatedClock
from ..lambda_runtime import InProcessContext
from ..synthesized_stack import LAMBDA_SOURCE
from ..transport.botocore_in_process import Patcher, simulate_botocore_time
from .simulated_account import REGION, SimulatedAccount

LAMBDA_TIMEOUT_SECONDS = 900


class InProcessRunner:
    """Patches the runner onto ``account`` (undone with ``patch``); ``invoke`` runs the handler once."""

    def __init__(
        self,
        account: SimulatedAccount,
        patch: Patcher,
        *,
        region: str = REGION,
        services: tuple[str, ...] = ("ec2", "ssm", "sqs", "dynamodb"),
        session: boto3.Session | None = None,
    ) -> None:
        """``session``: the runner's clients' session, if not ``account``'s own (an organization's)."""
        from ecr_fleet_auth import runner  # noqa: PLC0415 - its Logger reads the caller's environment

        self.account = account
        self.retry_sleeps: list[float] = []  # botocore's back-off, in simulated seconds
        factory = clients.ClientFactory(session=session or account.session(region, services))
        patch.setattr(clients, "default_factory", lambda: factory)
        clock = account.clock
        if isinstance(clock, SimulatedClock):
            # The runner's threads (its pairs) take turns on simulated time.
            runner_clock = RunnerClock(clock.monotonic, clock.sleep, clock.now, clock.concurrently)
            simulate_botocore_time(patch, clock, self.retry_sleeps)
        else:
            runner_clock = RunnerClock(clock.monotonic, clock.sleep, clock.now)
        patch.setattr(runner, "SYSTEM_CLOCK", runner_clock)

    def invoke(self, event: Any, timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS) -> dict[str, Any]:
        handler = _asset_handler()  # after the caller set the environment it reads
        clock = self.account.clock
        context = InProcessContext(clock.monotonic, clock.monotonic() + timeout_seconds)
        result: dict[str, Any] = handler(event, context)
        return result


def _asset_handler() -> Callable[[Any, Any], dict[str, Any]]:
    """``handler.handler`` from the asset (``lambda_src/handler.py``), imported once as ``handler``."""
    module = sys.modules.get("handler")
    if module is None:
        spec = importlib.util.spec_from_file_location("handler", LAMBDA_SOURCE / "handler.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["handler"] = module
        spec.loader.exec_module(module)
    entry_point: Callable[[Any, Any], dict[str, Any]] = module.handler
    return entry_point
