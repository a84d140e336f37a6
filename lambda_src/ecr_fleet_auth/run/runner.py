"""One run, top to bottom in ``run``: discover, leave out busy instances, plan, send/wait/collect, write
each instance's SSM Compliance, report.

A run covers (account, region) pairs (``organization``): the function's own, and in an
organization every stack instance of its StackSet. Each pair runs the sequence below with its
own clients (a member account's through its member role), all pairs at once on threads
(``clock.concurrently``) within the one deadline; a pair that cannot be reached (its stack
instance not ready, its role not assumable, its region refusing the credentials) is reported
in the report's ``targets`` and the others go on. One report, one notification.

The only module that sequences the others: discovery (``discovery.Fleet``), planning
(``planning``), carrying the plan out (``execution.Execution``, over ``run_command.RunCommand``),
what is known so far (``progress.RunProgress``), each pair's instances in SSM Compliance
(``compliance``, with that pair's own client) and publishing the report (``publishing``).
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from ..aws.clients import AWS_ERRORS, AwsClients, ClientFactory, Pair, error_code
from ..aws.compliance import (
    SECONDS_PER_INSTANCE,
    ComplianceRun,
    ComplianceTally,
    clear_departed,
    departed,
    write_compliance,
)
from ..aws.discovery import Fleet, TargetTag
from ..aws.organization import MEMBER_DOCUMENT_VERSION, MemberDocuments, Target, organization_mode, targets
from ..aws.publishing import publish
from ..aws.run_command import LIST_PAGE_SIZE, CommandSpec, RunCommand
from ..shared import contract
from ..shared.clock import SYSTEM_CLOCK, Clock
from ..shared.events import RunRequest
from ..shared.invocations import InvalidEvent
from ..shared.observability import in_this_trace, logger
from ..shared.partitions import registries_for
from ..shared.reasons import Reason
from ..shared.report import InstanceResult, Report, TargetResult, short
from ..shared.settings import RunnerSettings
from .execution import Execution, dry_run_results
from .planning import plan_dispatches
from .progress import RunProgress

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# Kept back from the Lambda deadline for the last collection, the log and SNS:
# a fixed part plus time for each page of ListCommandInvocations (LIST_PAGE_SIZE instances).
RESERVE_SECONDS = 15.0
RESERVE_SECONDS_PER_PAGE = 0.25
# Pairs run at once, each on its thread (the rest wait for a free one). Every pair's calls are
# few and mostly waiting (polls with back-off), so threads, not processes. The bound is memory:
# a pair's three clients weigh about 2 MiB, so 50 pairs take about 100 MiB of the function's 512.
MAX_CONCURRENT_PAIRS = 50
# A pair still waiting for a thread this close to the Lambda deadline (less the reserve) is not
# started: its discovery and sends could not be reported in time. It is reported unreached,
# ``not_sent_before_deadline``; the next run covers it.
PAIR_START_SECONDS = 30.0
# Why a command reached no instance that passes by itself: Run Command's "Rate Exceeded" canceled it
# before it ran anywhere (the account's pending invocations). A run of instance events tries again.
RETRIED_REASONS = frozenset({Reason.RATE_EXCEEDED})
# What EC2 and SSM answer credentials they do not accept in a region (a region not enabled for the
# account, ...): the pair is unreachable, not a failed run.
REGION_REFUSALS = frozenset(
    {"UnrecognizedClientException", "AuthFailure", "OptInRequired", "InvalidClientTokenId"}
)


def run(
    request: RunRequest,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    remaining_millis: int,
    clock: Clock | None = None,
    not_online_in_time: Mapping[Pair, Mapping[str, Mapping[str, str | int]]] | None = None,
    home: Pair | None = None,
    instances_by_pair: Mapping[Pair, tuple[str, ...]] | None = None,
    pair_targets: Sequence[Target] | None = None,
    run_id: str | None = None,
    publish_report: bool = True,
    retryable: Mapping[Pair, frozenset[str]] | None = None,
) -> Report:
    """``not_online_in_time``: new instances waited for until the readiness bound (``triggers``),
    by pair, with the detail to report if they are still not online. ``home``: the function's own
    account and region (from its ARN; None: asked of STS). A run of instance events names its pairs
    (``pair_targets``, already known) and each pair's instances (``instances_by_pair``), and so does
    a child of the organization's state machine (its batch of the plan, ``organization_run``), which
    also runs under its whole run's ``run_id`` and leaves publishing to the merge
    (``publish_report=False``); any other run finds its pairs itself. ``retryable``: by pair, the
    instances whose events may come again; one whose command Run Command refused for a passing cause
    (``RETRIED_REASONS``) is returned in the report's ``retried`` instead of being reported. Raises
    ``InvalidEvent`` when the event narrows to an account or region the stack does not cover, before
    anything is sent."""
    clock = clock or SYSTEM_CLOCK  # looked up here: tests and benchmarks replace runner.SYSTEM_CLOCK
    started_at, started = clock.now(), clock.monotonic()
    run_id = run_id or new_run_id()
    options = RunOptions.resolve(request, settings)
    logger.append_keys(run_id=run_id, action=options.action, source=request.source)
    home = home or own_pair(factory)
    organization = organization_mode(settings)

    error: dict[str, str] | None = None
    try:
        # 0. Which (account, region) pairs: the own one, and the StackSet's stack instances.
        if pair_targets is not None:
            chosen = list(pair_targets)
        else:
            chosen = targets(request, settings, home, factory.cloudformation() if organization else None)
    except InvalidEvent:
        raise
    except Exception as failure:  # the pairs are unknown: nothing is sent anywhere
        logger.exception("could not list the StackSet's stack instances")
        chosen, error = [], run_error(failure)
    pair_run = _PairRun(request, settings, options, factory, clock, run_id, started, remaining_millis, home)
    pair_run.not_online_in_time = not_online_in_time or {}
    compliance_type = contract.compliance_type(settings.stack_name)
    pair_run.compliance_run = ComplianceRun(run_id, options.action, started_at, compliance_type)
    pair_run.instances_by_pair = instances_by_pair
    pair_run.retryable = retryable or {}
    runs = _run_all(chosen, pair_run, clock)

    # 5. Report: returned, logged, counted and published per the notify policy.
    if error is None:
        error = next((_located(r, organization) for r in runs if r.error is not None), None)
    instances = _merged(runs, request.instance_ids)
    if not runs and request.instance_ids:  # the pairs are unknown: every requested instance failed
        instances = [
            InstanceResult(i, "", "failed", None, Reason.RUN_FAILED, {}, home.account, home.region)
            for i in request.instance_ids
        ]
    report = Report(
        run_id=run_id,
        action=options.action,
        dry_run=request.dry_run,
        source=request.source,
        started_at=iso(started_at),
        finished_at=iso(clock.now()),
        instances=tuple(instances),
        command_ids=tuple(command for r in runs for command in r.command_ids),
        error=error,
        targets=tuple(r.target for r in runs) if organization else None,
        retried=tuple(instance for r in runs for instance in r.retried),
        compliance=None
        if request.dry_run
        else ComplianceTally.combined(
            compliance_type, (r.compliance for r in runs if r.compliance)
        ).to_dict(),
    )
    if publish_report:
        publish(report, settings, factory.sns(), duration_seconds=clock.monotonic() - started)
    return report


@dataclass
class _Outcome:
    """What one pair's sequence came to."""

    target: TargetResult
    instances: list[InstanceResult] = field(default_factory=list)
    command_ids: tuple[str, ...] = ()
    error: dict[str, str] | None = None
    retried: list[InstanceResult] = field(default_factory=list)
    compliance: ComplianceTally | None = None  # what this pair wrote to SSM Compliance (None: nothing)


