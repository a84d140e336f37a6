"""The stack's new-instance queue and its event source mapping, on the world's simulated clock.

EventBridge puts events in (``put``: the real-shaped samples in tests/events with this
world's ids and times); the runner puts events back itself (SendMessageBatch to moto's
queue, with DelaySeconds), which ``deliver`` moves here with the time they become visible.
A delivery is what Lambda's event source mapping would hand the runner: every visible
message (up to the batch size) as SQS records, after moving the clock to the first
moment one is visible. Only delivery is simulated; the runner's own SQS calls go to moto.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from tests.runner.conftest import REGION, TAG_KEY, TAG_VALUE, World, load_event

QUEUE_NAME = "EcrFleetAuth-NewInstances"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{QUEUE_NAME}"
BATCH_SIZE = 1000


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _arn(instance_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{DEFAULT_ACCOUNT_ID}:instance/{instance_id}"


def running_event(instance_id: str, moment: datetime, state: str = "running") -> dict[str, Any]:
    """The EC2 state-change sample, for this instance at this moment."""
    event: dict[str, Any] = copy.deepcopy(load_event("ec2_state_change_running"))
    event.update(id=str(uuid.uuid4()), time=_when(moment), region=REGION, account=DEFAULT_ACCOUNT_ID)
    event["resources"] = [_arn(instance_id)]
    event["detail"] = {"instance-id": instance_id, "state": state}
    return event


def tag_event(instance_id: str, moment: datetime, value: str | None = TAG_VALUE) -> dict[str, Any]:
    """The tag-change sample: the target tag set to ``value`` (None: removed)."""
    event: dict[str, Any] = copy.deepcopy(load_event("tag_change_added"))
    event.update(id=str(uuid.uuid4()), time=_when(moment), region=REGION, account=DEFAULT_ACCOUNT_ID)
    event["resources"] = [_arn(instance_id)]
    tags = {"Name": "web"} if value is None else {"Name": "web", TAG_KEY: value}
    event["detail"] = {**event["detail"], "changed-tag-keys": [TAG_KEY], "tags": tags}
    return event


@dataclass
class Message:
    body: str
    visible_at: float  # the world's monotonic clock
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0


@dataclass
class InstanceQueue:
    world: World
    messages: list[Message] = field(default_factory=list)
    # What the runner answered, per delivery.
    answers: list[dict[str, Any]] = field(default_factory=list)
    # Delays the runner asked for when it put events back.
    delays: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.world.sqs.create_queue(QueueName=QUEUE_NAME)

    def put(self, *events: dict[str, Any], raw: str | None = None) -> None:
        """EventBridge delivers ``events`` (the rule's target: the whole event as the body)."""
        now = self.world.clock.monotonic()
        self.messages += [Message(json.dumps(event), now) for event in events]
        if raw is not None:
            self.messages.append(Message(raw, now))

    def pending(self) -> int:
        return len(self.messages)

    def batch(self) -> tuple[dict[str, Any], list[Message]]:
        """The SQS event of every visible message (up to the batch size), as Lambda builds it."""
        now = self.world.clock.monotonic()
        visible = [m for m in self.messages if m.visible_at <= now][:BATCH_SIZE]
        for message in visible:
            message.receives += 1
        records = [
            {
                "messageId": message.message_id,
                "receiptHandle": f"AQEB{message.message_id}",
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": str(message.receives),
                    "SentTimestamp": "1764223200000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764223200010",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": REGION,
            }
            for message in visible
        ]
        return {"Records": records}, visible

    def deliver(self) -> dict[str, Any]:
        """Move the clock to the first visible message, hand the batch to the runner, settle it."""
        assert self.messages, "nothing to deliver"
        first = min(message.visible_at for message in self.messages)
        self.world.clock.sleep(max(0.0, first - self.world.clock.monotonic()))
        event, delivered = self.batch()
        answer = self.world.invoke(event)
        self.answers.append(answer)
        failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
        # Deleted on success; a failure stays (SQS shows it again after the visibility timeout).
        gone = {m.message_id for m in delivered} - failed
        self.messages = [m for m in self.messages if m.message_id not in gone]
        for message in self.messages:
            if message.message_id in failed:
                message.visible_at = self.world.clock.monotonic() + 6 * 900
        self._take_put_back()
        return answer

    def deliver_all(self, most: int = 100) -> None:
        """Deliver until the queue is empty (or ``most`` deliveries: a runaway loop is a failure)."""
        for _ in range(most):
            if not self.messages:
                return
            self.deliver()
        raise AssertionError(f"the queue still holds {len(self.messages)} messages after {most} deliveries")

    def _take_put_back(self) -> None:
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[QUEUE_NAME]
        now = self.world.clock.monotonic()
        for message in list(queue._messages):
            delay = (
                round((message.delayed_until - message.sent_timestamp) / 1000) if message.delayed_until else 0
            )
            self.delays.append(delay)
            self.messages.append(Message(message.body, now + delay))
        queue._messages.clear()
