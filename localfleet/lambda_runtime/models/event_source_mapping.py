"""Lambda's event source mapping for a standard SQS queue, on any ``Clock``.

What it does is what the Lambda Developer Guide says (the settings are the template's,
read by ``localfleet.composition.new_instance_delivery``):

* **Batching**: once a message is visible the mapping gathers records until the batching
  window ends, the batch size is reached or the payload reaches 6 MB, whichever comes
  first ("Lambda continues to poll for up to [MaximumBatchingWindowInSeconds] ...",
  https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, batching behavior). With a
  window set, "Lambda might wait for up to 20 seconds" on a quiet queue even if the window
  is smaller (same page): HARSHER, the model always waits at least 20 s when a window is set.
* **Records**: each record is handed as Lambda builds it — ``messageId``, ``receiptHandle``,
  ``body``, ``attributes`` (``ApproximateReceiveCount``, ``SentTimestamp``, ``SenderId``,
  ``ApproximateFirstReceiveTimestamp``, strings), ``messageAttributes``, ``md5OfBody``,
  ``eventSource`` ``aws:sqs``, ``eventSourceARN``, ``awsRegion`` (same page, example event).
* **Concurrency**: at most ``MaximumConcurrency`` invocations at once; while they run, the
  mapping reads no more (``ScalingConfig``,
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html). A batch being
  gathered holds one of them (CHOICE: AWS does not say; a poller that gathers is reading).
* **Parallel pollers**: "When messages are available, Lambda starts processing five batches at
  a time with five concurrent invocations of your function" (same page), capped by
  ``MaximumConcurrency``: the pollers read the queue side by side. HARSHER than one poller at a
  time: once a message is visible, every free slot starts gathering a batch at that moment, and
  what becomes visible is dealt to the gathering batches in ReceiveMessage's chunks (at most 10
  messages a call), one batch after the other; batches gathered together close, and their
  invocations start, at the same moment. Two records of one instance can so land in two batches
  that run at once.
* **Outcome**: a function error leaves the whole batch in the queue, visible again after
  the visibility timeout. With ``ReportBatchItemFailures`` the answer's
  ``batchItemFailures`` names the records to keep; an empty or missing list is full
  success; an answer that is not an object, or an ``itemIdentifier`` that is empty, not a
  string or not in the batch fails the whole batch (implementing partial batch responses,
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). The rest is
  deleted.

* **Recursive loop detection** (``recursion``): each record carries the ``AWSTraceHeader`` the
  message was sent with; an invocation continues the longest chain among its records (HARSHER where
  AWS is silent) and gets that chain's lineage in its trace header, so what the function sends while it
  runs is one more link of the chain. Unless the function says ``RecursiveLoop: Allow``, the
  invocation that would be the 16th of a chain is stopped (HARSHER than "approximately 16"):
  ``RecursiveInvocationException``, counted in ``recursive_invocations_dropped``, and its batch stays
  in the queue, visible again after the visibility timeout, until SQS moves its messages to the
  dead-letter queue after ``maxReceiveCount`` receives.

On a ``SimulatedClock`` invocations run concurrently by taking turns (``Clock.run_concurrently``),
so two batches overlap in simulated time as they would; on a ``RealClock`` each runs on a thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...clocks import Clock, Scheduled
from ...sqs.models import Message, Queue, SqsService
from . import recursion

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
QUIET_QUEUE_WAIT_SECONDS = 20
# What one ReceiveMessage call returns at most (a poller's chunk of the visible messages).
RECEIVE_MAX_MESSAGES = 10
# The SenderId SQS shows for a message (an IAM principal's id); any fixed one: nobody reads it.
SENDER_ID = "AIDAIENQZJOLO23YVJ4VO"
RECURSIVE_INVOCATION = "RecursiveInvocationException"


class Invoke(Protocol):
    """The function as the mapping calls it: an event and the invocation's lineage (what Lambda puts
    in its trace header, ``<version>:<function hash>:<count>``) in, its answer out (raises on a
    function error)."""

    def __call__(self, event: dict[str, Any], *, lineage: str) -> Any: ...


@dataclass(frozen=True)
class EsmSettings:
    batch_size: int = 10
    batching_window_seconds: int = 0
    maximum_concurrency: int = 1000
    report_batch_item_failures: bool = False
    # The function's AWS::Lambda::Function RecursiveLoop (Terminate unless it says Allow) and its mark
    # in a lineage.
    recursive_loop: str = recursion.TERMINATE
    function: str = "function"

    @property
    def gathering_seconds(self) -> float:
        if self.batching_window_seconds <= 0:
            return 0.0
        return float(max(self.batching_window_seconds, QUIET_QUEUE_WAIT_SECONDS))


@dataclass
class Invocation:
    """One call of the function: when, with which records, and what came of it."""

    started: float
    records: int
    message_ids: tuple[str, ...]
    ended: float | None = None
    answer: Any = None
    error: str | None = None  # the function failed (raised)
    kept: tuple[str, ...] = ()  # message ids left in the queue (failed items, or all on an error)
    lineage: int = 1  # which invocation of its chain (the longest among its records)
    stopped: bool = False  # Lambda's recursive loop detection stopped it: the function never ran


@dataclass
class _Batch:
    started: float
    messages: list[Message] = field(default_factory=list)
    size: int = 0
    closing: Scheduled | None = None


class EventSourceMapping:
    def __init__(
        self, clock: Clock, sqs: SqsService, queue: Queue, invoke: Invoke, settings: EsmSettings
    ) -> None:
        self.clock = clock
        self.sqs = sqs
        self.queue = queue
        self.invoke = invoke
        self.settings = settings
        self.invocations: list[Invocation] = []
        self.enabled = True
        self._active = 0  # batches being gathered or invoked
        self._gathering: list[_Batch] = []  # one per poller reading now
        self.recursive_invocations_dropped = 0  # AWS/Lambda RecursiveInvocationsDropped
        self._lock = threading.RLock()  # the RealClock's scheduler and invocation threads
        queue.listeners.append(self.poll)

    @property
    def busy(self) -> bool:
        """Whether a batch is being gathered or invoked."""
        return self._active > 0

    def poll(self) -> None:
        """A message may be visible: every free slot starts a batch; the visible messages are dealt
        to the batches being gathered, a ReceiveMessage's worth at a time."""
        with self._lock:
            if not self.enabled:
                return
            if self.sqs.visible(self.queue):
                while self._active < self.settings.maximum_concurrency:
                    self._start()
            while self._gathering and self.sqs.visible(self.queue):
                took = False
                for batch in list(self._gathering):
                    if self._take(batch):
                        took = True
                        self._gathering.remove(batch)  # the next chunk goes to another poller first
                        self._gathering.append(batch)
                    if batch.closing is None or len(batch.messages) >= self.settings.batch_size:
                        self._close(batch)
                if not took:
                    break

    def _start(self) -> None:
        self._active += 1
        batch = _Batch(self.clock.monotonic())
        self._gathering.append(batch)
        wait = self.settings.gathering_seconds
        if wait > 0:
            batch.closing = self.clock.call_at(batch.started + wait, lambda: self._close(batch))

    def _take(self, batch: _Batch) -> bool:
        """One ReceiveMessage for ``batch``; whether it got any message."""
        room = min(self.settings.batch_size - len(batch.messages), RECEIVE_MAX_MESSAGES)
        received = self.sqs.receive(self.queue, room) if room > 0 else []
        for message in received:
            batch.messages.append(message)
            batch.size += len(message.body.encode())
            if batch.size >= MAX_PAYLOAD_BYTES:
                batch.closing = None  # full: invoke now
        return bool(received)

    def _close(self, batch: _Batch) -> None:
        with self._lock:
            if batch not in self._gathering:
                return
            self._gathering.remove(batch)
            if batch.closing is not None:
                batch.closing.cancel()
            if not batch.messages:  # its poller found nothing: the slot is free again
                self._active -= 1
                self.poll()
                return
            event = {"Records": [self._record(m) for m in batch.messages]}
            function = self.settings.function
            count = recursion.invocation_count(function, (m.trace_header for m in batch.messages))
            invocation = Invocation(
                self.clock.monotonic(),
                len(batch.messages),
                tuple(m.message_id for m in batch.messages),
                lineage=count,
            )
            self.invocations.append(invocation)
            if recursion.stopped(self.settings.recursive_loop, count):
                # Not invoked: the records stay in the queue, their receive counted, until the DLQ.
                self.recursive_invocations_dropped += 1
                invocation.stopped = True
                stopped = (None, RECURSIVE_INVOCATION)
                self.clock.call_at(self.clock.monotonic(), lambda: self._settle(batch, invocation, stopped))
                return
        lineage = f"{recursion.LINEAGE_VERSION}:{function}:{count}"
        self.clock.run_concurrently(
            lambda: self._call(event, lineage), lambda outcome: self._settle(batch, invocation, outcome)
        )

    def _call(self, event: dict[str, Any], lineage: str) -> tuple[Any, str | None]:
        try:
            return self.invoke(event, lineage=lineage), None
        except Exception as error:  # a function error: the batch stays in the queue
            return None, f"{type(error).__name__}: {error}"

    def _settle(self, batch: _Batch, invocation: Invocation, outcome: tuple[Any, str | None]) -> None:
        answer, error = outcome
        ids = {m.message_id for m in batch.messages}
        kept = ids if error is not None else self._failed_items(answer, ids)
        for message in batch.messages:
            if message.message_id not in kept and message.receipt_handle is not None:
                self.sqs.delete(self.queue, message.receipt_handle)
        invocation.ended, invocation.answer, invocation.error = self.clock.monotonic(), answer, error
        invocation.kept = tuple(sorted(kept))
        with self._lock:
            self._active -= 1
        self.poll()

    def _failed_items(self, answer: Any, ids: set[str]) -> set[str]:
        if not self.settings.report_batch_item_failures:
            return set()
        if not isinstance(answer, dict):
            return ids
        failures = answer.get("batchItemFailures")
        if not failures:
            return set()
        if not isinstance(failures, list):
            return ids
        kept = set()
        for item in failures:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in ids:
                return ids  # an invalid answer fails the whole batch
            kept.add(identifier)
        return kept

    def _record(self, message: Message) -> dict[str, Any]:
        attributes = {
            "ApproximateReceiveCount": str(message.receives),
            "SentTimestamp": str(int(message.sent_at * 1000)),
            "SenderId": SENDER_ID,
            "ApproximateFirstReceiveTimestamp": str(int((message.first_received_at or 0) * 1000)),
        }
        if message.trace_header:
            attributes["AWSTraceHeader"] = message.trace_header
        return {
            "messageId": message.message_id,
            "receiptHandle": message.receipt_handle,
            "body": message.body,
            "attributes": attributes,
            # As Lambda's SQS records show them (camelCase, string values; lists empty).
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in message.attributes.items()
            },
            "md5OfBody": message.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue.arn,
            "awsRegion": self.sqs.region,
        }