def _run_all(chosen: Sequence[Target], pair_run: _PairRun, clock: Clock) -> list[_Outcome]:
    """Every pair's sequence at once; a pair that cannot be reached is reported and the rest go on.

    First each member account's role is assumed (one AssumeRole per account, the accounts at
    once), then each pair whose account was reached runs today's sequence, all at once, each on
    its thread, within the one deadline."""
    refused: dict[str, dict[str, str]] = {}
    accounts = sorted({t.pair.account for t in chosen if t.ready and not t.home})
    for account, refusal in zip(
        accounts,
        clock.concurrently(
            [in_this_trace(partial(pair_run.reach, a)) for a in accounts], MAX_CONCURRENT_PAIRS
        ),
        strict=True,
    ):
        if refusal is not None:
            refused[account] = refusal
    outcomes: dict[Pair, _Outcome] = {}
    runnable = []
    for target in chosen:
        if not target.ready:
            outcomes[target.pair] = pair_run.unreachable(target, target.reason, target.detail)
        elif not target.home and target.pair.account in refused:
            detail = refused[target.pair.account]
            outcomes[target.pair] = pair_run.unreachable(target, Reason.ROLE_NOT_ASSUMABLE, detail)
        else:
            runnable.append(target)
    for target, outcome in zip(
        runnable,
        clock.concurrently([in_this_trace(partial(pair_run, t)) for t in runnable], MAX_CONCURRENT_PAIRS),
        strict=True,
    ):
        outcomes[target.pair] = outcome
    return [outcomes[target.pair] for target in chosen]


