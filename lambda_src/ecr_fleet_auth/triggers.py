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
from typing import TYPE_CHECKING, Any

from . import contract, runner
from .claims import COMMAND, REPORT, InstanceClaims, Wanted
from .clients import AWS_ERRORS, ClientFactory, Pair
from .clock import Clock
from .discovery import Fleet, TargetTag
from .events import RunRequest
from .instance_events import LOOKS_ATTRIBUTE, Arrival, InstanceEvents, Queue, parse
from .observability import logger
from .readiness import Triage, covering, online, triage
from .report import Report
from .run_command import RunCommand
from .settings import RunnerSettings

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
    function's own account and region, the one pair a run of instance events covers."""
    clock = clock or runner.current_clock()
    started = clock.monotonic()
    tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
    events = parse(event, tag)
    first = events.earliest()
    failures = set(events.rejected)
    for message_id, problem in events.rejected.items():
        logger.warning("not an instance event", extra={"message_id": message_id, "problem": problem})
    decided, report, put_back = Triage(), None, 0
    if first:
        action = settings.new_instance_action or settings.action
        # 1. Look: tag, state and ping status; for those online, the document's other commands.
        decided = _look(
            first,
            settings,
            factory,
            clock,
            action,
            can_wait=events.from_queue,
            home=home,
            looks=events.looks(),
        )
        # 2. Put back who must wait, before the run: the next look does not wait for this run's end.
        if decided.waiting and events.queue is not None:
            waiting = [first[i] for i in decided.waiting]
            refused = _put_back(factory.sqs_for(), events.queue, waiting, decided.waiting, events.looks())
            put_back = len(waiting) - len(refused)
            failures |= {m for i in refused for m in events.message_ids(i)}
        # 3. Claim the rest for their events: of two batches at once, one commands (or reports) each.
        if decided.run and settings.claim_table_name:
            left = remaining_millis - int((clock.monotonic() - started) * 1000)
            _claim(
                decided,
                events.latest(),
                settings=settings,
                factory=factory,
                clock=clock,
                remaining_millis=left,
            )
        # 4. Run the rest: an ordinary narrowed run.
        if decided.run:
            named = set(decided.run)
            request = RunRequest(
                source=_source(a for a in events.arrivals if a.instance_id in named),
                action=action,
                instance_ids=tuple(decided.run),
            )
            report = runner.run(
                request,
                _with_new_instance_rate(settings),
                factory=factory,
                remaining_millis=remaining_millis - int((clock.monotonic() - started) * 1000),
                clock=clock,
                not_online_in_time=decided.overdue,
                home=home,
            )
            if report.error is not None:  # delivered again; the run's report already says what failed
                failures |= {m for i in decided.run for m in events.message_ids(i)}
    _log(events, decided, put_back, failures, report)
    if events.from_queue:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failures)]}
    if report is not None:
        return report.to_dict()
    return {"instances_left_out": dict(decided.left_out)}


def _look(
    first: Mapping[str, Arrival],
    settings: RunnerSettings,
    factory: ClientFactory,
    clock: Clock,
    action: contract.Action,
    *,
    can_wait: bool,
    home: Pair | None = None,
    looks: Mapping[str, int] | None = None,
) -> Triage:
    """What becomes of each named instance (``readiness``), from EC2's and SSM's answers now."""
    tag = TargetTag(settings.target_tag_key, settings.target_tag_values)
    spec = runner.RunOptions.resolve(RunRequest(action=action), settings).command_spec(settings, "", home)
    aws = factory.clients_for()
    fleet, commands = Fleet(aws.ec2, aws.ssm), RunCommand(aws.ssm, aws.ssm_send, clock)
    since = {instance_id: arrival.time for instance_id, arrival in first.items()}
    members = fleet.discover(tag, list(first))
    ready = {i: since[i] for i in online(members)}
    busy = _read(
        "commands still running", lambda: commands.busy_instances(settings.document_name, list(ready))
    )
    covered = _read(
        "commands since the events",
        lambda: covering(commands, settings.document_name, spec.parameters, ready),
    )
    return triage(
        members,
        since,
        busy=busy,
        covered=covered,
        now=clock.now(),
        bound_seconds=settings.new_instance_readiness_seconds,
        can_wait=can_wait,
        looks=looks,
        most_looks=most_looks(settings.new_instance_readiness_seconds),
    )


