"""One run: discover, plan, send, wait, collect, report.

The only module that sequences the others. AWS is reached through the adapters
(``Fleet``, ``RunCommand``) built on clients from the factory; time through a
``Clock`` (``clock.py``) so tests and the benchmark can run a ten-minute wait in milliseconds.

Waiting is bounded twice: by the run's ``wait_seconds`` and by the Lambda's own
deadline minus a reserve for collecting, logging and publishing. Whatever is
still running then is reported ``pending`` (with its command id) rather than
lost to a killed invocation; commands are not cancelled, so they finish anyway.

Runs never overlap on an instance: before sending, the run asks Run Command which
instances a still-executing command of this document is working on (another run's)
and leaves them out, reported ``pending`` / ``instance_busy``. Two runs starting
within ListCommands' consistency lag of each other can both miss the other; then the
agent's per-instance lock (``locked``) is the last line. Reserved concurrency is
not needed for this (and cannot be had on accounts with little concurrency).

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
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from . import contract
from .clients import AwsClients, ClientFactory
from .clock import SYSTEM_CLOCK, Clock
from .commands import (
    INSTANCE_ERRORS,
    MAYBE_INSTANCE_ERRORS,
    CommandSpec,
    Invocation,
    RunCommand,
    SendUnconfirmed,
)
from .events import RunRequest
from .fleet import Fleet, FleetMember, TargetTag
from .observability import logger, metrics
from .planning import Dispatch, Exclusion, Plan, exclusion, halves, plan_dispatches, without
from .reasons import Reason
from .report import InstanceResult, Report, message, should_notify, subject
from .results import AgentResult, instance_result, needs_full_output
from .settings import RunnerSettings

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

AWS_ERRORS = (ClientError, BotoCoreError)
FIRST_POLL_SECONDS = 5.0
MAX_POLL_SECONDS = 30.0
# Kept back from the Lambda deadline for the last collection, the log and SNS:
# a fixed part plus time for ListCommandInvocations pages (50 instances each).
RESERVE_SECONDS = 15.0
RESERVE_SECONDS_PER_PAGE = 0.25
# GetCommandInvocation is per instance: a cap keeps a fleet of broken outputs
# from costing one call per instance.
MAX_OUTPUT_FALLBACKS = 20
LOGGED_INSTANCES = 200
# A failed run's error message in the report, the log and the e-mail.
ERROR_MESSAGE_CHARS = 300

# instance id -> why it cannot be commanded now (None: it can), looked up again.
Recheck = Callable[[Sequence[str]], dict[str, Exclusion | None]]


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
            comment=f"ecr-fleet-auth {self.action} run {run_id}",
            output_log_group=settings.output_log_group,
        )


def run(
    request: RunRequest,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    remaining_millis: int,
    clock: Clock | None = None,
) -> Report:
    clock = clock or SYSTEM_CLOCK
    started_at, started = clock.now(), clock.monotonic()
    run_id = str(uuid.uuid4())
    options = RunOptions.resolve(request, settings)
    tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
    aws = factory.clients_for()
    logger.append_keys(run_id=run_id, action=options.action, source=request.source)

    progress = _Progress()
    error: dict[str, str] | None = None
    try:
        stop_at = _stop_at(options, started, remaining_millis, progress)
        _remediate(
            request,
            settings=settings,
            options=options,
            run_id=run_id,
            tag=tag,
            aws=aws,
            clock=clock,
            progress=progress,
            stop_at=stop_at,
        )
    except Exception as failure:  # whatever stops a run, the operator hears of it
        logger.exception("the run failed before it could report per instance")
        error = _run_error(failure)

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
    _record(report, clock.monotonic() - started)
    _notify(report, settings, aws.sns)
    return report


@dataclass
class _Progress:
    """What a run has learnt so far: enough for a report even if it stops half-way."""

    members: list[FleetMember] | None = None
    exclusions: dict[str, Exclusion | None] = field(default_factory=dict)
    commanded: dict[str, InstanceResult] | None = None
    execution: Execution | None = None
    targetable: int = 0

    def command_ids(self) -> tuple[str, ...]:
        return tuple(self.execution.command_ids) if self.execution else ()

    def instances(self, *, failed: bool) -> list[InstanceResult]:
        commanded = dict(self.commanded or {})
        if self.commanded is None and self.execution is not None:
            commanded = self.execution.interrupted()
        if self.members is None:
            return [commanded[instance_id] for instance_id in sorted(commanded)]
        return _merge(self.members, self.exclusions, commanded, never_reached=failed)


def _stop_at(
    options: RunOptions, started: float, remaining_millis: int, progress: _Progress
) -> Callable[[], float]:
    """When waiting must end, once the number of instances (pages to collect) is known."""

    def stop_at() -> float:
        reserve = RESERVE_SECONDS + RESERVE_SECONDS_PER_PAGE * (progress.targetable / 50)
        return started + max(0.0, min(options.wait_seconds, remaining_millis / 1000 - reserve))

    return stop_at


def _remediate(
    request: RunRequest,
    *,
    settings: RunnerSettings,
    options: RunOptions,
    run_id: str,
    tag: TargetTag,
    aws: AwsClients,
    clock: Clock,
    progress: _Progress,
    stop_at: Callable[[], float],
) -> None:
    """Discover, leave out busy instances, plan, then send and follow (or only plan: dry run)."""
    fleet = Fleet(aws.ec2, aws.ssm)
    commands = RunCommand(aws.ssm, aws.ssm_send, clock)
    members = fleet.discover(tag, request.instance_ids)
    progress.members = members
    progress.exclusions = exclusions = {member.instance_id: exclusion(member) for member in members}
    candidates = [instance_id for instance_id, excluded in exclusions.items() if excluded is None]
    busy = _busy(commands, settings.document_name, candidates)
    for instance_id, command_id in busy.items():
        exclusions[instance_id] = Exclusion("pending", Reason.INSTANCE_BUSY, {"command_id": command_id})
    targetable = [instance_id for instance_id in candidates if instance_id not in busy]
    progress.targetable = len(targetable)
    plan = plan_dispatches(
        targetable,
        # A tag command would reach the busy instances too: send to the others by id.
        narrowed=request.instance_ids is not None or bool(busy),
        max_concurrency=settings.max_concurrency,
        max_errors=settings.max_errors,
    )
    logger.info(
        "plan", extra={"targetable": len(targetable), "busy": len(busy), "dispatches": _describe(plan)}
    )
    if request.dry_run:
        progress.commanded = _dry_run_results(plan)
        return

    def recheck(instance_ids: Sequence[str]) -> dict[str, Exclusion | None]:
        return {member.instance_id: exclusion(member) for member in fleet.discover(tag, instance_ids)}

    execution = Execution(commands, options.command_spec(settings, run_id), tag, clock, recheck)
    progress.execution = execution
    progress.commanded = execution.run(plan, stop_at())


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


def _run_error(failure: Exception) -> dict[str, str]:
    text = _short(str(failure)) or type(failure).__name__
    return {"reason": Reason.RUN_FAILED.value, "code": _error_code(failure), "message": text}


@dataclass(frozen=True)
class _Unconfirmed:
    """A send whose answer was lost: its command may exist; it is looked for, never sent again."""

    dispatch: Dispatch
    doubt: SendUnconfirmed


class Execution:
    """Sends a plan's dispatches lane by lane and follows their commands to the end or the deadline."""

    def __init__(
        self, commands: RunCommand, spec: CommandSpec, tag: TargetTag, clock: Clock, recheck: Recheck
    ) -> None:
        self._commands = commands
        self._spec = spec
        self._tag = tag
        self._clock = clock
        self._recheck = recheck
        self._queued: list[deque[Dispatch]] = []
        self._running: dict[str, Dispatch] = {}
        self._unconfirmed: list[_Unconfirmed] = []
        self._completed_seen: dict[str, int] = {}
        self._fallbacks_left = MAX_OUTPUT_FALLBACKS
        self.results: dict[str, InstanceResult] = {}
        self.command_ids: list[str] = []

    def run(self, plan: Plan, stop_at: float) -> dict[str, InstanceResult]:
        self._queued = [deque(lane) for lane in plan.lanes]
        for lane in range(len(self._queued)):
            self._send_next(lane)
        interval = FIRST_POLL_SECONDS
        while self._running or self._unconfirmed:
            remaining = stop_at - self._clock.monotonic()
            if remaining <= 0:
                break
            self._clock.sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_POLL_SECONDS)
            self._look_for_unconfirmed()
            for command_id, dispatch in list(self._running.items()):
                settled, invocations = self._settled(command_id, dispatch)
                if settled:
                    del self._running[command_id]
                    self._record(command_id, dispatch, invocations, finished=True)
                    self._send_next(dispatch.lane)
        for command_id, dispatch in self._running.items():
            self._collect(command_id, dispatch, finished=False)
        self._give_up_unconfirmed()
        for queue in self._queued:
            for dispatch in queue:
                self._set(dispatch.instance_ids, "pending", Reason.NOT_SENT_BEFORE_DEADLINE, {})
        return self.results

    def interrupted(self) -> dict[str, InstanceResult]:
        """What is known if the run stops now: results so far, running commands as pending."""
        self._give_up_unconfirmed()
        known = dict(self.results)
        for command_id, dispatch in self._running.items():
            for instance_id in dispatch.instance_ids:
                detail = {"command_id": command_id}
                known.setdefault(
                    instance_id, InstanceResult(instance_id, "", "pending", None, Reason.IN_PROGRESS, detail)
                )
        return known

    def _send_next(self, lane: int) -> None:
        queue = self._queued[lane]
        while queue:
            dispatch = queue.popleft()
            try:
                command_id = self._commands.send(self._spec, dispatch, self._tag.key, self._tag.values)
            except SendUnconfirmed as doubt:
                # Perhaps sent: the lane waits for it to show up (or for the deadline), as for a command.
                logger.warning("SendCommand answer lost", extra={"error": str(doubt), "lane": lane})
                self._unconfirmed.append(_Unconfirmed(dispatch, doubt))
                return
            except AWS_ERRORS as error:
                code = _error_code(error)
                about_instances = code in INSTANCE_ERRORS or (
                    code in MAYBE_INSTANCE_ERRORS and not dispatch.rechecked
                )
                if about_instances and not dispatch.by_tag:
                    # Nothing started: send the others again, without the instances SSM refused.
                    queue.extendleft(reversed(self._without_refused(dispatch, error)))
                    continue
                # This batch is lost, the others are not; nothing is re-sent.
                logger.warning("SendCommand failed", extra={"error": str(error), "lane": lane})
                self._set(dispatch.instance_ids, "failed", Reason.SEND_FAILED, {"error": _error_code(error)})
                continue
            self._follow(command_id, dispatch)
            return

    def _follow(self, command_id: str, dispatch: Dispatch) -> None:
        self._running[command_id] = dispatch
        self.command_ids.append(command_id)

    def _without_refused(self, dispatch: Dispatch, error: ClientError | BotoCoreError) -> list[Dispatch]:
        """What to send instead of a dispatch SSM refused because of some of its instances.

        The error does not reliably say which: first the instances' states are looked up
        again (one terminated or untagged since discovery is reported as such and dropped);
        if that explains nothing, an ``INSTANCE_ERRORS`` refusal halves the dispatch, until
        the refused instance stands alone and is reported with SSM's refusal (any other
        refusal, such as AccessDenied for the role itself, fails the batch). Costs one
        SendCommand per halving, and two lookups, only when SSM refuses; one refused id
        never holds back the others.
        """
        code = _error_code(error)
        logger.warning(
            "SendCommand refused instances", extra={"error": code, "instances": len(dispatch.instance_ids)}
        )
        if not dispatch.rechecked:
            try:
                states = self._recheck(dispatch.instance_ids)
            except AWS_ERRORS as failure:
                logger.warning("could not look the instances up again", extra={"error": str(failure)})
                states = {}
            dropped = {instance_id for instance_id, excluded in states.items() if excluded is not None}
            for instance_id in dropped:
                excluded = states[instance_id]
                assert excluded is not None
                self._set([instance_id], excluded.status, excluded.reason, {**excluded.detail, "error": code})
            if dropped:
                rest = without(dispatch, dropped)
                return [rest] if rest.instance_ids else []
        if code not in INSTANCE_ERRORS:  # not explained by the instances: the batch is lost
            self._set(dispatch.instance_ids, "failed", Reason.SEND_FAILED, {"error": code})
            return []
        if len(dispatch.instance_ids) > 1:
            return list(halves(dispatch))
        if code == "UnsupportedPlatformType":
            self._set(dispatch.instance_ids, "skipped", Reason.UNSUPPORTED_PLATFORM, {"error": code})
        else:
            detail = {"error": code, "message": _short(str(error))}
            self._set(dispatch.instance_ids, "unreachable", Reason.INVALID_INSTANCE_ID, detail)
        return []

    def _look_for_unconfirmed(self) -> None:
        for unsure in list(self._unconfirmed):
            doubt = unsure.doubt
            found = self._commands.find_sent(self._spec.document_name, doubt.comment, doubt.since)
            if found:
                logger.info("found the command of a lost SendCommand answer", extra={"command_id": found})
                self._unconfirmed.remove(unsure)
                self._follow(found, unsure.dispatch)

    def _give_up_unconfirmed(self) -> None:
        for unsure in self._unconfirmed:
            detail = {"error": _error_code(unsure.doubt.error), "comment": unsure.doubt.comment}
            self._set(unsure.dispatch.instance_ids, "failed", Reason.SEND_UNCONFIRMED, detail)
        self._unconfirmed = []

    def _settled(self, command_id: str, dispatch: Dispatch) -> tuple[bool, list[Invocation] | None]:
        """Whether every instance we sent the command to has finished, and its invocations if readable.

        A tag-targeted command also reaches tagged instances that cannot run it
        (stopped, connection lost): SSM keeps it InProgress until their delivery
        timeout. So once enough invocations have completed to cover ours, look
        at the invocations themselves rather than wait for the command.
        """
        try:
            progress = self._commands.progress(command_id)
        except AWS_ERRORS as error:
            # A failed poll is only a missed look; the next one (or the final collection) catches up.
            logger.warning("ListCommands failed", extra={"command_id": command_id, "error": str(error)})
            return False, None
        if progress.finished:
            return True, self._invocations(command_id)
        ours = len(dispatch.instance_ids)
        if not dispatch.by_tag or progress.completed_count < ours:
            return False, None
        if progress.completed_count <= self._completed_seen.get(command_id, -1):
            return False, None  # nothing new since the last look
        self._completed_seen[command_id] = progress.completed_count
        invocations = self._invocations(command_id)
        if invocations is None:
            return False, None
        done = {invocation.instance_id for invocation in invocations if invocation.finished}
        return done.issuperset(dispatch.instance_ids), invocations

    def _invocations(self, command_id: str) -> list[Invocation] | None:
        try:
            return self._commands.invocations(command_id)
        except AWS_ERRORS as error:
            logger.warning(
                "ListCommandInvocations failed", extra={"command_id": command_id, "error": str(error)}
            )
            return None

    def _collect(self, command_id: str, dispatch: Dispatch, *, finished: bool) -> None:
        self._record(command_id, dispatch, self._invocations(command_id), finished=finished)

    def _record(
        self, command_id: str, dispatch: Dispatch, invocations: list[Invocation] | None, *, finished: bool
    ) -> None:
        if invocations is None:
            status = "failed" if finished else "pending"
            self._set(dispatch.instance_ids, status, Reason.RESULTS_UNAVAILABLE, {"command_id": command_id})
            return
        for invocation in invocations:
            agent = AgentResult.parse(invocation.output)
            if agent is None and needs_full_output(invocation) and self._fallbacks_left > 0:
                self._fallbacks_left -= 1
                agent = self._full_output_result(command_id, invocation.instance_id)
            self.results[invocation.instance_id] = instance_result(invocation, agent)
        missing = [i for i in dispatch.instance_ids if i not in self.results]
        if finished:
            self._set(missing, "failed", Reason.NO_INVOCATION, {"command_id": command_id})
        else:
            self._set(missing, "pending", Reason.NOT_YET_DELIVERED, {"command_id": command_id})

    def _full_output_result(self, command_id: str, instance_id: str) -> AgentResult | None:
        try:
            return AgentResult.parse(self._commands.standard_output(command_id, instance_id))
        except AWS_ERRORS as error:
            logger.warning(
                "GetCommandInvocation failed", extra={"instance_id": instance_id, "error": str(error)}
            )
            return None

    def _set(self, instance_ids: Iterable[str], status: str, reason: Reason, detail: dict[str, Any]) -> None:
        for instance_id in instance_ids:
            self.results[instance_id] = InstanceResult(instance_id, "", status, None, reason, dict(detail))


