"""The real runner handler, called in this process against a ``SimulatedAccount``.

Only what lies under the runner is replaced: its client factory gets a session
whose EC2 and SSM clients the account answers (the runner's own client
configuration — retries, timeouts — is kept), and with a ``SimulatedClock`` its
clock and botocore's back-off run on simulated time. ``handler.handler`` is
(and the runner module, whose Logger Powertools configures at import) imported only
once the caller has set the environment they read; ``handler`` is the asset's own
``handler.py``, imported by that name as Lambda does (it is not an installed module).

An invocation by an event source mapping gets its trace header as Lambda gives it (with
the chain's ``Lineage``: ``localfleet.lambda_runtime.models.recursion``), and every AWS call the runner
makes during it carries that header as ``X-Amzn-Trace-Id``, as botocore's ``add_recursion_detection_header``
adds ``_X_AMZN_TRACE_ID`` inside Lambda. That handler reads the process environment, which
invocations overlapping on one simulated clock would share, so the header is kept per invocation
(a context variable its threads inherit, ``SimulatedClock.concurrently``) and added the same way.
"""

from __future__ import annotations

import contextvars
import importlib.util
import secrets
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import boto3

from ecr_fleet_auth.aws import clients
from ecr_fleet_auth.shared.clock import Clock as RunnerClock
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS

from ..clocks import SimulatedClock
from ..composition.simulated_account import SimulatedAccount
from ..identity import REGION
from ..lambda_runtime import InProcessContext
from ..synthesized_stack import LAMBDA_SOURCE
from ..transport.botocore_in_process import Patcher, simulate_botocore_time

TRACE_HEADER = "X-Amzn-Trace-Id"
# The invocation's _X_AMZN_TRACE_ID, while one runs (None: not inside an invocation).
_trace_header: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_header", default=None)


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
        from ecr_fleet_auth.run import runner  # noqa: PLC0415 - its Logger reads the caller's environment

        self.account = account
        self.retry_sleeps: list[float] = []  # botocore's back-off, in simulated seconds
        session = session or account.session(region, services)
        self.session = session  # the runner's clients' (a simulated service may answer through it)
        session.events.register("before-call", _add_trace_header)
        self.session = session  # a test may watch the runner's calls on it
        factory = clients.ClientFactory(session=session)
        patch.setattr(clients, "default_factory", lambda: factory)
        clock = account.clock
        if isinstance(clock, SimulatedClock):
            # The runner's threads (its pairs) take turns on simulated time.
            runner_clock = RunnerClock(clock.monotonic, clock.sleep, clock.now, clock.concurrently)
            simulate_botocore_time(patch, clock, self.retry_sleeps)
        else:
            runner_clock = RunnerClock(clock.monotonic, clock.sleep, clock.now)
        patch.setattr(runner, "SYSTEM_CLOCK", runner_clock)

    def invoke(
        self, event: Any, timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS, *, lineage: str | None = None
    ) -> dict[str, Any]:
        """Call the handler once; ``lineage``: the chain an event source mapping's invocation continues."""
        handler = _asset_handler()  # after the caller set the environment it reads
        clock = self.account.clock
        context = InProcessContext(clock.monotonic, clock.monotonic() + timeout_seconds)
        header = (
            f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
        )
        token = _trace_header.set(header + (f";Lineage={lineage}" if lineage else ""))
        try:
            result: dict[str, Any] = handler(event, context)
        finally:
            _trace_header.reset(token)
        return result


def capture_reports(patch: Patcher) -> list[Any]:
    """Every report the runner's runs return from now on (undone with ``patch``): what a run of
    instance events reported, where the batch's answer to SQS holds only its failures."""
    from ecr_fleet_auth.run import runner  # noqa: PLC0415 - as in InProcessRunner

    captured: list[Any] = []
    real = runner.run

    def spy(*args: Any, **kwargs: Any) -> Any:
        report = real(*args, **kwargs)
        captured.append(report)
        return report

    patch.setattr(runner, "run", spy)
    return captured


def _add_trace_header(params: dict[str, Any], **_: Any) -> None:
    """botocore's ``handlers.add_recursion_detection_header``, with the invocation's header."""
    header = _trace_header.get()
    if header and TRACE_HEADER not in params["headers"]:
        params["headers"][TRACE_HEADER] = quote(header, safe="-=;:+&[]{}\"',")


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