def _claim(
    decided: Triage,
    latest: Mapping[str, datetime],
    *,
    settings: RunnerSettings,
    factory: ClientFactory,
    clock: Clock,
    remaining_millis: int,
) -> None:
    """Claim each instance about to be run (``claims``); leave out, unreported, those another run holds.

    An instance past its readiness bound is claimed to be reported, the others to be commanded."""
    now = clock.now()
    wanted = [Wanted(i, latest[i], REPORT if i in decided.overdue else COMMAND) for i in decided.run]
    claimed = InstanceClaims(factory.dynamodb(), settings.claim_table_name).claim(
        wanted,
        now=now,
        deadline=now + timedelta(milliseconds=remaining_millis),
        readiness_seconds=settings.new_instance_readiness_seconds,
    )
    for instance_id in claimed.held:
        decided.run.remove(instance_id)
        decided.overdue.pop(instance_id, None)
        decided.left_out[instance_id] = CLAIMED_BY_ANOTHER_RUN
    if claimed.held:
        held = dict(sorted(claimed.held.items())[:50])
        logger.info("instances claimed by another run", extra={"claims_held": held})


def _with_new_instance_rate(settings: RunnerSettings) -> RunnerSettings:
    """The run's rate: ``newInstanceMaxConcurrency`` over its instances (empty: ``maxConcurrency``).

    At the fleet's ``10%`` a burst of 50 new instances would run 5 at a time, and its runs would
    hold the event source mapping's two slots long enough to miss the two-minute goal (README,
    Latency and limits); ``maxErrors`` applies as to any run."""
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
    seconds_left: Mapping[str, float],
    looks: Mapping[str, int],
) -> set[str]:
    """Send each waiting instance's event to the queue again, delayed, with one more look counted;
    returns the instances refused."""
    try:
        url = sqs.get_queue_url(QueueName=queue.name, QueueOwnerAWSAccountId=queue.account)["QueueUrl"]
    except AWS_ERRORS as error:
        logger.warning("could not find the queue to put events back", extra={"error": str(error)})
        return {arrival.instance_id for arrival in waiting}
    refused: set[str] = set()
    for start in range(0, len(waiting), SEND_BATCH_ENTRIES):
        chunk = waiting[start : start + SEND_BATCH_ENTRIES]
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "MessageBody": arrival.body,
                "DelaySeconds": recheck_delay(seconds_left[arrival.instance_id]),
                "MessageAttributes": {
                    LOOKS_ATTRIBUTE: {
                        "DataType": "Number",
                        "StringValue": str(looks.get(arrival.instance_id, 0) + 1),
                    }
                },
            }
            for index, arrival in enumerate(chunk)
        ]
        try:
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except AWS_ERRORS as error:
            logger.warning("could not put events back", extra={"error": str(error)})
            refused |= {arrival.instance_id for arrival in chunk}
            continue
        refused |= {chunk[int(failed["Id"])].instance_id for failed in answer.get("Failed", [])}
    return refused


def recheck_delay(seconds_left: float) -> int:
    """The next look: ``RECHECK_SECONDS`` from now, or just past the readiness bound if that comes first."""
    return max(0, min(RECHECK_SECONDS, math.ceil(seconds_left) + 1, MAX_DELAY_SECONDS))


def _log(
    events: InstanceEvents, decided: Triage, put_back: int, failures: set[str], report: Report | None
) -> None:
    logger.info(
        "instance events",
        extra={
            "instance_events": {
                "arrivals": len(events.arrivals),
                "instances": len({a.instance_id for a in events.arrivals}),
                "rejected": len(events.rejected),
                "ignored": len(events.ignored),
                "run": len(decided.run),
                "not_online_in_time": len(decided.overdue),
                "waiting": len(decided.waiting),
                "put_back": put_back,
                "left_out": dict(sorted(decided.left_out.items())[:50]),
                "batch_item_failures": len(failures),
                "run_id": report.run_id if report is not None else None,
            }
        },
    )
