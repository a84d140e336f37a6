"""EventBridge's side: the events AWS sends about instances, and rules that match them.

The two events, in the shapes AWS documents (the runner's samples are in ``tests/events/``):

* ``EC2 Instance State-change Notification`` (source ``aws.ec2``): ``detail`` holds
  ``instance-id`` and ``state``, nothing else — no tags
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html);
* ``Tag Change on Resource`` (source ``aws.tag``): ``changed-tag-keys``, ``service``,
  ``resource-type``, ``version`` and ``tags``, the tags *after* the change
  (https://docs.aws.amazon.com/tag-editor/latest/userguide/tag-monitor.html).

``matches`` applies an event pattern as EventBridge does for the patterns the stack uses:
every field the pattern names must be in the event with the same nesting; a pattern's
value is a list of accepted values, and an event value that is a list matches when any
element is accepted (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html).
Content filters (``prefix``, ``anything-but``, ...) are refused: the stack uses none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

STATE_CHANGE = "EC2 Instance State-change Notification"
TAG_CHANGE = "Tag Change on Resource"


def _envelope(
    detail_type: str, source: str, *, account: str, region: str, at: datetime, resources: list[str]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
    }


def instance_arn(instance_id: str, *, account: str, region: str) -> str:
    return f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"


def state_change_event(
    instance_id: str, state: str, *, account: str, region: str, at: datetime
) -> dict[str, Any]:
    arn = instance_arn(instance_id, account=account, region=region)
    event = _envelope(STATE_CHANGE, "aws.ec2", account=account, region=region, at=at, resources=[arn])
    event["detail"] = {"instance-id": instance_id, "state": state}
    return event


def tag_change_event(
    instance_id: str,
    changed: list[str],
    tags: Mapping[str, str],
    *,
    account: str,
    region: str,
    at: datetime,
    version: int = 2,
) -> dict[str, Any]:
    """``tags``: every tag of the instance after the change (a removed key is only in ``changed``)."""
    arn = instance_arn(instance_id, account=account, region=region)
    event = _envelope(TAG_CHANGE, "aws.tag", account=account, region=region, at=at, resources=[arn])
    event["detail"] = {
        "changed-tag-keys": list(changed),
        "service": "ec2",
        "resource-type": "instance",
        "version": version,
        "tags": dict(tags),
    }
    return event


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern`` (exact values, nested fields, arrays as sets)."""
    for key, accepted in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(accepted, Mapping):
            if not isinstance(value, Mapping) or not matches(accepted, value):
                return False
            continue
        if not isinstance(accepted, list) or any(isinstance(a, (Mapping, list)) for a in accepted):
            raise ValueError(f"{key}: only lists of exact values are simulated, got {accepted!r}")
        values = value if isinstance(value, list) else [value]
        if not any(v in accepted for v in values if not isinstance(v, (Mapping, list))):
            return False
    return True
