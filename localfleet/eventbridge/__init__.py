"""EventBridge, simulated: EC2's state-change and tag-change events, and rules' event patterns matched
(``models``)."""

from .models import instance_arn, matches, state_change_event, tag_change_event

__all__ = ["instance_arn", "matches", "state_change_event", "tag_change_event"]