class _PairRun:
    """The sequence for one (account, region): discover, leave out the busy, plan, send/wait/collect."""

    def __init__(  # noqa: PLR0917 - the run's shared state, handed over once
        self,
        request: RunRequest,
        settings: RunnerSettings,
        options: RunOptions,
        factory: ClientFactory,
        clock: Clock,
        run_id: str,
        started: float,
        remaining_millis: int,
        home: Pair,
    ) -> None:
        self.request, self.settings, self.options, self.factory = request, settings, options, factory
        self.home = home
        self.clock, self.run_id, self.started, self.remaining_millis = (
            clock,
            run_id,
            started,
            remaining_millis,
        )
        self.tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
        # Per pair: new instances past their readiness bound; the instances each pair's run is for.
        self.not_online_in_time: Mapping[Pair, Mapping[str, Mapping[str, str | int]]] = {}
        self.instances_by_pair: Mapping[Pair, tuple[str, ...]] | None = None
        self.retryable: Mapping[Pair, frozenset[str]] = {}
        # What each pair's SSM Compliance items say of the run (None: none are written).
        self.compliance_run: ComplianceRun | None = None

    def unreachable(self, target: Target, reason: Reason | None, detail: Mapping[str, Any]) -> _Outcome:
        """A pair the run could not reach. Its target's detail carries the stack instance's status
        when that is not CURRENT (whatever kept the pair out). In a run of instance events each
        instance the events named there is reported too, unreachable for the pair's reason: an event
        is never consumed without a trace (the summary counts it, the e-mail gives the next step)."""
        pair = target.pair
        detail = {**target.stack_instance, **detail}
        result = _Outcome(TargetResult(pair.account, pair.region, "unreachable", reason, detail))
        if self.instances_by_pair is not None and reason is not None:
            result.instances = [
                InstanceResult(i, "", "unreachable", None, reason, dict(detail), pair.account, pair.region)
                for i in self.instances_by_pair.get(pair, ())
            ]
        return result

    def reach(self, account: str) -> dict[str, str] | None:
        """Assume the member role in ``account``; None, or what STS said (no secret: code and message)."""
        try:
            self.factory.assume_role(account, self.settings.member_role_name)
        except AWS_ERRORS as refusal:
            logger.warning("could not assume the member role", extra={"account_id": account})
            return {"error": error_code(refusal), "message": short(str(refusal))}
        return None

    def __call__(self, target: Target) -> _Outcome:
        pair = target.pair
        if organization_mode(self.settings):
            logger.thread_safe_append_keys(account_id=pair.account, region=pair.region)
        try:
            return self._run(target)
        finally:
            if organization_mode(self.settings):
                logger.thread_safe_clear_keys()

    def _run(self, target: Target) -> _Outcome:
        pair, request, settings, clock = target.pair, self.request, self.settings, self.clock
        last_start = self.started + self.remaining_millis / 1000 - RESERVE_SECONDS - PAIR_START_SECONDS
        if not target.home and clock.monotonic() > last_start:
            logger.warning("no time left to start this pair", extra={"account_id": pair.account})
            return self.unreachable(target, Reason.NOT_SENT_BEFORE_DEADLINE, {})
        # A run of instance events looks for each pair's own instances; any other for the event's.
        requested = request.instance_ids
        if self.instances_by_pair is not None:
            requested = self.instances_by_pair.get(pair, ())
        progress = RunProgress(requested=requested)
        error: dict[str, str] | None = None
        offered: dict[str, Any] = {}
        aws: AwsClients | None = None
        try:
            if target.home:
                aws = self.factory.clients_for()
            else:
                aws = self.factory.clients_for(pair.account, pair.region, role_name=settings.member_role_name)
            fleet, commands = Fleet(aws.ec2, aws.ssm), RunCommand(aws.ssm, aws.ssm_send, clock)
            # 1. Discover the tagged running fleet (or the requested instances); some are reported only.
            try:
                members = fleet.discover(self.tag, requested)
            except AWS_ERRORS as refusal:
                if target.home or error_code(refusal) not in REGION_REFUSALS:
                    raise
                detail = {"error": error_code(refusal), "message": short(str(refusal))}
                return self.unreachable(target, Reason.REGION_UNREACHABLE, detail)
            # A member pair runs the agent document its stack offers (its stack instance may be mid-update).
            spec, document = self._spec(target, None), None
            if not target.home:
                chosen = self._member_document(target, aws.ssm, spec)
                if isinstance(chosen, _Outcome):
                    return chosen
                document, spec = chosen, self._spec(target, chosen)
            offered = _offered(target, document, settings.member_document_name)
            candidates = progress.discovered(members)
            progress.not_online_in_time(self.not_online_in_time.get(pair, {}))
            # 2. Leave out the instances another run's command is still working on.
            busy = _busy(commands, spec.document_name, candidates)
            targetable = progress.leave_out_busy(candidates, busy)
            # 3. Plan the SendCommand calls; the rate budget holds for the whole run (of this pair).
            plan = plan_dispatches(
                targetable,
                # A tag command would reach the busy instances too: send to the others by id.
                narrowed=requested is not None or bool(busy),
                max_concurrency=settings.max_concurrency,
                max_errors=settings.max_errors,
            )
            logger.info(
                "plan",
                extra={"targetable": len(targetable), "busy": len(busy), "dispatches": plan.describe()},
            )
            # 4. Send, wait and collect until the deadline; a dry run only reports the plan.
            if request.dry_run:
                progress.commanded = dry_run_results(plan)
            else:
                progress.execution = Execution(commands, spec, self.tag, clock, fleet)
                stop_at = _stop_at(
                    self.options, self.started, self.remaining_millis, len(targetable), len(members)
                )
                progress.commanded = progress.execution.carry_out(plan, stop_at)
        except Exception as failure:  # whatever stops a run, the operator hears of it
            logger.exception("the run failed before it could report per instance")
            error = run_error(failure)
        return self._finish(target, progress, error, offered, aws)

    def _finish(
        self,
        target: Target,
        progress: RunProgress,
        error: dict[str, str] | None,
        offered: dict[str, Any],
        aws: AwsClients | None,
    ) -> _Outcome:
        """The pair's outcome: its instances (those to come again set apart), its target, and what it
        wrote to SSM Compliance."""
        pair, clock = target.pair, self.clock
        instances = [
            replace(instance, account_id=pair.account, region=pair.region)
            for instance in progress.instances(failed=error is not None)
        ]
        retryable = self.retryable.get(pair, frozenset())
        retried = [i for i in instances if i.reason in RETRIED_REASONS and i.instance_id in retryable]
        instances = [i for i in instances if i not in retried]
        reason = None if error is None else Reason.RUN_FAILED
        detail = {} if error is None else {"code": error["code"], "message": error["message"]}
        reached = TargetResult(pair.account, pair.region, "reached", reason, {**offered, **detail})
        compliance = None
        if aws is not None and self.compliance_run is not None and not self.request.dry_run:
            # 5. Each instance's state in SSM Compliance, with this pair's own client (its member role).
            stop_at = self._deadline() - RESERVE_SECONDS
            gone: list[str] | str = []
            if error is None and self.request.instance_ids is None and self.instances_by_pair is None:
                # A whole-fleet run reported every instance the tag selects: the others lose their items.
                kept = {i.instance_id for i in instances} | {i.instance_id for i in retried}
                gone = departed(aws.ssm, kept, self.compliance_run)
            compliance = write_compliance(aws.ssm, instances, self.compliance_run, clock, stop_at=stop_at)
            clear_departed(aws.ssm, gone, self.compliance_run, clock, compliance, stop_at=stop_at)
        return _Outcome(reached, instances, progress.command_ids(), error, retried, compliance)

    def _deadline(self) -> float:
        return self.started + self.remaining_millis / 1000

    def _member_document(self, target: Target, ssm: SSMClient, spec: CommandSpec) -> str | _Outcome:
        """The agent document a member pair offers for ``spec``'s values, or the pair unreachable."""
        expected = self.settings.member_document_name
        chosen = MemberDocuments(ssm).choose(expected, spec.parameters)
        if chosen.name is not None:
            return chosen.name
        why = Reason.MEMBER_DOCUMENT_OUTDATED if chosen.outdated else Reason.MEMBER_DOCUMENT_MISSING
        return self.unreachable(target, why, {"document": expected, **chosen.outdated})

    def _spec(self, target: Target, document: str | None) -> CommandSpec:
        """The home pair sends the stack's own document; a member pair the StackSet's (``document``:
        the version its stack offers), at version 1. Every pair's output goes to ``OUTPUT_LOG_GROUP``:
        the member template creates a group of the central group's name in each member region, and
        its instance policy lets instances write to it (``infra/member_stack.py``)."""
        spec = self.options.command_spec(self.settings, self.run_id, target.pair)
        if target.home or document is None:
            return spec
        return replace(spec, document_name=document, document_version=MEMBER_DOCUMENT_VERSION)


