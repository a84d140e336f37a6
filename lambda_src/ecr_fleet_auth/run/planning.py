"""Plain decisions: who is commanded, who is reported without a command, in which dispatches.

Rate control — the contract's fleet-wide promise. The configured MaxConcurrency
and MaxErrors bound the whole run, never each batch:

* A whole-fleet run is ONE SendCommand whose ``Targets`` is the target tag.
  SSM itself then applies MaxConcurrency and MaxErrors across every matched
  instance, exactly as an operator reading "10%" expects, for any fleet size.
* A narrowed run (``instance_ids``) of at most 50 targetable instances is one
  SendCommand with ``InstanceIds`` and the configured values unchanged.
* A narrowed run of more than 50 instances is split into batches of at most 50
  (the API's limit). The budgets are first turned into instance counts for the
  whole narrowed set (percentages rounded down; concurrency at least 1), then
  divided: the batches run in ``lanes``, at most ``concurrency`` lanes, each
  lane sending its next batch only when the previous one has finished, and the
  lanes' MaxConcurrency values add up to the total. Every batch gets its own
  share of the error budget (possibly 0) and the shares add up to the total.
  So at no moment do more instances run than the promise allows, and the whole
  run never tolerates more errors than it does.

A dispatch SSM refuses because of some of its instances started nothing; what is sent
instead (``without`` the instances a look explains, or its ``halves``) stays inside the
refused dispatch's budgets, so the promise holds through refusals too (``execution``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..aws.discovery import FleetMember
from ..shared.reasons import Reason

# SendCommand accepts at most 50 InstanceIds per call.
MAX_IDS_PER_COMMAND = 50
# After SSM refuses a dispatch, its instances are looked up again at most this many times
# along one chain of resends: each look can explain one more race (an instance terminated
# or untagged meanwhile), and the chain stays bounded whatever the fleet does.
MAX_LOOKUPS = 3
SUPPORTED_PLATFORM = "Linux"


@dataclass(frozen=True)
class Exclusion:
    """Why an instance is reported without being commanded."""

    status: str
    reason: Reason
    detail: dict[str, Any]


def exclusion(member: FleetMember) -> Exclusion | None:  # noqa: PLR0911 - one return per reason
    """None when the instance can be commanded; otherwise the status and reason to report."""
    if not member.exists:
        return Exclusion("skipped", Reason.INSTANCE_NOT_FOUND, {})
    if not member.tagged:
        return Exclusion("skipped", Reason.NOT_TARGET_TAGGED, {})
    if member.state != "running":
        return Exclusion("unreachable", Reason.INSTANCE_NOT_RUNNING, {"state": member.state})
    managed = member.managed
    if managed is None:
        return Exclusion("unreachable", Reason.NOT_SSM_MANAGED, {})
    if managed.ping_status == "ConnectionLost":
        return Exclusion("unreachable", Reason.SSM_CONNECTION_LOST, {"ping_status": managed.ping_status})
    if managed.ping_status != "Online":
        return Exclusion("unreachable", Reason.SSM_INACTIVE, {"ping_status": managed.ping_status})
    if managed.platform_type != SUPPORTED_PLATFORM:
        return Exclusion(
            "skipped",
            Reason.UNSUPPORTED_PLATFORM,
            {"platform_type": managed.platform_type, "platform_name": managed.platform_name},
        )
    return None


@dataclass(frozen=True)
class Dispatch:
    """One SendCommand: by the target tag (whole fleet) or by instance ids."""

    instance_ids: tuple[str, ...]
    by_tag: bool
    max_concurrency: str
    max_errors: str
    lane: int = 0
    # Looks at its instances' states still allowed if SSM refuses it (MAX_LOOKUPS).
    lookups_left: int = MAX_LOOKUPS
    # A piece of a refused dispatch whose look explained nothing: refused again for an
    # instance (InvalidInstanceId), it is halved again without another look.
    halved: bool = False

    @property
    def concurrency(self) -> int:
        """How many of its instances may run at once, as a count: its share of its lane."""
        return max(1, budget(self.max_concurrency, len(self.instance_ids)))


@dataclass(frozen=True)
class Plan:
    lanes: tuple[tuple[Dispatch, ...], ...]

    @property
    def dispatches(self) -> list[Dispatch]:
        return [dispatch for lane in self.lanes for dispatch in lane]

    def describe(self) -> list[dict[str, Any]]:
        """The dispatches without their instance ids, for the run's log."""
        return [
            {
                "instances": len(d.instance_ids),
                "by_tag": d.by_tag,
                "lane": d.lane,
                "max_concurrency": d.max_concurrency,
                "max_errors": d.max_errors,
            }
            for d in self.dispatches
        ]


