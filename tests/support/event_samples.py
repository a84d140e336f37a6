"""The event samples in tests/events: AWS's own shapes (EventBridge, SQS) and the runner's requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"
# The run requests a schedule or an operator sends (the runner's own event model).
RUN_REQUEST_SAMPLES = ("schedule", "manual_empty", "manual_full", "dry_run")
# EC2's events as EventBridge delivers them: state changes and tag changes, some naming a new instance.
INSTANCE_EVENT_SAMPLES = (
    "ec2_state_change_running",
    "ec2_state_change_pending",
    "tag_change_added",
    "tag_change_value_changed",
    "tag_change_removed",
    "tag_change_multi_key",
)


def load_event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
