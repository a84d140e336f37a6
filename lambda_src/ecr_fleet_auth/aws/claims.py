"""Claims on instances for their events: of two runs of instance events at once, one commands an instance.

Two batches of the event source mapping run at once (``MaximumConcurrency`` 2, the least SQS
allows), and each looks (``readiness``: ListCommands, DescribeInstanceInformation) before it
sends: the look cannot see a command the other batch has yet to send, so two batches holding
events of one instance — a repeated event, both rules' events for one launch — could both
command it, or both report a never-online instance ``not_online_in_time``. So before a run of
instance events sends to an instance, or reports it not online in time, it *claims* the
instance for its event with one conditional ``PutItem`` on the stack's claim table: "Individual
write operations such as UpdateItem are atomic and always operate on the most recent version of
the item, regardless of concurrency" and a conditional write fails when its condition does not
hold ("Best practices for handling concurrent updates in DynamoDB",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/BestPractices_ImplementingVersionControl.html;
"Condition expressions", .../Expressions.ConditionExpressions.html), so of two runs claiming one
instance for one event exactly one succeeds and the other gets ``ConditionalCheckFailedException``.
The instance the other run claimed is left out, unreported: the claiming run reports it.

One item per instance (partition key ``instance``: ``<account>/<region>/<instance id>``, since a run of
instance events covers every account and region of an organization):

* ``claimed_at``: when the claim was made. A claim **covers every event up to that moment**: a
  command sent after it reaches the instance after each of those events (a repeat, the other
  rule's event, an event put back to wait). An event *after* it — the instance stopped and
  started hours later, or tagged again — is not covered: its run claims anew and commands it.
* ``purpose``: ``command`` (the run sends to it) or ``report`` (the run reports it not online in
  time). A ``report`` claim does not stop a command: an instance that comes online after one
  chain of its events gave up on it is still commanded by the next.
* ``expires_at`` (the table's TTL attribute, epoch seconds): after it the claim counts as
  absent, so a claim left by a run that crashed before sending blocks nothing for long. A
  ``command`` claim lasts until the claiming invocation's deadline plus ``MARGIN_SECONDS``: by
  then the command is sent (and listed by ListCommands, which ``readiness.covering`` reads) or
  the run is over; the crashed run's records come back only after the queue's visibility timeout
  (about 90 minutes), when the claim has expired. A ``report`` claim lasts
  ``newInstanceReadinessSeconds`` plus a whole invocation (``LAMBDA_TIMEOUT_SECONDS``) more:
  every other chain of events up to the claim has reached its own readiness bound by then (each
  is put back at most ``RECHECK_SECONDS`` beyond it, then waits at most one run for a batch slot).

DynamoDB deletes expired items in the background, "typically within two days of expiration"
("Items that have expired and not been deleted will still show up in reads, queries, and
scans", UpdateTimeToLive, Amazon DynamoDB API Reference; "Working with expired items",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html): TTL only
keeps the table small. The condition compares ``expires_at`` with the runner's own clock, so an
expired item not deleted yet counts as absent.

Why not Powertools' idempotency utility: it keys a record on the payload (here the event) and
holds it for a fixed ``expires_after_seconds``; the two events of one launch (running, tag
change) and a put-back event differ as payloads, and "covered" here is a question of *time*
(was the claim made after this event?), not of equal payloads. A conditional write on the
instance id says exactly that, in one call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from ..shared import contract
from ..shared.observability import logger
from ..shared.settings import LAMBDA_TIMEOUT_SECONDS
from .clients import AWS_ERRORS, Pair, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Purpose = Literal["command", "report"]
COMMAND: Purpose = "command"
REPORT: Purpose = "report"
# The table's key and its TTL attribute (infra/claim_table.py creates the table with these).
KEY = contract.CLAIM_KEY
TTL_ATTRIBUTE = contract.CLAIM_TTL_ATTRIBUTE
# A command claim outlives its invocation by this much: ListCommands lists the command by then.
MARGIN_SECONDS = 60
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
_NAMES = {"#id": KEY, "#at": "claimed_at", "#expires": TTL_ATTRIBUTE, "#purpose": "purpose"}
# Free: no item; a claim made before the event; an expired claim (DynamoDB deletes those late).
_FREE = "attribute_not_exists(#id) OR #at < :event OR #expires <= :now"
CONDITIONS: Mapping[Purpose, str] = {
    REPORT: _FREE,
    COMMAND: f"{_FREE} OR #purpose = :report",  # having given up on it does not stop a command
}


@dataclass(frozen=True)
class Wanted:
    """A claim a run wants: on this instance of ``pair``, for its events up to ``event_time``, to do
    ``purpose``."""

    pair: Pair
    instance_id: str
    event_time: datetime
    purpose: Purpose

    @property
    def key(self) -> str:
        return claim_key(self.pair, self.instance_id)


def claim_key(pair: Pair, instance_id: str) -> str:
    """The claim table's key of an instance: ``<account>/<region>/<instance id>``."""
    return f"{pair.account}/{pair.region}/{instance_id}"


