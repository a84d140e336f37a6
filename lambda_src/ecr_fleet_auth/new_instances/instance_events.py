"""The EventBridge events that name new instances, delivered directly or as SQS records.

Two events, in the shapes AWS documents (samples in ``tests/events/``):

* ``EC2 Instance State-change Notification`` (source ``aws.ec2``): ``detail.instance-id`` and
  ``detail.state``. It carries no tags, so the run checks the target tag itself; only
  ``running`` names an instance (the stack's rule sends nothing else).
* ``Tag Change on Resource`` (source ``aws.tag``) for ``service`` ``ec2``, ``resource-type``
  ``instance``: the instance is the last part of each ARN in ``resources``;
  ``detail.tags`` holds the tags *after* the change. It names an instance only when the
  target tag is among ``changed-tag-keys`` and now holds an accepted value (what the
  stack's rule matches): a removed tag, or another value, names none.

Each names where it happened: the envelope's ``account`` and ``region`` (EventBridge keeps them
when it forwards an event bus to bus, across accounts and regions: EventBridge User Guide, "Sending
and receiving events between AWS accounts"), so each instance is looked for in its own (account,
region) pair.

Each SQS record's ``body`` is one such event (EventBridge sends the matched event as it
is). What is read must be there with its type (``null`` is never a value); fields AWS may
add are ignored. A record whose body is not such an event is *rejected*: the runner
returns it as a batch item failure, so SQS hands it to the dead-letter queue after its
receives. An event that names no instance for this stack (another state, the tag removed)
is *ignored*: its record is done with.

Nothing here calls AWS: the result says which instance each event named, since when,
and which record carried it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..aws.clients import Pair
from ..aws.discovery import TargetTag
from ..shared import contract
from ..shared.invocations import InvalidEvent
from ..shared.settings import ACCOUNT_ID_PATTERN

SQS_EVENT_SOURCE = "aws:sqs"
# The message attribute the runner counts its looks in when it puts an event back (none: 0 looks).
LOOKS_ATTRIBUTE = "ecr-fleet-auth-looks"
# arn:<partition>:ec2:<region>:<account>:instance/<id>
_INSTANCE_ARN = re.compile(r"^arn:aws[a-z-]*:ec2:[a-z0-9-]*:[0-9]{12}:instance/(i-[0-9a-f]{8,17})$")
# arn:<partition>:sqs:<region>:<account>:<name>
_QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:([0-9]{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)$")
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z$")
# Rejections name the record and say what is wrong, bounded like the runner's other messages.
MAX_PROBLEM_CHARS = 200


class NotAnInstanceEvent(ValueError):
    """The event is not one of the two, or lacks what the run reads; the message says what."""


@dataclass(frozen=True)
class Arrival:
    """One instance one event named: what kind of event, when it happened, which record carried it."""

    instance_id: str
    source: contract.Source  # instance_running or tag_change
    time: datetime
    body: str  # the event naming this instance alone, as it is put back in the queue to wait
    pair: Pair  # where it happened: the event's account and region
    message_id: str | None = None  # None: delivered directly, not through the queue
    looks: int = 0  # how often the runner already looked at this event (put it back to wait)

    @property
    def key(self) -> tuple[Pair, str]:
        return self.pair, self.instance_id


@dataclass(frozen=True)
class Queue:
    """The queue the records came from (the event source mapping's)."""

    account: str
    name: str


@dataclass(frozen=True)
class InstanceEvents:
    """What one invocation brought: the instances named, and every record's fate so far."""

    arrivals: tuple[Arrival, ...]
    queue: Queue | None = None  # None: an event delivered directly
    # SQS message id -> why the record is not an instance event (returned as a batch item failure).
    rejected: Mapping[str, str] = field(default_factory=dict)
    # SQS message ids of events that name no instance for this stack (done with).
    ignored: tuple[str, ...] = ()

    @property
    def from_queue(self) -> bool:
        return self.queue is not None

    def earliest(self) -> dict[Pair, dict[str, Arrival]]:
        """Per (account, region), one arrival per instance: its earliest event (a repeated event
        collapses into it)."""
        first: dict[Pair, dict[str, Arrival]] = {}
        for arrival in sorted(self.arrivals, key=lambda a: a.time):
            first.setdefault(arrival.pair, {}).setdefault(arrival.instance_id, arrival)
        return first

    def latest(self) -> dict[tuple[Pair, str], datetime]:
        """Each instance's latest event time (what a claim on it must cover: ``claims``)."""
        last: dict[tuple[Pair, str], datetime] = {}
        for arrival in self.arrivals:
            last[arrival.key] = max(arrival.time, last.get(arrival.key, arrival.time))
        return last

    def looks(self) -> dict[tuple[Pair, str], int]:
        """Each instance's most looks so far, over its events (the longest chain bounds them all)."""
        most: dict[tuple[Pair, str], int] = {}
        for arrival in self.arrivals:
            most[arrival.key] = max(arrival.looks, most.get(arrival.key, 0))
        return most

    def message_ids(self, pair: Pair, instance_id: str) -> list[str]:
        return [a.message_id for a in self.arrivals if a.key == (pair, instance_id) and a.message_id]


def parse(event: object, tag: TargetTag) -> InstanceEvents:
    """An SQS batch of EventBridge events, or one EventBridge event delivered directly.

    Raises ``InvalidEvent`` when the invocation as a whole cannot be read (a batch without
    records, a record without its message id, a direct event that is not one of the two);
    a single unreadable record is only rejected."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"invalid event: expected a JSON object, got {type(event).__name__}")
    if "Records" not in event:
        try:
            return InstanceEvents(tuple(_named(event, tag, body=None, message_id=None)))
        except NotAnInstanceEvent as problem:
            raise InvalidEvent(f"invalid event: {problem}") from None
    return _batch(event["Records"], tag)


def _batch(records: object, tag: TargetTag) -> InstanceEvents:
    if not isinstance(records, list) or not records:
        raise InvalidEvent("invalid event: Records: expected a non-empty list of SQS records")
    arrivals: list[Arrival] = []
    rejected: dict[str, str] = {}
    ignored: list[str] = []
    queues: set[Queue] = set()
    for index, record in enumerate(records):
        message_id = record.get("messageId") if isinstance(record, Mapping) else None
        if not isinstance(message_id, str) or not message_id:
            # Without its id a record cannot be returned alone: the whole batch is retried.
            raise InvalidEvent(f"invalid event: Records.{index}.messageId: expected the SQS message id")
        assert isinstance(record, Mapping)
        try:
            queues.add(_queue(record))
            named = _named(_body(record), tag, body=record["body"], message_id=message_id)
        except NotAnInstanceEvent as problem:
            rejected[message_id] = _bounded(str(problem))
            continue
        if named:
            looks = _looks(record)
            arrivals += [dataclasses.replace(arrival, looks=looks) for arrival in named]
        else:
            ignored.append(message_id)
    if len(queues) > 1:
        raise InvalidEvent("invalid event: Records: expected the records of one queue")
    return InstanceEvents(tuple(arrivals), next(iter(queues), None), rejected, tuple(ignored))


def _queue(record: Mapping[str, Any]) -> Queue:
    if record.get("eventSource") != SQS_EVENT_SOURCE:
        raise NotAnInstanceEvent(f"eventSource: expected {SQS_EVENT_SOURCE!r}")
    found = _QUEUE_ARN.match(str(record.get("eventSourceARN", "")))
    if not found:
        raise NotAnInstanceEvent("eventSourceARN: expected the ARN of an SQS queue")
    return Queue(account=found.group(1), name=found.group(2))


def _looks(record: Mapping[str, Any]) -> int:
    """The looks the runner counted on a message it put back (``LOOKS_ATTRIBUTE``); 0 otherwise.
    Not the runner's whole number there: someone else sent it; it counts as a fresh event."""
    attribute = record.get("messageAttributes", {})
    value = attribute.get(LOOKS_ATTRIBUTE, {}) if isinstance(attribute, Mapping) else {}
    text = value.get("stringValue") if isinstance(value, Mapping) else None
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def _body(record: Mapping[str, Any]) -> Mapping[str, Any]:
    body = record.get("body")
    if not isinstance(body, str):
        raise NotAnInstanceEvent("body: expected a string holding an EventBridge event")
    try:
        event = json.loads(body)
    except ValueError:
        raise NotAnInstanceEvent("body: not JSON") from None
    if not isinstance(event, Mapping):
        raise NotAnInstanceEvent("body: expected a JSON object (an EventBridge event)")
    return event


def _named(
    event: Mapping[str, Any], tag: TargetTag, *, body: str | None, message_id: str | None
) -> list[Arrival]:
    """The instances ``event`` names for this stack (none: it names none of ours)."""
    detail_type = _text(event, "detail-type")
    if detail_type == contract.STATE_CHANGE_DETAIL_TYPE:
        return _state_change(event, body, message_id)
    if detail_type == contract.TAG_CHANGE_DETAIL_TYPE:
        return _tag_change(event, tag, body, message_id)
    raise NotAnInstanceEvent(
        f"detail-type: {_shown(detail_type)} is not accepted; expected "
        f"{contract.STATE_CHANGE_DETAIL_TYPE!r} or {contract.TAG_CHANGE_DETAIL_TYPE!r}"
    )


def _state_change(event: Mapping[str, Any], body: str | None, message_id: str | None) -> list[Arrival]:
    _expect(event, "source", contract.EC2_EVENT_SOURCE)
    time, detail, pair = _time(event), _detail(event), _pair(event)
    instance_id, state = _instance_id(detail, "detail.instance-id"), _text(detail, "state", "detail.state")
    if state != "running":
        return []
    text = body if body is not None else json.dumps(event, separators=(",", ":"))
    return [Arrival(instance_id, contract.SOURCE_INSTANCE_RUNNING, time, text, pair, message_id)]


def _tag_change(
    event: Mapping[str, Any], tag: TargetTag, body: str | None, message_id: str | None
) -> list[Arrival]:
    _expect(event, "source", contract.TAG_EVENT_SOURCE)
    time, detail, pair = _time(event), _detail(event), _pair(event)
    if _text(detail, "service", "detail.service") != "ec2":
        return []
    if _text(detail, "resource-type", "detail.resource-type") != "instance":
        return []
    changed, tags = detail.get("changed-tag-keys"), detail.get("tags")
    if not isinstance(changed, list) or not all(isinstance(key, str) for key in changed):
        raise NotAnInstanceEvent("detail.changed-tag-keys: expected a list of tag keys")
    if not isinstance(tags, Mapping):
        raise NotAnInstanceEvent("detail.tags: expected an object of the tags after the change")
    if tag.key not in changed or tags.get(tag.key) not in tag.values:
        return []  # another tag changed, or the target tag was removed or holds another value
    resources = event.get("resources")
    if not isinstance(resources, list) or not resources:
        raise NotAnInstanceEvent("resources: expected the ARN of the instance")
    ids = []
    for index, arn in enumerate(resources):
        found = _INSTANCE_ARN.match(arn) if isinstance(arn, str) else None
        if not found or not re.match(contract.INSTANCE_ID_PATTERN, found.group(1)):
            raise NotAnInstanceEvent(f"resources.{index}: expected an EC2 instance ARN")
        ids.append(found.group(1))
    arrivals = []
    for instance_id, arn in zip(ids, resources, strict=True):
        # Each instance waits on its own: a put-back event names that instance alone.
        if body is not None and len(resources) == 1:
            text = body
        else:
            text = json.dumps({**event, "resources": [arn]}, separators=(",", ":"))
        arrivals.append(Arrival(instance_id, contract.SOURCE_TAG_CHANGE, time, text, pair, message_id))
    return arrivals


def _pair(event: Mapping[str, Any]) -> Pair:
    """Where the event happened: its ``account`` and ``region`` (the envelope's, kept when forwarded)."""
    account, region = _text(event, "account"), _text(event, "region")
    if not contract.matches(ACCOUNT_ID_PATTERN, account):
        raise NotAnInstanceEvent(
            f"account: {_shown(account)} is not accepted; expected a 12-digit account id"
        )
    if not contract.matches(rf"^{contract.REGION_RE}$", region):
        raise NotAnInstanceEvent(f"region: {_shown(region)} is not accepted; expected a region name")
    return Pair(account, region)


def _detail(event: Mapping[str, Any]) -> Mapping[str, Any]:
    if "detail" not in event:
        raise NotAnInstanceEvent("detail: missing")
    detail = event["detail"]
    if not isinstance(detail, Mapping):
        raise NotAnInstanceEvent(f"detail: expected an object, got {_kind(detail)}")
    return detail


def _time(event: Mapping[str, Any]) -> datetime:
    text = _text(event, "time")
    if not _TIME.match(text):
        raise NotAnInstanceEvent(f"time: {_shown(text)} is not accepted; expected yyyy-mm-ddThh:mm:ssZ")
    return datetime.fromisoformat(text).astimezone(UTC)


def _instance_id(detail: Mapping[str, Any], where: str) -> str:
    value = _text(detail, "instance-id", where)
    if not re.match(contract.INSTANCE_ID_PATTERN, value):
        raise NotAnInstanceEvent(f"{where}: {_shown(value)} is not accepted; expected an EC2 instance id")
    return value


def _expect(event: Mapping[str, Any], key: str, expected: str) -> None:
    value = _text(event, key)
    if value != expected:
        raise NotAnInstanceEvent(f"{key}: {_shown(value)} is not accepted; expected {expected!r}")


def _text(data: Mapping[str, Any], key: str, where: str | None = None) -> str:
    if key not in data:
        raise NotAnInstanceEvent(f"{where or key}: missing")
    value = data[key]
    if not isinstance(value, str):
        raise NotAnInstanceEvent(f"{where or key}: expected a string, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    """As JSON names it: null is never a value (docs/reference/contract.md)."""
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", list: "a list"}
    return names.get(type(value), "an object" if isinstance(value, Mapping) else type(value).__name__)


def _shown(value: str, most: int = 60) -> str:
    return repr(value) if len(value) <= most else repr(value[: most - 3] + "...")


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."
