"""One run: discover, plan, send, wait, collect, report.

The only module that sequences the others. AWS is reached through the adapters
(``Fleet``, ``RunCommand``) built on clients from the factory; time through a
``Clock`` (``clock.py``) so tests and the benchmark can run a ten-minute wait in milliseconds.

Waiting is bounded twice: by the run's ``wait_seconds`` and by the Lambda's own
deadline minus a reserve for collecting, logging and publishing. Whatever is
still running then is reported ``pending`` (with its command id) rather than
lost to a killed invocation; commands are not cancelled, so they finish anyway.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from . import contract
from .clients import ClientFactory
from .clock import SYSTEM_CLOCK, Clock
from .commands import CommandSpec, Invocation, RunCommand
from .events import RunRequest
from .fleet import Fleet, FleetMember, TargetTag
from .observability import logger, metrics
from .planning import Dispatch, Exclusion, Plan, exclusion, plan_dispatches
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

    members = Fleet(aws.ec2, aws.ssm).discover(tag, request.instance_ids)
    exclusions = {member.instance_id: exclusion(member) for member in members}
    targetable = [instance_id for instance_id, excluded in exclusions.items() if excluded is None]
    plan = plan_dispatches(
        targetable,
        narrowed=request.instance_ids is not None,
        max_concurrency=settings.max_concurrency,
        max_errors=settings.max_errors,
    )
    logger.info("plan", extra={"targetable": len(targetable), "dispatches": _describe(plan)})

    command_ids: tuple[str, ...] = ()
    if request.dry_run:
        commanded = _dry_run_results(plan)
    else:
        reserve = RESERVE_SECONDS + RESERVE_SECONDS_PER_PAGE * (len(targetable) / 50)
        stop_at = started + max(0.0, min(options.wait_seconds, remaining_millis / 1000 - reserve))
        commands = RunCommand(aws.ssm, aws.ssm_send, clock)
        execution = Execution(commands, options.command_spec(settings, run_id), tag, clock)
        commanded = execution.run(plan, stop_at)
        command_ids = tuple(execution.command_ids)

    report = Report(
        run_id=run_id,
        action=options.action,
        dry_run=request.dry_run,
        source=request.source,
        started_at=_iso(started_at),
        finished_at=_iso(clock.now()),
        instances=tuple(_merge(members, exclusions, commanded)),
        command_ids=command_ids,
    )
    _record(report, clock.monotonic() - started)
    _notify(report, settings, aws.sns)
    return report


class Execution:
    """Sends a plan's dispatches lane by lane and follows their commands to the end or the deadline."""

    def __init__(self, commands: RunCommand, spec: CommandSpec, tag: TargetTag, clock: Clock) -> None:
        self._commands = commands
        self._spec = spec
        self._tag = tag
        self._clock = clock
        self._queued: list[deque[Dispatch]] = []
        self._running: dict[str, Dispatch] = {}
        self._completed_seen: dict[str, int] = {}
        self._fallbacks_left = MAX_OUTPUT_FALLBACKS
        self.results: dict[str, InstanceResult] = {}
        self.command_ids: list[str] = []

    def run(self, plan: Plan, stop_at: float) -> dict[str, InstanceResult]:
        self._queued = [deque(lane) for lane in plan.lanes]
        for lane in range(len(self._queued)):
            self._send_next(lane)
        interval = FIRST_POLL_SECONDS
        while self._running:
            remaining = stop_at - self._clock.monotonic()
            if remaining <= 0:
                break
            self._clock.sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_POLL_SECONDS)
            for command_id, dispatch in list(self._running.items()):
                settled, invocations = self._settled(command_id, dispatch)
                if settled:
                    del self._running[command_id]
                    self._record(command_id, dispatch, invocations, finished=True)
                    self._send_next(dispatch.lane)
        for command_id, dispatch in self._running.items():
            self._collect(command_id, dispatch, finished=False)
        for queue in self._queued:
            for dispatch in queue:
                self._set(dispatch.instance_ids, "pending", "not_sent_before_deadline", {})
        return self.results

    def _send_next(self, lane: int) -> None:
        queue = self._queued[lane]
        while queue:
            dispatch = queue.popleft()
            try:
                command_id = self._commands.send(self._spec, dispatch, self._tag.key, self._tag.values)
            except AWS_ERRORS as error:
                # This batch is lost, the others are not; nothing is re-sent.
                logger.warning("SendCommand failed", extra={"error": str(error), "lane": lane})
                self._set(dispatch.instance_ids, "failed", "send_failed", {"error": _error_code(error)})
                continue
            self._running[command_id] = dispatch
            self.command_ids.append(command_id)
            return

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
            self._set(dispatch.instance_ids, status, "results_unavailable", {"command_id": command_id})
            return
        for invocation in invocations:
            agent = AgentResult.parse(invocation.output)
            if agent is None and needs_full_output(invocation) and self._fallbacks_left > 0:
                self._fallbacks_left -= 1
                agent = self._full_output_result(command_id, invocation.instance_id)
            self.results[invocation.instance_id] = instance_result(invocation, agent)
        missing = [i for i in dispatch.instance_ids if i not in self.results]
        if finished:
            self._set(missing, "failed", "no_invocation", {"command_id": command_id})
        else:
            self._set(missing, "pending", "not_yet_delivered", {"command_id": command_id})

    def _full_output_result(self, command_id: str, instance_id: str) -> AgentResult | None:
        try:
            return AgentResult.parse(self._commands.standard_output(command_id, instance_id))
        except AWS_ERRORS as error:
            logger.warning(
                "GetCommandInvocation failed", extra={"instance_id": instance_id, "error": str(error)}
            )
            return None

    def _set(self, instance_ids: Iterable[str], status: str, reason: str, detail: dict[str, Any]) -> None:
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
            results[instance_id] = InstanceResult(instance_id, "", "skipped", None, "dry_run", detail)
    return results


def _merge(
    members: list[FleetMember],
    exclusions: dict[str, Exclusion | None],
    commanded: dict[str, InstanceResult],
) -> list[InstanceResult]:
    """One result per instance: what its command said, else why it was not commanded.

    A tag-targeted command also reaches tagged instances that discovery set
    aside (e.g. connection lost): their own agent result wins if they produced
    one, otherwise the discovery reason stands.
    """
    merged: dict[str, InstanceResult] = {}
    for member in members:
        result = commanded.get(member.instance_id)
        excluded = exclusions[member.instance_id]
        if excluded is not None and (result is None or result.outcome is None):
            result = InstanceResult(
                member.instance_id, "", excluded.status, None, excluded.reason, dict(excluded.detail)
            )
        if result is None:  # never reached: every targetable id is in a dispatch
            result = InstanceResult(member.instance_id, "", "failed", None, "not_dispatched", {})
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
