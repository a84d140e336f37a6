"""Amazon SQS standard queues, as far as the new-instance path uses them, on any ``Clock``.

What the queue does is what the SQS Developer Guide says a standard queue does:

* **Delay**: a message sent with ``DelaySeconds`` (0-900) is invisible to consumers for that
  long, then becomes visible ("Delay queues": "Any messages that you send to the queue remain
  invisible to consumers for the duration of the delay period"; per-message timers:
  ``DelaySeconds`` on SendMessage / SendMessageBatch entries;
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html).
* **Visibility timeout**: a received message stays in the queue, invisible, for the queue's
  ``VisibilityTimeout``; unless deleted by then it becomes visible again and is received again
  ("Amazon SQS visibility timeout",
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
* **Redrive**: "when the ``ReceiveCount`` for a message exceeds the ``maxReceiveCount`` for a
  queue, Amazon SQS moves the message to a dead-letter queue"
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
* **Trace header**: a message keeps the ``X-Amzn-Trace-Id`` of the request that sent it as its
  ``AWSTraceHeader`` system attribute ("AWSTraceHeader ... the X-Ray trace header string"; an explicit
  ``MessageSystemAttributes.AWSTraceHeader`` takes precedence over the HTTP header: SQS API reference,
  SendMessage / MessageSystemAttributeValue), and Lambda hands it back in the record's ``attributes``:
  how Lambda's recursive loop detection follows a chain (``recursion``). Message attributes
  (``MessageAttributes``) are kept and handed back too.
* CHOICE: a standard queue delivers at least once and "might" deliver out of order; here it
  delivers each message once per receive, in the order messages became visible, so a run
  is the same every time (tests send duplicates themselves when they want them).

``SqsService`` answers the runner's own calls (GetQueueUrl, SendMessage, SendMessageBatch,
GetQueueAttributes) through ``SqsWire`` (``responses``) — the JSON 1.0 protocol boto3 speaks to SQS, each
request validated against botocore's model — in-process or over HTTP like the other
services; Lambda's event source mapping (``event_source_mapping``) receives and deletes
in this process, as Lambda does on AWS's side. Consumers learn when a message becomes
visible from ``listeners`` (called as actions on the clock).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clocks import Clock
from ..transport.endpoint import ServiceError

MAX_DELAY_SECONDS = 900
MAX_BATCH_ENTRIES = 10
_log = logging.getLogger(__name__)


@dataclass
class Message:
    message_id: str
    body: str
    sent_at: float  # epoch seconds (SentTimestamp)
    visible_at: float  # the clock's monotonic time
    delay_seconds: int = 0
    receives: int = 0
    first_received_at: float | None = None  # epoch seconds
    receipt_handle: str | None = None
    trace_header: str | None = None  # the AWSTraceHeader system attribute
    # Message attributes as SendMessage takes them: name -> {"DataType": ..., "StringValue": ...}.
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def md5_of_body(self) -> str:
        return hashlib.md5(self.body.encode()).hexdigest()  # noqa: S324 - what SQS computes


@dataclass
class Queue:
    name: str
    arn: str
    url: str
    visibility_timeout: int = 30
    dead_letters: Queue | None = None
    max_receive_count: int = 0  # 0: no redrive policy
    messages: list[Message] = field(default_factory=list)
    # Every message sent, as (its id, DelaySeconds) — what the runner asked for when it put events back.
    sent: list[tuple[str, int]] = field(default_factory=list)
    # Called (as an action on the clock) whenever a message may have become visible.
    listeners: list[Callable[[], None]] = field(default_factory=list)


class SqsService:
    """The queues of one account and region; thread-safe (the HTTP server calls from its threads)."""

    def __init__(self, clock: Clock, account: str, region: str) -> None:
        self.clock = clock
        self.account = account
        self.region = region
        self.queues: dict[str, Queue] = {}
        self._lock = threading.RLock()
        self._handles = itertools.count(1)

    # --- set-up (what CloudFormation creates) -------------------------------------------
    def create_queue(
        self,
        name: str,
        *,
        visibility_timeout: int = 30,
        dead_letters: Queue | None = None,
        max_receive_count: int = 0,
    ) -> Queue:
        queue = Queue(
            name,
            f"arn:aws:sqs:{self.region}:{self.account}:{name}",
            f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}",
            visibility_timeout,
            dead_letters,
            max_receive_count,
        )
        with self._lock:
            self.queues[name] = queue
        return queue

    # --- what a producer does ---------------------------------------------------------
    def send(
        self,
        queue: Queue,
        body: str,
        delay_seconds: int = 0,
        *,
        trace_header: str | None = None,
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Message:
        now = self.clock.monotonic()
        message = Message(str(uuid.uuid4()), body, self.clock.time(), now + delay_seconds, delay_seconds)
        message.trace_header = trace_header
        message.attributes = {name: dict(value) for name, value in (attributes or {}).items()}
        with self._lock:
            queue.messages.append(message)
            queue.sent.append((message.message_id, delay_seconds))
        self._tell(queue, message.visible_at)
        return message

    # --- what a consumer does (Lambda's event source mapping) -------------------------
    def visible(self, queue: Queue) -> int:
        now = self.clock.monotonic()
        with self._lock:
            return sum(1 for m in queue.messages if m.visible_at <= now)

    def receive(self, queue: Queue, most: int) -> list[Message]:
        """Up to ``most`` visible messages, each now invisible for the visibility timeout.

        A message received more than ``max_receive_count`` times goes to the dead letters
        instead (at the receive that would exceed it, as SQS moves it)."""
        now = self.clock.monotonic()
        received: list[Message] = []
        with self._lock:
            for message in list(queue.messages):
                if len(received) >= most:
                    break
                if message.visible_at > now:
                    continue
                if queue.dead_letters is not None and 0 < queue.max_receive_count <= message.receives:
                    queue.messages.remove(message)
                    moved = Message(
                        str(uuid.uuid4()), message.body, message.sent_at, now, 0, message.receives
                    )
                    moved.trace_header, moved.attributes = message.trace_header, message.attributes
                    queue.dead_letters.messages.append(moved)
                    continue
                message.receives += 1
                message.first_received_at = message.first_received_at or self.clock.time()
                message.receipt_handle = f"AQEB{next(self._handles):08d}{message.message_id}"
                message.visible_at = now + queue.visibility_timeout
                received.append(message)
        for message in received:
            self._tell(queue, message.visible_at)
        return received

    def delete(self, queue: Queue, receipt_handle: str) -> None:
        with self._lock:
            queue.messages = [m for m in queue.messages if m.receipt_handle != receipt_handle]

    def _tell(self, queue: Queue, when: float) -> None:
        for listener in list(queue.listeners):
            self.clock.call_at(when, listener)

    # --- the API, as the wire calls it ------------------------------------------------
    def call(self, operation: str, params: Mapping[str, Any], trace_header: str | None) -> dict[str, Any]:
        """An operation, with the request's ``X-Amzn-Trace-Id`` (what a message sent now keeps)."""
        if operation == "SendMessage":
            return self._send_message(params, trace_header)
        if operation == "SendMessageBatch":
            return self._send_message_batch(params, trace_header)
        return self.handler(operation)(params)

    def handler(self, operation: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        handlers: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "GetQueueUrl": self._get_queue_url,
            "GetQueueAttributes": self._get_queue_attributes,
            "SendMessage": self._send_message,
            "SendMessageBatch": self._send_message_batch,
        }
        if operation not in handlers:
            raise ServiceError("UnsupportedOperation", f"{operation} is not simulated")
        return handlers[operation]

    def _queue(self, name: str, owner: str | None = None) -> Queue:
        with self._lock:
            queue = self.queues.get(name)
        if queue is None or (owner is not None and owner != self.account):
            raise ServiceError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue

    def _by_url(self, url: str) -> Queue:
        return self._queue(url.rstrip("/").rsplit("/", 1)[-1])

    def _get_queue_url(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"QueueUrl": self._queue(params["QueueName"], params.get("QueueOwnerAWSAccountId")).url}

    def _get_queue_attributes(self, params: Mapping[str, Any]) -> dict[str, Any]:
        queue = self._by_url(params["QueueUrl"])
        now = self.clock.monotonic()
        with self._lock:
            visible = sum(1 for m in queue.messages if m.visible_at <= now)
            delayed = sum(1 for m in queue.messages if m.visible_at > now and m.receives == 0)
        attributes = {
            "QueueArn": queue.arn,
            "VisibilityTimeout": str(queue.visibility_timeout),
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesDelayed": str(delayed),
            "ApproximateNumberOfMessagesNotVisible": str(len(queue.messages) - visible - delayed),
        }
        if queue.dead_letters is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": queue.dead_letters.arn, "maxReceiveCount": queue.max_receive_count}
            )
        wanted = set(params.get("AttributeNames", []))
        return {
            "Attributes": attributes
            if "All" in wanted
            else {k: v for k, v in attributes.items() if k in wanted}
        }

    def _send_message(self, params: Mapping[str, Any], trace_header: str | None = None) -> dict[str, Any]:
        queue = self._by_url(params["QueueUrl"])
        message = self._sent(queue, params, trace_header)
        return {"MessageId": message.message_id, "MD5OfMessageBody": message.md5_of_body}

    def _sent(self, queue: Queue, entry: Mapping[str, Any], trace_header: str | None) -> Message:
        """One message of SendMessage or a SendMessageBatch entry, with its attributes and trace header."""
        explicit = entry.get("MessageSystemAttributes", {}).get("AWSTraceHeader", {}).get("StringValue")
        return self.send(
            queue,
            entry["MessageBody"],
            _delay(entry.get("DelaySeconds", 0)),
            trace_header=explicit or trace_header,
            attributes=entry.get("MessageAttributes"),
        )

    def _send_message_batch(
        self, params: Mapping[str, Any], trace_header: str | None = None
    ) -> dict[str, Any]:
        queue = self._by_url(params["QueueUrl"])
        entries = params["Entries"]
        if not entries:
            raise ServiceError(
                "EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry."
            )
        if len(entries) > MAX_BATCH_ENTRIES:
            raise ServiceError(
                "TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}.",
            )
        if len({entry["Id"] for entry in entries}) != len(entries):
            raise ServiceError("BatchEntryIdsNotDistinct", "Id values must be distinct.")
        successful = []
        for entry in entries:
            message = self._sent(queue, entry, trace_header)
            successful.append(
                {"Id": entry["Id"], "MessageId": message.message_id, "MD5OfMessageBody": message.md5_of_body}
            )
        return {"Successful": successful, "Failed": []}


def _delay(value: int) -> int:
    if not 0 <= value <= MAX_DELAY_SECONDS:
        raise ServiceError(
            "InvalidParameterValue",
            f"Value {value} for parameter DelaySeconds is invalid. "
            "Reason: must be between 0 and 900, if provided.",
        )
    return value
