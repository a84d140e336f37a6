"""What an invocation is, told by its event's shape alone, and how an event is refused.

The handler reads only this to choose its path, then imports that path's modules: a cold start
loads one path, never the others (the run's models, the state machine's steps, the instance events'
triage). Each path then reads its event strictly and raises ``InvalidEvent`` for one it refuses,
before anything is sent; the handler counts it (``EventsRejected``), and the state machine's
``Rejected`` state matches the error by this class's name.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import contract

MESSAGE_PREFIX = "invalid event: "


class InvalidEvent(ValueError):
    """The event was rejected; the message names each bad field and what it accepts."""


def is_instance_event(event: object) -> bool:
    """Whether the handler was given an SQS batch or an EventBridge event (not a run request)."""
    return isinstance(event, Mapping) and ("Records" in event or "detail-type" in event)


def is_step(event: object) -> bool:
    """Whether ``event`` claims to be a step of the organization's state machine."""
    return isinstance(event, Mapping) and contract.STEP_FIELD in event