@dataclass(frozen=True)
class Claims:
    """What came of a run's claims."""

    granted: tuple[tuple[Pair, str], ...] = ()
    # (pair, instance id) -> the other run's claim that covers this run's event (for the log).
    held: Mapping[tuple[Pair, str], Mapping[str, str]] = field(default_factory=dict)
    # Claims that could not be written (DynamoDB refused): the run goes on as if granted.
    unknown: tuple[tuple[Pair, str], ...] = ()


class InstanceClaims:
    """The stack's claim table (its name: the ``claimTableName`` runner setting)."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name

    def claim(
        self, wanted: Iterable[Wanted], *, now: datetime, deadline: datetime, readiness_seconds: int
    ) -> Claims:
        """One conditional PutItem per instance. ``deadline``: the claiming invocation's end."""
        granted: list[tuple[Pair, str]] = []
        held: dict[tuple[Pair, str], Mapping[str, str]] = {}
        unknown: list[tuple[Pair, str]] = []
        for claim in wanted:
            which = (claim.pair, claim.instance_id)
            expires = deadline.timestamp() + MARGIN_SECONDS
            if claim.purpose == REPORT:
                expires = now.timestamp() + readiness_seconds + LAMBDA_TIMEOUT_SECONDS
            try:
                self.dynamodb.put_item(
                    TableName=self.table_name,
                    Item={
                        KEY: {"S": claim.key},
                        "instance_id": {"S": claim.instance_id},
                        "account_id": {"S": claim.pair.account},
                        "region": {"S": claim.pair.region},
                        "claimed_at": {"N": _number(now.timestamp())},
                        "event_time": {"N": _number(claim.event_time.timestamp())},
                        "purpose": {"S": claim.purpose},
                        TTL_ATTRIBUTE: {"N": str(math.ceil(expires))},
                    },
                    ConditionExpression=CONDITIONS[claim.purpose],
                    ExpressionAttributeNames=_names(claim.purpose),
                    ExpressionAttributeValues={
                        ":event": {"N": _number(claim.event_time.timestamp())},
                        ":now": {"N": _number(now.timestamp())},
                        **({":report": {"S": REPORT}} if claim.purpose == COMMAND else {}),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except AWS_ERRORS as error:
                if error_code(error) == CONDITIONAL_CHECK_FAILED:
                    item = getattr(error, "response", {}).get("Item", {})
                    held[which] = {name: next(iter(v.values())) for name, v in item.items()}
                    continue
                logger.warning(
                    "could not claim an instance; going on without",
                    extra={"instance": claim.key, "error": str(error)},
                )
                unknown.append(which)
                continue
            granted.append(which)
        return Claims(tuple(granted), held, tuple(unknown))

    def release(self, keys: Iterable[tuple[Pair, str]], claimed_at: datetime) -> None:
        """Withdraw this run's claims (made at ``claimed_at``) on instances its command never ran on,
        so their events, put back, are commanded by the run that looks next. A claim made since by
        another run is left alone (the condition), and a failed delete only delays: the claim expires."""
        for pair, instance_id in keys:
            try:
                self.dynamodb.delete_item(
                    TableName=self.table_name,
                    Key={KEY: {"S": claim_key(pair, instance_id)}},
                    ConditionExpression="#at = :at",
                    ExpressionAttributeNames={"#at": "claimed_at"},
                    ExpressionAttributeValues={":at": {"N": _number(claimed_at.timestamp())}},
                )
            except AWS_ERRORS as error:
                if error_code(error) != CONDITIONAL_CHECK_FAILED:
                    logger.warning(
                        "could not release a claim; it expires by itself",
                        extra={"instance": claim_key(pair, instance_id), "error": str(error)},
                    )


def _names(purpose: Purpose) -> dict[str, str]:
    """The names the purpose's condition uses (DynamoDB refuses unused ones)."""
    return {name: value for name, value in _NAMES.items() if name in CONDITIONS[purpose]}


def _number(seconds: float) -> str:
    """Epoch seconds to the millisecond, as DynamoDB's number."""
    return f"{seconds:.3f}"