def _dry_run_results(plan: Plan) -> dict[str, InstanceResult]:
    results = {}
    dispatches = plan.dispatches
    for number, dispatch in enumerate(dispatches, start=1):
        detail = {
            "dispatch": "target tag" if dispatch.by_tag else f"batch {number} of {len(dispatches)}",
            "max_concurrency": dispatch.max_concurrency,
            "max_errors": dispatch.max_errors,
        }
        for instance_id in dispatch.instance_ids:
            results[instance_id] = InstanceResult(instance_id, "", "skipped", None, Reason.DRY_RUN, detail)
    return results


def _merge(
    members: list[FleetMember],
    exclusions: dict[str, Exclusion | None],
    commanded: dict[str, InstanceResult],
    *,
    never_reached: bool = False,
) -> list[InstanceResult]:
    """One result per instance: what its command said, else why it was not commanded.

    A tag-targeted command also reaches tagged instances that discovery set
    aside (e.g. connection lost): their own agent result wins if they produced
    one, otherwise the discovery reason stands. ``never_reached``: the run failed
    before it got to some targetable instances; they are reported ``run_failed``.
    """
    merged: dict[str, InstanceResult] = {}
    for member in members:
        result = commanded.get(member.instance_id)
        excluded = exclusions.get(member.instance_id)
        if excluded is not None and (result is None or result.outcome is None):
            result = InstanceResult(
                member.instance_id, "", excluded.status, None, excluded.reason, dict(excluded.detail)
            )
        if result is None and never_reached:
            result = InstanceResult(member.instance_id, "", "failed", None, Reason.RUN_FAILED, {})
        if result is None:  # never reached: every targetable id is in a dispatch
            result = InstanceResult(member.instance_id, "", "failed", None, Reason.NOT_DISPATCHED, {})
        merged[member.instance_id] = _named(result, member.name)
    # Instances the tag matched at send time that discovery had not seen: one
    # launched meanwhile ran the agent and is reported; one that cannot run it
    # (stopped, so not in the running fleet) is not part of this run.
    for instance_id, result in commanded.items():
        if instance_id not in merged and result.outcome is not None:
            merged[instance_id] = result
    return [merged[instance_id] for instance_id in sorted(merged)]


