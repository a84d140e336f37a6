"""A run of instance events, top to bottom in ``handle``: read, look, put back who must wait, run, answer.

The stack's EventBridge rules send ``EC2 Instance State-change Notification`` (state
``running``) and ``Tag Change on Resource`` (target tag gained) to an SQS queue; the queue's
event source mapping hands the runner batches of them (``instance_events``). One batch is
one narrowed run — an ordinary ``RunRequest`` with ``instance_ids``, the new-instance action
and ``source`` saying which kind of event named them — so it is discovered, planned, sent
(up to 50 ids per SendCommand, the rate budget over the whole run), followed, reported,
counted and published exactly like a manual narrowed run — at its own rate,
``newInstanceMaxConcurrency`` (default ``50``: a burst runs one SendCommand's worth at a
time, not the fleet's ``10%``), with the stack's ``maxErrors``.

Before the run, one look at the named instances decides who is run now (``readiness``):

* an instance not yet online in SSM (the ``running`` event comes before the agent
  registers) is *put back*: its event is sent to the queue again with a delay of
  ``RECHECK_SECONDS`` (SQS ``DelaySeconds``), so the next batch looks again — no loop runs
  while nothing launches. Its record is done with; the put-back event keeps the original
  ``time``, so ``newInstanceReadinessSeconds`` counts from the event, however often it
  comes back. Past that bound it is run once more and, still not online, reported
  ``unreachable`` / ``not_online_in_time``. This is a loop by design through the queue that
  invokes the function (Lambda's "chain of requests"): the stack lets it run
  (``RecursiveLoop: Allow``; Lambda would stop it at about 16 invocations, before the bound) and
  the runner ends every chain itself, by the bound and by the looks it counts on the message
  (``LOOKS_ATTRIBUTE``, at most ``most_looks``: an event that cannot age still ends);
* repeated events for one instance in a batch collapse into one; an instance a command
  with the same parameters already reached after its event is left out (``readiness.covering``);
  one another command is still working on waits like one not online. So a burst, a
  repeated event or an overlap with a scheduled run does not command an instance twice.
  Two batches run at once, though, and each looks before either sends: so who is run now is
  then *claimed* for its events (``claims``, one conditional DynamoDB write per instance) —
  an instance the other batch's run claimed is left out, unreported, and that run commands or
  reports it. Without a claim table (``claimTableName`` empty) the agent's lock and its
  idempotence — a second run is ``unchanged`` — are the last line.

The answer to SQS is ``{"batchItemFailures": [...]}`` (``ReportBatchItemFailures``): records
that are not instance events, records whose put-back failed, and the records of a run that
failed before it could report, so SQS delivers them again (and after ``maxReceiveCount``
receives moves them to the dead-letter queue). Everything else is deleted. An event
delivered directly (no queue) gets the run's report back; an instance not online is then
run at once and reported as discovery finds it, since there is no queue to wait in.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ..aws import organization
from ..aws.claims import COMMAND, REPORT, InstanceClaims, Wanted, claim_key
from ..aws.clients import AWS_ERRORS, ClientFactory, Pair, error_code
from ..aws.discovery import Fleet, TargetTag
from ..aws.organization import Target
from ..aws.run_command import RunCommand
from ..run import runner
from ..shared import contract
from ..shared.clock import Clock
from ..shared.events import RunRequest
from ..shared.observability import in_this_trace, logger, metrics
from ..shared.report import Report
from ..shared.settings import RunnerSettings
from .instance_events import LOOKS_ATTRIBUTE, Arrival, InstanceEvents, Queue, parse
from .readiness import Triage, covering, online, triage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# Why an instance is left out, unreported, when another run of instance events claimed it first.
CLAIMED_BY_ANOTHER_RUN = "claimed_by_another_run"
# How long an instance not yet online waits before the next look (SQS DelaySeconds, at most 900).
RECHECK_SECONDS = 30
MAX_DELAY_SECONDS = 900
SEND_BATCH_ENTRIES = 10  # SendMessageBatch's limit


def most_looks(bound_seconds: int) -> int:
    """The looks a chain of put-backs may have: one per ``RECHECK_SECONDS`` of the readiness bound
    (every put-back waits that long, but the one that reaches just past the bound), plus the look
    that reports it. The bound ends a chain first; this ends one whose event never ages."""
    return math.ceil(bound_seconds / RECHECK_SECONDS) + 1


def handle(
    event: object,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    remaining_millis: int,
    clock: Clock | None = None,
    home: Pair | None = None,
) -> dict[str, Any]:
    """Raises ``InvalidEvent`` only when the invocation as a whole cannot be read. ``home``: the
    function's own account and region (its ARN's)."""
    clock = clock or runner.current_clock()
    started = clock.monotonic()
    tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
    events = parse(event, tag)
    arrived = events.earliest()
    failures = set(events.rejected)
    for message_id, problem in events.rejected.items():
        logger.warning("not an instance event", extra={"message_id": message_id, "problem": problem})
    decided: dict[Pair, Triage] = {}
    report, put_back, foreign, retried = None, 0, 0, 0
    not_covered: dict[str, str] = {}  # instance id -> where its event came from (a direct event's answer)
    if arrived:
        home = home or runner.own_pair(factory)
        # 0. Where: each instance in its event's (account, region); one this stack does not cover is
        # rejected, counted and logged (its record goes back to SQS, then to the dead letters).
        covered, unlisted = _covered(arrived, settings, home, factory)
        foreign = _reject_uncovered(arrived, covered, unlisted, events, failures, not_covered)
    if arrived:
        action = settings.new_instance_action or settings.action
        # 1. Look, in each (account, region): tag, state and ping status; for those online, the
        # document's other commands.
        looks = events.looks()
        decided, unlooked = _look_all(
            arrived,
            covered,
            settings=settings,
            factory=factory,
            clock=clock,
            action=action,
            can_wait=events.from_queue,
            looks=looks,
        )
        failures |= {m for pair in unlooked for i in arrived[pair] for m in events.message_ids(pair, i)}
        # 2. Put back who must wait, before the run: the next look does not wait for this run's end.
        waiting = [arrived[pair][i] for pair, t in decided.items() for i in t.waiting]
        if waiting and events.queue is not None:
            left = {(pair, i): seconds for pair, t in decided.items() for i, seconds in t.waiting.items()}
            refused = _put_back(factory.sqs_for(), events.queue, waiting, left, looks)
            put_back = len(waiting) - len(refused)
            failures |= {m for pair, i in refused for m in events.message_ids(pair, i)}
        # 3. Claim the rest for their events: of two batches at once, one commands (or reports) each.
        claimed_at = None
        if any(t.run for t in decided.values()) and settings.claim_table_name:
            claimed_at = _claim(
                decided,
                events.latest(),
                settings=settings,
                factory=factory,
                clock=clock,
                remaining_millis=remaining_millis - int((clock.monotonic() - started) * 1000),
            )
        # 4. Run the rest: one narrowed run over their (account, region) pairs.
        to_run = {pair: tuple(t.run) for pair, t in decided.items() if t.run}
        if to_run:
            named = {(pair, i) for pair, ids in to_run.items() for i in ids}
            request = RunRequest(
                source=_source(a for a in events.arrivals if a.key in named),
                action=action,
                instance_ids=tuple(dict.fromkeys(i for ids in to_run.values() for i in ids)),
            )
            report = runner.run(
                request,
                _with_new_instance_rate(settings),
                factory=factory,
                remaining_millis=remaining_millis - int((clock.monotonic() - started) * 1000),
                clock=clock,
                not_online_in_time={pair: t.overdue for pair, t in decided.items() if t.overdue},
                home=home,
                instances_by_pair=to_run,
                pair_targets=[covered[pair] for pair in to_run],
                retryable=_retryable(decided, events, looks, settings),
            )
            if report.error is not None:  # delivered again; the run's report already says what failed
                failures |= {m for pair, i in named for m in events.message_ids(pair, i)}
            # 5. Put back who the command missed for a passing cause (Rate Exceeded): the next look
            # commands it again, within the chain's bound of looks; the run that gives up reports it.
            if report.retried and events.queue is not None:
                again = [arrived[Pair(r.account_id, r.region)][r.instance_id] for r in report.retried]
                refused = _retry(
                    again,
                    events.queue,
                    looks=looks,
                    settings=settings,
                    factory=factory,
                    claimed_at=claimed_at,
                )
                retried = len(again) - len(refused)
                failures |= {m for pair, i in refused for m in events.message_ids(pair, i)}
    rejected = len(events.rejected) + foreign
    metrics.add_metric(name=contract.INSTANCE_EVENTS_REJECTED_METRIC, unit=MetricUnit.Count, value=rejected)
    _log(
        events,
        decided,
        put_back=put_back,
        failures=failures,
        report=report,
        rejected=rejected,
        retried=retried,
    )
    if events.from_queue:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failures)]}
    if report is not None:
        return report.to_dict()
    left_out = {i: why for t in decided.values() for i, why in t.left_out.items()}
    if not_covered:
        return {"instances_left_out": left_out, "instances_rejected": not_covered}
    return {"instances_left_out": left_out}


def _covered(
    arrived: Mapping[Pair, Any], settings: RunnerSettings, home: Pair, factory: ClientFactory
) -> tuple[dict[Pair, Target], set[Pair]]:
    """The pairs of ``arrived`` this stack covers, with what the run needs to know of each: its own
    pair, and in an organization the StackSet's stack instances (``organization.pair_targets``). If the
    StackSet cannot be listed, only the own pair is covered and the others are returned as unlisted
    (their records go back to SQS, to be looked at again)."""
    try:
        return organization.pair_targets(set(arrived), settings, home, factory), set()
    except AWS_ERRORS as error:
        logger.warning("could not list the StackSet's stack instances", extra={"error": str(error)})
        own = {home: Target(home, home=True)} if home in arrived else {}
        return own, set(arrived) - set(own)


def _reject_uncovered(  # noqa: PLR0917 - the handler's state, handed over once
    arrived: dict[Pair, dict[str, Arrival]],
    covered: Mapping[Pair, Target],
    unlisted: set[Pair],
    events: InstanceEvents,
    failures: set[str],
    not_covered: dict[str, str],
) -> int:
    """Take the pairs this stack does not cover out of ``arrived``; their records go back to SQS
    (``failures``). Those surely not covered are rejected and logged (``not_covered`` names their
    instances for a direct event's answer); returns how many events that is: a record is one, a
    direct event (no record) counts per instance. An unlisted pair (the StackSet could not be listed)
    is only looked at again on redelivery."""
    foreign = 0
    for pair in [p for p in arrived if p not in covered]:
        ids = sorted(arrived.pop(pair))
        records = {m for i in ids for m in events.message_ids(pair, i)}
        failures |= records
        if pair in unlisted:
            continue
        foreign += len(records) if events.from_queue else len(ids)
        not_covered.update(dict.fromkeys(ids, f"{pair.account}/{pair.region}: not covered by this stack"))
        logger.warning(
            "instance events from an account or region this stack does not cover",
            extra={"account_id": pair.account, "region": pair.region, "instances": ids[:50]},
        )
    return foreign


def _look_all(
    arrived: Mapping[Pair, Mapping[str, Arrival]],
    covered: Mapping[Pair, Target],
    *,
    settings: RunnerSettings,
    factory: ClientFactory,
    clock: Clock,
    action: contract.Action,
    can_wait: bool,
    looks: Mapping[tuple[Pair, str], int],
) -> tuple[dict[Pair, Triage], set[Pair]]:
    """Each pair's decisions, its look made at once with the others'; a member pair whose look failed
    is returned apart (its records go back to SQS). The own pair's failure fails the invocation."""
    pairs = list(arrived)

    def look(pair: Pair) -> Triage | None:
        target = covered[pair]
        try:
            return _look(
                arrived[pair],
                target,
                settings=settings,
                factory=factory,
                clock=clock,
                action=action,
                can_wait=can_wait,
                looks=looks,
            )
        except AWS_ERRORS as error:
            if target.home:
                raise
            logger.warning(
                "could not look at a member pair's new instances; SQS delivers their events again",
                extra={"account_id": pair.account, "region": pair.region, "error": str(error)},
            )
            return None

    tasks = [in_this_trace(partial(look, pair)) for pair in pairs]
    found = clock.concurrently(tasks, runner.MAX_CONCURRENT_PAIRS)
    decided = {pair: t for pair, t in zip(pairs, found, strict=True) if t is not None}
    return decided, {pair for pair, t in zip(pairs, found, strict=True) if t is None}


def _look(
    first: Mapping[str, Arrival],
    target: Target,
    *,
    settings: RunnerSettings,
    factory: ClientFactory,
    clock: Clock,
    action: contract.Action,
    can_wait: bool,
    looks: Mapping[tuple[Pair, str], int],
) -> Triage:
    """What becomes of each named instance of one pair (``readiness``), from EC2's and SSM's answers now.

    A member pair the run cannot reach (its stack instance has nothing to run on, its role is not
    assumable, it offers no agent document) is not looked at: its instances go to the run, which
    reports the pair unreachable in its ``targets``."""
    pair = target.pair
    if not target.ready:
        return Triage(run=list(first))
    spec = runner.RunOptions.resolve(RunRequest(action=action), settings).command_spec(settings, "", pair)
    if target.home:
        aws, document = factory.clients_for(), settings.document_name
    else:
        try:
            aws = factory.clients_for(pair.account, pair.region, role_name=settings.member_role_name)
        except AWS_ERRORS as refusal:
            if error_code(refusal) not in ("AccessDenied", "AccessDeniedException"):
                raise
            return Triage(run=list(first))
        chosen = organization.MemberDocuments(aws.ssm).choose(settings.member_document_name, spec.parameters)
        if chosen.name is None:
            return Triage(run=list(first))
        document = chosen.name
    tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
    fleet, commands = Fleet(aws.ec2, aws.ssm), RunCommand(aws.ssm, aws.ssm_send, clock)
    since = {instance_id: arrival.time for instance_id, arrival in first.items()}
    members = fleet.discover(tag, list(first))
    ready = {i: since[i] for i in online(members)}
    busy = _read("commands still running", lambda: commands.busy_instances(document, list(ready)))
    covered = _read("commands since the events", lambda: covering(commands, document, spec.parameters, ready))
    return triage(
        members,
        since,
        busy=busy,
        covered=covered,
        now=clock.now(),
        bound_seconds=settings.new_instance_readiness_seconds,
        can_wait=can_wait,
        looks={i: looks.get((pair, i), 0) for i in first},
        most_looks=most_looks(settings.new_instance_readiness_seconds),
    )


def _claim(
    decided: Mapping[Pair, Triage],
    latest: Mapping[tuple[Pair, str], datetime],
    *,
    settings: RunnerSettings,
    factory: ClientFactory,
    clock: Clock,
    remaining_millis: int,
) -> datetime:
    """Claim each instance about to be run (``claims``); leave out, unreported, those another run holds.
    Returns when the claims were made.

    An instance past its readiness bound is claimed to be reported, the others to be commanded."""
    now = clock.now()
    wanted = [
        Wanted(pair, i, latest[(pair, i)], REPORT if i in triaged.overdue else COMMAND)
        for pair, triaged in decided.items()
        for i in triaged.run
    ]
    claimed = InstanceClaims(factory.dynamodb(), settings.claim_table_name).claim(
        wanted,
        now=now,
        deadline=now + timedelta(milliseconds=remaining_millis),
        readiness_seconds=settings.new_instance_readiness_seconds,
    )
    for pair, instance_id in claimed.held:
        triaged = decided[pair]
        triaged.run.remove(instance_id)
        triaged.overdue.pop(instance_id, None)
        triaged.left_out[instance_id] = CLAIMED_BY_ANOTHER_RUN
    if claimed.held:
        held = {claim_key(pair, i): item for (pair, i), item in sorted(claimed.held.items())[:50]}
        logger.info("instances claimed by another run", extra={"claims_held": held})
    return now


def _retry(
    again: list[Arrival],
    queue: Queue,
    *,
    looks: Mapping[tuple[Pair, str], int],
    settings: RunnerSettings,
    factory: ClientFactory,
    claimed_at: datetime | None,
) -> set[tuple[Pair, str]]:
    """Put back the events of instances no command ran on, with one more look counted; their claims
    (nothing ran: they must not cover the events that come back) are withdrawn. Returns those refused."""
    if claimed_at is not None:
        claims = InstanceClaims(factory.dynamodb(), settings.claim_table_name)
        claims.release([a.key for a in again], claimed_at)
    seconds = {a.key: float(RECHECK_SECONDS) for a in again}
    return _put_back(factory.sqs_for(), queue, again, seconds, looks)


def _retryable(
    decided: Mapping[Pair, Triage],
    events: InstanceEvents,
    looks: Mapping[tuple[Pair, str], int],
    settings: RunnerSettings,
) -> dict[Pair, frozenset[str]]:
    """The instances to be commanded whose events may be put back once more if Run Command refuses
    the command for a passing cause: only from the queue, and only while the chain has looks left
    (``most_looks``, the bound every chain keeps)."""
    if not events.from_queue:
        return {}
    last = most_looks(settings.new_instance_readiness_seconds)
    return {
        pair: frozenset(i for i in t.run if i not in t.overdue and looks.get((pair, i), 0) + 1 < last)
        for pair, t in decided.items()
    }


def _with_new_instance_rate(settings: RunnerSettings) -> RunnerSettings:
    """The run's rate: ``newInstanceMaxConcurrency`` over its instances (empty: ``maxConcurrency``).

    At the fleet's ``10%`` a burst of 50 new instances would run 5 at a time, and its runs would
    hold the event source mapping's two slots long enough to miss the two-minute goal
    (docs/how-it-works/new-instances.md, Latency and limits); ``maxErrors`` applies as to any run."""
    if not settings.new_instance_max_concurrency:
        return settings
    return dataclasses.replace(settings, max_concurrency=settings.new_instance_max_concurrency)


def _source(arrivals: Iterable[Arrival]) -> contract.Source:
    """The kind of event that named the run's instances, or ``instance_events`` for both kinds."""
    kinds = {arrival.source for arrival in arrivals}
    return kinds.pop() if len(kinds) == 1 else contract.SOURCE_INSTANCE_EVENTS


def _read(what: str, look: Any) -> dict[str, str]:
    """A look at Run Command that may fail: without it the run goes on (the agent's lock is the last line)."""
    try:
        found: dict[str, str] = look()
    except AWS_ERRORS as error:
        logger.warning(f"could not read {what}; going on without", extra={"error": str(error)})
        return {}
    return found


def _put_back(
    sqs: SQSClient,
    queue: Queue,
    waiting: list[Arrival],
    seconds_left: Mapping[tuple[Pair, str], float],
    looks: Mapping[tuple[Pair, str], int],
) -> set[tuple[Pair, str]]:
    """Send each waiting instance's event to the queue again, delayed, with one more look counted;
    returns the instances refused."""
    try:
        url = sqs.get_queue_url(QueueName=queue.name, QueueOwnerAWSAccountId=queue.account)["QueueUrl"]
    except AWS_ERRORS as error:
        logger.warning("could not find the queue to put events back", extra={"error": str(error)})
        return {arrival.key for arrival in waiting}
    refused: set[tuple[Pair, str]] = set()
    for start in range(0, len(waiting), SEND_BATCH_ENTRIES):
        chunk = waiting[start : start + SEND_BATCH_ENTRIES]
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "MessageBody": arrival.body,
                "DelaySeconds": recheck_delay(seconds_left[arrival.key]),
                "MessageAttributes": {
                    LOOKS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(looks.get(arrival.key, 0) + 1)}
                },
            }
            for index, arrival in enumerate(chunk)
        ]
        try:
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except AWS_ERRORS as error:
            logger.warning("could not put events back", extra={"error": str(error)})
            refused |= {arrival.key for arrival in chunk}
            continue
        refused |= {chunk[int(failed["Id"])].key for failed in answer.get("Failed", [])}
    return refused


