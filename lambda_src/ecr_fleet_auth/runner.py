"""One run, top to bottom in ``run``: discover, leave out busy instances, plan, send/wait/collect, report.

The only module that sequences the others: discovery (``discovery.Fleet``), planning
(``planning``), carrying the plan out (``execution.Execution``, over ``run_command.RunCommand``),
what is known so far (``progress.RunProgress``) and publishing the report (``publishing``).
AWS is reached only through those adapters, built on clients from the factory; time
through a ``Clock`` (``clock.py``) so tests and the benchmark can run a ten-minute wait in
milliseconds.

Waiting is bounded twice: by the run's ``wait_seconds`` and by the Lambda's own
deadline minus a reserve for collecting, logging and publishing. Whatever is
still running then is reported ``pending`` (with its command id) rather than
lost to a killed invocation; commands are not cancelled, so they finish anyway.

Runs never overlap on an instance: before sending, the run asks Run Command which
instances a still-executing command of this document is working on (another run's)
and leaves them out, reported ``pending`` / ``instance_busy``. It asks once, at the
start: two runs starting within ListCommands' consistency lag of each other can both
miss the other, and a batch a run sends later (a lane's next batch, a piece of a
refused batch) is not checked again; then the agent's per-instance lock (``locked``)
is the last line. Reserved concurrency is not needed for this (and cannot be had on
accounts with little concurrency).

A run that cannot complete — discovery throttled past its retries, an access
error, a bug — still ends in a report: ``error`` says why (``run_failed``), every
instance known so far is listed, the ``RunsFailed`` metric feeds the stack's alarm
and the topic hears of it per ``notifyPolicy`` (a failed run is a failure). The
report is returned, not raised: the invocation itself succeeded in reporting, so
Lambda neither retries it (which would notify again) nor counts it as a function
error; the function-error alarm is for what cannot report at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from . import contract
from .clients import AWS_ERRORS, ClientFactory, error_code
from .clock import SYSTEM_CLOCK, Clock
from .discovery import Fleet, TargetTag
from .events import RunRequest
from .execution import Execution, dry_run_results
from .observability import logger
from .planning import plan_dispatches
from .progress import RunProgress
from .publishing import publish
from .reasons import Reason
from .report import Report, short
from .run_command import CommandSpec, RunCommand
from .settings import RunnerSettings

# Kept back from the Lambda deadline for the last collection, the log and SNS:
# a fixed part plus time for ListCommandInvocations pages (50 instances each).
RESERVE_SECONDS = 15.0
RESERVE_SECONDS_PER_PAGE = 0.25


def run(
    request: RunRequest,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    remaining_millis: int,
    clock: Clock | None = None,
    not_online_in_time: Mapping[str, Mapping[str, str]] | None = None,
) -> Report:
    """``not_online_in_time``: new instances waited for until the readiness bound (``triggers``),
    with the detail to report if they are still not online."""
    clock = clock or SYSTEM_CLOCK  # looked up here: tests and benchmarks replace runner.SYSTEM_CLOCK
    started_at, started = clock.now(), clock.monotonic()
    run_id = str(uuid.uuid4())
    options = RunOptions.resolve(request, settings)
    tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
    aws = factory.clients_for()
    logger.append_keys(run_id=run_id, action=options.action, source=request.source)

    progress = RunProgress(requested=request.instance_ids)
    error: dict[str, str] | None = None
    try:
        fleet, commands = Fleet(aws.ec2, aws.ssm), RunCommand(aws.ssm, aws.ssm_send, clock)
        # 1. Discover the tagged running fleet (or the requested instances); some are reported only.
        candidates = progress.discovered(fleet.discover(tag, request.instance_ids))
        progress.not_online_in_time(not_online_in_time or {})
        # 2. Leave out the instances another run's command is still working on.
        busy = _busy(commands, settings.document_name, candidates)
        targetable = progress.leave_out_busy(candidates, busy)
        # 3. Plan the SendCommand calls; the rate budget holds for the whole run.
        plan = plan_dispatches(
            targetable,
            # A tag command would reach the busy instances too: send to the others by id.
            narrowed=request.instance_ids is not None or bool(busy),
            max_concurrency=settings.max_concurrency,
            max_errors=settings.max_errors,
        )
        logger.info(
            "plan", extra={"targetable": len(targetable), "busy": len(busy), "dispatches": plan.describe()}
        )
        # 4. Send, wait and collect until the deadline; a dry run only reports the plan.
        if request.dry_run:
            progress.commanded = dry_run_results(plan)
        else:
            spec = options.command_spec(settings, run_id)
            progress.execution = Execution(commands, spec, tag, clock, fleet)
            stop_at = _stop_at(options, started, remaining_millis, len(targetable))
            progress.commanded = progress.execution.carry_out(plan, stop_at)
    except Exception as failure:  # whatever stops a run, the operator hears of it
        logger.exception("the run failed before it could report per instance")
        error = _run_error(failure)

    # 5. Report: returned, logged, counted and published per the notify policy.
    report = Report(
        run_id=run_id,
        action=options.action,
        dry_run=request.dry_run,
        source=request.source,
        started_at=_iso(started_at),
        finished_at=_iso(clock.now()),
        instances=tuple(progress.instances(failed=error is not None)),
        command_ids=progress.command_ids(),
        error=error,
    )
    publish(report, settings, aws.sns, duration_seconds=clock.monotonic() - started)
    return report


def current_clock() -> Clock:
    """The clock runs go by: ``SYSTEM_CLOCK``, looked up at each call (tests and benchmarks replace it)."""
    return SYSTEM_CLOCK


@dataclass(frozen=True)
class RunOptions:
    """The event's overrides applied to the deployed settings."""

    action: str
    registries: tuple[str, ...]
    users: tuple[str, ...]
    wait_seconds: int

    @classmethod
    def resolve(cls, request: RunRequest, settings: RunnerSettings) -> RunOptions:
        return cls(
            action=request.action or settings.action,
            registries=request.registries or settings.registries,
            users=request.users or settings.users,
            wait_seconds=settings.wait_seconds if request.wait_seconds is None else request.wait_seconds,
        )

    def command_spec(self, settings: RunnerSettings, run_id: str) -> CommandSpec:
        """Every document parameter, always: the document's own defaults never apply to a run."""
        return CommandSpec(
            document_name=settings.document_name,
            document_version=settings.document_version,
            parameters={
                contract.ACTION: self.action,
                contract.REGISTRIES: ",".join(self.registries),
                contract.USERS: ",".join(self.users),
                contract.HELPER_VERSION: settings.helper_version,
                contract.RELEASE_BASE_URL: settings.release_base_url,
            },
            delivery_timeout_seconds=settings.delivery_timeout_seconds,
            execution_timeout_seconds=settings.execution_timeout_seconds,
            comment=f"ecr-fleet-auth {self.action} run {run_id}",
            output_log_group=settings.output_log_group,
        )


def _busy(commands: RunCommand, document_name: str, candidates: list[str]) -> dict[str, str]:
    """The candidates another run's command is still working on; none if that cannot be read.

    Not knowing is no reason to fail the run: the agent's own lock still keeps two
    runs from working on one instance at once (it reports ``locked``)."""
    if not candidates:
        return {}
    try:
        return commands.busy_instances(document_name, candidates)
    except AWS_ERRORS as error:
        logger.warning(
            "could not list commands still running; relying on the agent's lock", extra={"error": str(error)}
        )
        return {}


def _stop_at(options: RunOptions, started: float, remaining_millis: int, targetable: int) -> float:
    """When waiting must end: the run's wait, or the Lambda deadline less time to collect and report."""
    reserve = RESERVE_SECONDS + RESERVE_SECONDS_PER_PAGE * (targetable / 50)
    return started + max(0.0, min(options.wait_seconds, remaining_millis / 1000 - reserve))


def _run_error(failure: Exception) -> dict[str, str]:
    text = short(str(failure)) or type(failure).__name__
    return {"reason": Reason.RUN_FAILED.value, "code": error_code(failure), "message": text}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