def _named(result: InstanceResult, name: str) -> InstanceResult:
    if not name or result.name == name:
        return result
    return InstanceResult(
        result.instance_id, name, result.status, result.outcome, result.reason, result.detail
    )


def _record(report: Report, duration_seconds: float) -> None:
    """One structured log record, and — for real runs — the metrics the stack's alarm reads."""
    summary = report.summary()
    attention = [i.to_dict() for i in report.instances if i.status != "succeeded"]
    logger.info(
        contract.RUN_REPORT_LOG_MESSAGE,
        extra={
            "report": {
                **{key: value for key, value in report.to_dict().items() if key != "instances"},
                "instances_not_succeeded": attention[:LOGGED_INSTANCES],
                "instances_not_logged": max(0, len(attention) - LOGGED_INSTANCES),
            }
        },
    )
    if report.dry_run:
        return
    metrics.add_dimension(name=contract.METRIC_ACTION_DIMENSION, value=report.action)
    for status in contract.INSTANCE_STATUSES:
        metrics.add_metric(
            name=contract.status_metric_name(status), unit=MetricUnit.Count, value=summary[status]
        )
    metrics.add_metric(name=contract.RUN_DURATION_METRIC, unit=MetricUnit.Seconds, value=duration_seconds)
    metrics.add_metric(
        name=contract.RUNS_FAILED_METRIC, unit=MetricUnit.Count, value=1 if report.error is not None else 0
    )


def _notify(report: Report, settings: RunnerSettings, sns: SNSClient) -> None:
    if not should_notify(report, settings.notify_policy):
        return
    if not settings.topic_arn:
        logger.warning("notification due but no topic configured")
        return
    try:
        text = message(report, output_log_group=settings.output_log_group, region=sns.meta.region_name)
        sns.publish(TopicArn=settings.topic_arn, Subject=subject(report), Message=text)
    except AWS_ERRORS:
        # The report is still returned and logged; a lost e-mail must not fail the run.
        logger.exception("could not publish the report to SNS")


def _short(text: str, most: int = ERROR_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 3] + "..."


def _describe(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "instances": len(d.instance_ids),
            "by_tag": d.by_tag,
            "lane": d.lane,
            "max_concurrency": d.max_concurrency,
            "max_errors": d.max_errors,
        }
        for d in plan.dispatches
    ]


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
