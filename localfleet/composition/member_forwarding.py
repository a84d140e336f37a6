"""Member accounts' new-instance events, forwarded bus to bus to the central stack, as the member
template builds it.

Each member stack (``infra/member_stack.py``) has two rules on its account's default event bus — an
instance entering ``running``, the target tag gained — whose target is the central stack's member
bus, reached through a role of the member stack (``EventForwarder``, under the path the central bus's
policy names). ``MemberForwarding.from_template`` reads the rules' patterns and that role's path from
the member template; ``attach`` plays one member (account, region): every event its EC2 sends to its
default bus (``SimulatedAccount.event_bus``) that a rule matches is put on the central bus as that
role, of that account's organization (``NewInstanceDelivery.put_from``, which applies the bus's
policy). The event is forwarded as it is: its ``account``, ``region`` and resource ARN stay the
source's (EventBridge User Guide, "Sending and receiving events between AWS accounts"). CHOICE: at
once, as on the default bus (``new_instance_delivery``).

Not in the central account and region: the member template's rules there are conditional
(``OutsideTheCentralStack``), since the central stack's own rules see those events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..eventbridge.models import matches
from ..iam.models import Principal
from ..synthesized_stack import Template, resources
from .new_instance_delivery import NewInstanceDelivery

FORWARDER = "EventForwarder"


@dataclass
class MemberForwarding:
    patterns: list[Mapping[str, Any]]  # the member template's forwarding rules
    role_path: str  # the forwarding role's IAM path (its name is CloudFormation's, unknown here)
    central: NewInstanceDelivery
    forwarded: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_template(cls, member_template: Template, central: NewInstanceDelivery) -> MemberForwarding:
        rules = resources(member_template, "AWS::Events::Rule").values()
        if not rules:
            raise LookupError("the member template forwards nothing (newInstances off)")
        (role,) = [
            r for i, r in resources(member_template, "AWS::IAM::Role").items() if i.startswith(FORWARDER)
        ]
        return cls(
            [json.loads(json.dumps(rule["Properties"]["EventPattern"])) for rule in rules],
            role["Properties"]["Path"],
            central,
        )

    def attach(self, event_bus: list[Any], account: str, org_id: str | None) -> None:
        """Forward what ``account``'s default bus (a member pair's) matches, as its forwarding role."""
        sender = Principal(
            account,
            f"arn:aws:iam::{account}:role{self.role_path}Members-EventForwarder-0123456789AB",
            f"arn:aws:sts::{account}:assumed-role/Members-EventForwarder-0123456789AB/events",
            org_id,
        )

        def forward(event: dict[str, Any]) -> None:
            if any(matches(pattern, event) for pattern in self.patterns) and self.central.member_bus:
                self.forwarded.append(event)
                self.central.put_from(event, bus=self.central.member_bus, sender=sender)

        event_bus.append(forward)