def plan_dispatches(
    targetable: Sequence[str], *, narrowed: bool, max_concurrency: str, max_errors: str
) -> Plan:
    """Lay out the SendCommand calls for ``targetable`` instances (see the module docstring)."""
    ids = tuple(targetable)
    if not ids:
        return Plan(lanes=())
    if not narrowed:
        return Plan(lanes=((Dispatch(ids, True, max_concurrency, max_errors),),))
    if len(ids) <= MAX_IDS_PER_COMMAND:
        return Plan(lanes=((Dispatch(ids, False, max_concurrency, max_errors),),))
    batches = [ids[start : start + MAX_IDS_PER_COMMAND] for start in range(0, len(ids), MAX_IDS_PER_COMMAND)]
    concurrency = max(1, budget(max_concurrency, len(ids)))
    errors = budget(max_errors, len(ids))
    lane_count = min(len(batches), concurrency)
    lane_concurrency = split(concurrency, lane_count)
    batch_errors = split(errors, len(batches))
    lanes: list[list[Dispatch]] = [[] for _ in range(lane_count)]
    for index, batch in enumerate(batches):
        lane = index % lane_count
        lanes[lane].append(
            Dispatch(batch, False, str(lane_concurrency[lane]), str(batch_errors[index]), lane=lane)
        )
    return Plan(lanes=tuple(tuple(lane) for lane in lanes))


def without(dispatch: Dispatch, dropped: set[str]) -> Dispatch:
    """The same dispatch for its other instances, after a look that explained a refusal."""
    kept = tuple(i for i in dispatch.instance_ids if i not in dropped)
    return replace(dispatch, instance_ids=kept, lookups_left=dispatch.lookups_left - 1)


def halves(dispatch: Dispatch, *, looked: bool) -> tuple[Dispatch, Dispatch]:
    """The two halves of a dispatch SSM refused for an instance it does not name (bisection).

    The halves may run at the same time, so they share the dispatch's budgets as counts:
    its concurrency split between them (at least 1 each: the lane's capacity, which
    ``execution`` keeps, then makes halves of a dispatch of concurrency 1 run in turn),
    its error budget split too. ``looked``: this refusal already cost a look.
    """
    middle = len(dispatch.instance_ids) // 2
    parts = (dispatch.instance_ids[:middle], dispatch.instance_ids[middle:])
    concurrency = split(dispatch.concurrency, 2)[::-1] if dispatch.concurrency > 1 else [1, 1]
    errors = split(budget(dispatch.max_errors, len(dispatch.instance_ids)), 2)[::-1]
    lookups_left = dispatch.lookups_left - (1 if looked else 0)
    first, second = (
        replace(
            dispatch,
            instance_ids=part,
            max_concurrency=str(concurrency[index]),
            max_errors=str(errors[index]),
            lookups_left=lookups_left,
            halved=True,
        )
        for index, part in enumerate(parts)
    )
    return first, second


def budget(value: str, total: int) -> int:
    """An SSM rate value ("10", "10%") as an instance count over ``total``, rounded down."""
    if value.endswith("%"):
        return int(value[:-1]) * total // 100
    return min(int(value), total)


def split(amount: int, parts: int) -> list[int]:
    """``amount`` divided into ``parts`` whole shares that add up to ``amount``."""
    share, remainder = divmod(amount, parts)
    return [share + (1 if index < remainder else 0) for index in range(parts)]
