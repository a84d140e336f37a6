"""What a run has learnt so far, and the one result per instance it becomes in the report.

Kept up to date step by step (discovery, busy instances, the execution), so that a run
that stops half-way still reports every instance it knows of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..aws.discovery import FleetMember
from ..shared.reasons import Reason
from ..shared.report import InstanceResult
from .execution import Execution
from .planning import Exclusion, exclusion


@dataclass
class RunProgress:
    # The event's instance ids (a narrowed run): known before discovery, so reported even if it fails.
    requested: tuple[str, ...] | None = None
    members: list[FleetMember] | None = None
    # Instance id -> why it is reported without a command (None: it can be commanded).
    exclusions: dict[str, Exclusion | None] = field(default_factory=dict)
    commanded: dict[str, InstanceResult] | None = None
    execution: Execution | None = None

    def discovered(self, members: list[FleetMember]) -> list[str]:
        """Record what discovery found; returns the instances that can be commanded."""
        self.members = members
        self.exclusions = {member.instance_id: exclusion(member) for member in members}
        return [instance_id for instance_id, excluded in self.exclusions.items() if excluded is None]

    def not_online_in_time(self, overdue: Mapping[str, Mapping[str, str | int]]) -> None:
        """New instances waited for until the readiness bound: if still not online, say so (their own reason).

        One that came online meanwhile is commanded like any other; one that lost its tag or
        stopped keeps the reason discovery gave it."""
        for instance_id, detail in overdue.items():
            excluded = self.exclusions.get(instance_id)
            if excluded is not None and _not_online(excluded):
                self.exclusions[instance_id] = Exclusion(
                    "unreachable", Reason.NOT_ONLINE_IN_TIME, {**excluded.detail, **detail}
                )

    def leave_out_busy(self, candidates: list[str], busy: dict[str, str]) -> list[str]:
        """Report the instances another run's command (by id) works on; returns the others."""
        for instance_id, command_id in busy.items():
            self.exclusions[instance_id] = Exclusion(
                "pending", Reason.INSTANCE_BUSY, {"command_id": command_id}
            )
        return [instance_id for instance_id in candidates if instance_id not in busy]

    def command_ids(self) -> tuple[str, ...]:
        return tuple(self.execution.command_ids) if self.execution else ()

    def instances(self, *, failed: bool) -> list[InstanceResult]:
        commanded = dict(self.commanded or {})
        if self.commanded is None and self.execution is not None:
            commanded = self.execution.interrupted()
        if self.members is None:
            # Discovery never finished: a narrowed run still lists every instance it was asked for.
            for instance_id in self.requested or ():
                commanded.setdefault(
                    instance_id, InstanceResult(instance_id, "", "failed", None, Reason.RUN_FAILED, {})
                )
            return [commanded[instance_id] for instance_id in sorted(commanded)]
        return _merge(self.members, self.exclusions, commanded, never_reached=failed)


# What discovery says of a running (or still starting) instance that SSM cannot reach yet.
_NOT_ONLINE = frozenset({Reason.NOT_SSM_MANAGED, Reason.SSM_CONNECTION_LOST, Reason.SSM_INACTIVE})


def _not_online(excluded: Exclusion) -> bool:
    if excluded.reason == Reason.INSTANCE_NOT_RUNNING:
        return excluded.detail.get("state") == "pending"
    return excluded.reason in _NOT_ONLINE


def _merge(
    members: list[FleetMember],
    exclusions: dict[str, Exclusion | None],
    commanded: dict[str, InstanceResult],
    *,
    never_reached: bool = False,
) -> list[InstanceResult]:
    """One result per instance: what its command said, else why it was not commanded.

    A tag-targeted command also reaches tagged instances that discovery set
    aside (e.g. connection lost): their own agent result wins if they produced
    one, otherwise the discovery reason stands. ``never_reached``: the run failed
    before it got to some targetable instances; they are reported ``run_failed``.
    """
    merged: dict[str, InstanceResult] = {}
    for member in members:
        result = commanded.get(member.instance_id)
        excluded = exclusions.get(member.instance_id)
        if excluded is not None and (result is None or result.outcome is None):
            result = InstanceResult(
                member.instance_id, "", excluded.status, None, excluded.reason, dict(excluded.detail)
            )
        if result is None and never_reached:
            result = InstanceResult(member.instance_id, "", "failed", None, Reason.RUN_FAILED, {})
        if result is None:  # never reached: every targetable id is in a dispatch
            result = InstanceResult(member.instance_id, "", "failed", None, Reason.NOT_DISPATCHED, {})
        merged[member.instance_id] = _named(result, member.name)
    # Instances the tag matched at send time that discovery had not seen: one
    # launched meanwhile ran the agent and is reported; one that cannot run it
    # (stopped, so not in the running fleet) is not part of this run.
    for instance_id, result in commanded.items():
        if instance_id not in merged and result.outcome is not None:
            merged[instance_id] = result
    return [merged[instance_id] for instance_id in sorted(merged)]


def _named(result: InstanceResult, name: str) -> InstanceResult:
    if not name or result.name == name:
        return result
    return replace(result, name=name)
