"""What becomes of each instance an instance event named: commanded now, waited for, or left out.

Plain decisions (``triage``) over what discovery, the busy check and ``covering`` found:

* **Not ours, or gone**: without the target tag (every launch in the account sends a
  ``running`` event; the event carries no tags), stopped or terminated since, or unknown
  to EC2 after a short grace (EC2's reads are eventually consistent right after a launch)
  — left out, not reported: a run of instance events reports only the instances it is for.
* **Not online yet** (still ``pending``, not registered with SSM, or not ``Online``): waited
  for — its event goes back to the queue — until ``newInstanceReadinessSeconds`` after
  the event's ``time``; then it is run once more and reported ``unreachable`` /
  ``not_online_in_time`` if still not online. Delivered directly (no queue to wait in), it
  is run at once and reported as discovery finds it.
* **Already covered**: a command of this document with the same parameters reached it
  after its event (a repeated event, the other rule's event, a scheduled run) — left out:
  that command's run reports it.
* **Busy** with another command of the document: waited for like one not online, so
  that runs never overlap on it and it still gets the new-instance action.
* Otherwise commanded now: the run checks tag, state and ping status again (a run can
  only narrow) and reports it like any other.

Every wait is one more link of a chain of invocations (the event goes back to the queue that
invokes the runner): the stack lets that loop run (``RecursiveLoop: Allow``) and the time bound
above ends it. So that nothing can make it endless (an event whose ``time`` lies in the future
never ages), a chain also ends after ``most_looks`` looks at its instance, whatever the clock says:
the last look decides as if the bound had passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..aws.discovery import FleetMember
from ..aws.run_command import Invocation, RunCommand

# Invocations after which the agent has not run: such a command covers nothing.
NOT_RUN_STATUSES = frozenset({"Cancelled", "Cancelling"})
NOT_RUN_DETAILS = frozenset(
    {"Undeliverable", "Delivery Timed Out", "Terminated", "Access Denied", "Cancelled", "No Instances In Tag"}
)
# A launch that EC2 does not list yet (eventual consistency) is waited for this long.
NOT_FOUND_GRACE_SECONDS = 120


@dataclass
class Triage:
    run: list[str] = field(default_factory=list)
    # Waited for until the bound and still not online: instance id -> what the report adds.
    overdue: dict[str, dict[str, str | int]] = field(default_factory=dict)
    # Put back to wait: instance id -> seconds left until its readiness bound.
    waiting: dict[str, float] = field(default_factory=dict)
    # Not commanded and not reported: instance id -> why (for the log).
    left_out: dict[str, str] = field(default_factory=dict)


def triage(
    members: Sequence[FleetMember],
    since: Mapping[str, datetime],
    *,
    busy: Mapping[str, str],
    covered: Mapping[str, str],
    now: datetime,
    bound_seconds: int,
    can_wait: bool,
    looks: Mapping[str, int] | None = None,
    most_looks: int | None = None,
) -> Triage:
    """Decide for each instance in ``since`` (instance id -> its earliest event's time).

    ``looks``: how many looks its events already had (put back that often); at ``most_looks`` this
    is its last look: it waits no more, as past its bound."""
    decided = Triage()
    found = {member.instance_id: member for member in members}
    for instance_id, moment in since.items():
        waited = max(0.0, (now - moment).total_seconds())
        left = bound_seconds - waited
        if most_looks is not None and (looks or {}).get(instance_id, 0) + 1 >= most_looks:
            left = min(left, 0.0)  # the chain's last look: decide as at the bound
        member = found.get(instance_id)
        if member is None or not member.exists:
            if can_wait and left > 0 and waited < min(NOT_FOUND_GRACE_SECONDS, bound_seconds):
                decided.waiting[instance_id] = min(left, NOT_FOUND_GRACE_SECONDS - waited)
            else:
                decided.left_out[instance_id] = "instance_not_found"
        elif not member.tagged:
            decided.left_out[instance_id] = "not_target_tagged"
        elif member.state not in ("pending", "running"):
            decided.left_out[instance_id] = "instance_not_running"
        elif not _online(member):
            _not_online(decided, instance_id, moment=moment, waited=waited, left=left, can_wait=can_wait)
        elif instance_id in covered:
            decided.left_out[instance_id] = "already_covered"
        elif instance_id in busy and can_wait and left > 0:
            decided.waiting[instance_id] = left
        else:
            decided.run.append(instance_id)
    return decided


def _not_online(
    decided: Triage, instance_id: str, *, moment: datetime, waited: float, left: float, can_wait: bool
) -> None:
    """Wait for it while the bound allows (and there is a queue to wait in), else run it to report it."""
    if left > 0 and can_wait:
        decided.waiting[instance_id] = left
        return
    if left <= 0:
        decided.overdue[instance_id] = {
            "since": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "waited_seconds": int(waited),
        }
    decided.run.append(instance_id)


def online(members: Sequence[FleetMember]) -> list[str]:
    """The tagged running instances SSM can reach now (the ones a command could be sent to)."""
    return [m.instance_id for m in members if m.tagged and m.state == "running" and _online(m)]


def _online(member: FleetMember) -> bool:
    return member.state == "running" and member.managed is not None and member.managed.ping_status == "Online"


def covering(
    commands: RunCommand, document_name: str, parameters: Mapping[str, str], since: Mapping[str, datetime]
) -> dict[str, str]:
    """Instance id -> a command of this document, with these parameters, that reached it after its event.

    One ListCommands search back to the earliest event, then the invocations of the commands
    that were sent with the same parameters and could have reached one of these instances."""
    if not since:
        return {}
    covered: dict[str, str] = {}
    sent = commands.commands_since(document_name, min(since.values()))
    for command in sorted(sent, key=lambda c: c.requested_at):
        if not command.sends(parameters):
            continue
        reachable = {i for i, moment in since.items() if command.requested_at >= moment and i not in covered}
        if not command.by_tag:
            reachable &= set(command.instance_ids)
        if not reachable:
            continue
        for invocation in commands.invocations(command.command_id, details=False):
            if invocation.instance_id in reachable and _ran(invocation):
                covered[invocation.instance_id] = command.command_id
    return covered


def _ran(invocation: Invocation) -> bool:
    """Whether the agent ran (or is about to): not cancelled, delivered, not stopped by max errors."""
    return invocation.status not in NOT_RUN_STATUSES and invocation.status_details not in NOT_RUN_DETAILS