def _offered(target: Target, document: str | None, expected: str) -> dict[str, Any]:
    """What a reached member pair's report target says of its stack: the stack instance's status when
    it is not CURRENT, and the document sent when it is not the one the stack expects."""
    offered: dict[str, Any] = {}
    if target.stack_instance:
        offered["stack_instance"] = dict(target.stack_instance)
    if document is not None and document != expected:
        offered["document"] = document
    return offered


def _merged(runs: Sequence[_Outcome], requested: tuple[str, ...] | None) -> list[InstanceResult]:
    """Every pair's instances in one list (``found_once``)."""
    instances = [instance for run in runs for instance in run.instances]
    if requested and len(runs) > 1:
        instances = found_once(instances)
    return sorted(instances, key=lambda i: (i.account_id, i.region, i.instance_id))


def found_once(instances: Sequence[InstanceResult]) -> list[InstanceResult]:
    """A requested instance is looked for in every pair: it is reported where it is, and
    ``instance_not_found`` only once (the first pair's) if it is nowhere."""
    found = {i.instance_id for i in instances if i.reason != Reason.INSTANCE_NOT_FOUND}
    kept, missing = [], set()
    for instance in instances:
        if instance.reason == Reason.INSTANCE_NOT_FOUND:
            if instance.instance_id in found or instance.instance_id in missing:
                continue
            missing.add(instance.instance_id)
        kept.append(instance)
    return kept