def recheck_delay(seconds_left: float) -> int:
    """The next look: ``RECHECK_SECONDS`` from now, or just past the readiness bound if that comes first."""
    return max(0, min(RECHECK_SECONDS, math.ceil(seconds_left) + 1, MAX_DELAY_SECONDS))


def _log(
    events: InstanceEvents,
    decided: Mapping[Pair, Triage],
    *,
    put_back: int,
    failures: set[str],
    report: Report | None,
    rejected: int,
    retried: int,
) -> None:
    def count(part: str) -> int:
        return sum(len(getattr(triaged, part)) for triaged in decided.values())

    left_out = {
        f"{pair.account}/{pair.region}/{i}": why
        for pair, t in decided.items()
        for i, why in t.left_out.items()
    }
    logger.info(
        "instance events",
        extra={
            "instance_events": {
                "arrivals": len(events.arrivals),
                "instances": len({a.key for a in events.arrivals}),
                "pairs": len({a.pair for a in events.arrivals}),
                "rejected": rejected,
                "ignored": len(events.ignored),
                "run": count("run"),
                "not_online_in_time": count("overdue"),
                "waiting": count("waiting"),
                "put_back": put_back,
                "retried": retried,
                "left_out": dict(sorted(left_out.items())[:50]),
                "batch_item_failures": len(failures),
                "run_id": report.run_id if report is not None else None,
            }
        },
    )