def _located(outcome: _Outcome, organization: bool) -> dict[str, str] | None:
    """A pair's run error as the report's ``error``; in an organization it names the pair."""
    if outcome.error is None or not organization:
        return outcome.error
    where = f"{outcome.target.account_id}/{outcome.target.region}: "
    return {**outcome.error, "message": short(where + outcome.error["message"])}


def own_pair(factory: ClientFactory) -> Pair:
    """The function's own account (STS) and region, when its ARN was not given."""
    return Pair(factory.sts().get_caller_identity()["Account"], factory.own_region())


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

    def command_spec(self, settings: RunnerSettings, run_id: str, pair: Pair | None) -> CommandSpec:
        """Every document parameter, always: the document's own defaults never apply to a run.
        ``pair``: where it is sent (``REGISTRIES`` left empty: that account's registry there)."""
        registries = self.registries
        if not registries:
            if pair is None:
                raise ValueError("REGISTRIES is empty: the registries depend on the (account, region)")
            registries = registries_for(settings, pair.account, pair.region)
        return CommandSpec(
            document_name=settings.document_name,
            document_version=settings.document_version,
            parameters={
                contract.ACTION: self.action,
                contract.REGISTRIES: ",".join(registries),
                contract.USERS: ",".join(self.users),
                contract.HELPER_VERSION: settings.helper_version,
                contract.RELEASE_BASE_URL: settings.release_base_url,
                contract.KEEP_USER_DOCKER_LOGIN: contract.BOOLEAN_VALUES[settings.keep_user_docker_login],
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


def _stop_at(
    options: RunOptions, started: float, remaining_millis: int, targetable: int, instances: int
) -> float:
    """When waiting must end: the run's wait, or the Lambda deadline less time to collect, write the
    instances' compliance and report."""
    reserve = (
        RESERVE_SECONDS
        + RESERVE_SECONDS_PER_PAGE * (targetable / LIST_PAGE_SIZE)
        + SECONDS_PER_INSTANCE * instances
    )
    return started + max(0.0, min(options.wait_seconds, remaining_millis / 1000 - reserve))


def new_run_id() -> str:
    """A run's id: in its report, and in the comment of every command it sends."""
    return str(uuid.uuid4())


def run_error(failure: Exception) -> dict[str, str]:
    text = short(str(failure)) or type(failure).__name__
    return {"reason": Reason.RUN_FAILED.value, "code": error_code(failure), "message": text}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
