"""Each instance's state in SSM Compliance, beside patching and associations (docs/operating/compliance.md).

After a run (scheduled, manual, new instances; never a dry run) every instance of the report that is a
managed node of this deployment gets, under this deployment's own compliance type
(``contract.compliance_type``: ``Custom:EcrFleetAuth`` for the default stack), a complete list of
items for that run:

* ``instance``: the instance's result — COMPLIANT when it ``succeeded``, else NON_COMPLIANT with its
  reason and next step (failed, unreachable, pending, skipped; the instance an earlier run marked
  compliant and this one could not reach is not left compliant: the list replaces it). An instance
  another run is working on (``instance_busy``, the agent's ``locked``) is that run's to write: nothing;
* ``<user>@<registry>``, one per user x registry the agent's result line reports: COMPLIANT when that
  user can pull now (the credential helper answers for the registry, or a login that has not expired),
  else NON_COMPLIANT with the reason (the agent's, or ``not_logged_in``, ``login_expired``, ...) and
  its next step; a user the agent could not serve at all is one item ``<user>``.

PutComplianceItems "overwrites existing compliance information on the resource, so you must provide a
full list of compliance items each time" (SSM API reference; ``UploadType`` COMPLETE, the default, "the
system overwrites all existing compliance information for the resource"): each run's list replaces the
last one, and items of users or registries no longer reported go with it. The execution summary is the
run's id and start; ``ItemContentHash`` is the SHA-256 of the list and summary, so a repeated write of
the same run (a retried write) is ignored ("If the content hashes match, the
request to put compliance information is ignored").

Who writes it: the runner, not the agent. The runner knows every outcome, also the ones where the agent
never spoke (not delivered, timed out, pending, not reachable), and only it can replace an earlier
COMPLIANT of an instance it cannot reach; the agent would need the run's id, and its document is near
its size budget. The runner's role (and the member role in organization accounts) may
``ssm:PutComplianceItems`` on its own account's instances and managed instances only.

An instance that leaves the target set keeps none of this type's items: a whole-fleet run puts an empty
list on each resource carrying the type that it did not report (``clear_departed``), a narrowed run on
each named instance reported ``not_target_tagged``; the tally counts them ``cleared``.

One PutComplianceItems per instance (the API takes one resource): ``WRITERS`` at once per (account,
region), over the clients' adaptive retries (throttling slows the client down), the instances with
something NON_COMPLIANT first, until ``stop_at`` (the Lambda deadline less the reserve for publishing);
what is left is counted ``not_written`` and keeps its earlier items. SSM documents no rate for
PutComplianceItems; at 10,000 instances in one account and region the writes take about a minute and a
half at 4 at once and ~35 ms each (the runner reserves ``SECONDS_PER_INSTANCE`` per instance for them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from ..shared.clock import Clock
from ..shared.observability import in_this_trace, logger
from ..shared.reasons import Reason
from ..shared.report import InstanceResult, Pull, short
from ..shared.troubleshooting import next_step
from .clients import AWS_ERRORS, error_code

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_ssm.literals import ComplianceSeverityType, ComplianceStatusType
    from mypy_boto3_ssm.type_defs import ComplianceExecutionSummaryTypeDef, ComplianceItemEntryTypeDef

RESOURCE_TYPE = "ManagedInstance"
EXECUTION_TYPE = "ecr-fleet-auth run"
INSTANCE_ITEM_ID = "instance"
WRITERS = 4
# Kept back from a run's wait per instance of a pair, for writing its compliance.
SECONDS_PER_INSTANCE = 0.01
COMPLIANT: ComplianceStatusType = "COMPLIANT"
NON_COMPLIANT: ComplianceStatusType = "NON_COMPLIANT"
# How urgent an instance item's NON_COMPLIANT is, by the instance's status (a compliant item keeps HIGH,
# the severity of the check). Pending and skipped are unknown, not broken: Compliance's summary counts
# them under LOW and INFORMATIONAL, apart from the HIGH of what is broken.
INSTANCE_SEVERITY: dict[str, ComplianceSeverityType] = {
    "succeeded": "HIGH",
    "failed": "HIGH",
    "unreachable": "HIGH",
    "pending": "LOW",
    "skipped": "INFORMATIONAL",
}
PULL_SEVERITY: ComplianceSeverityType = "HIGH"
# Reported instances with nothing to write to: no such instance, no managed node (never registered), a
# dry run's (one named but not target tagged gets an empty list: its earlier items go). An Inactive node
# is written to all the same: an earlier run may have left it COMPLIANT (where SSM refuses,
# InvalidResourceId, it is counted not_managed).
NOTHING_TO_WRITE = frozenset(
    {
        Reason.INSTANCE_NOT_FOUND,
        Reason.NOT_SSM_MANAGED,
        Reason.DRY_RUN,
    }
)
# Instances another run is working on: that run writes their items. This run's word would replace a
# fresher result of the other run (one that ends first writes, then this one's ``pending`` over it), so
# it writes none: ``instance_busy`` (another run's command is listed there), and the agent's ``locked``
# (another run's agent holds the instance's lock; agent/outcomes.py LOCKED).
OTHER_RUNS_INSTANCE = frozenset({Reason.INSTANCE_BUSY.value, "locked"})
GONE_STATES = frozenset({"shutting-down", "terminated"})
# Users the agent lists with a reason that is not a failure: not items (``no_home``: an account of
# the docker group without a home its docker could use; the troubleshooting page says why).
NOT_A_USER_FAILURE = frozenset({"no_home"})
# Registry states in which the user's docker pulls: the credential helper answers first (stale_auth: a
# stale token is still stored beside it, a notice), or a stored login (until it expires).
HELPER_STATES = frozenset({"helper", "stale_auth"})
LOGGED_IN = "logged_in"
# Why a user cannot pull, when the agent gave the registry no reason of its own.
STATE_REASONS = {
    "none": Reason.NOT_LOGGED_IN.value,
    "stale_auth": "stale_credentials",
    "helper_unavailable": "helper_unavailable",
    "shadowed": "token_shadowed",
}
DETAIL_CHARS = 4096  # an item's detail value (the model's AttributeValue)


@dataclass(frozen=True)
class ComplianceRun:
    """What every item of one run says of the run: its id and start, its action; the type it writes."""

    run_id: str
    action: str
    started: datetime
    compliance_type: str


@dataclass
class ComplianceTally:
    """What one run (or one part of it) wrote: ``written``; ``not_managed``: SSM knew no managed node of
    that id (InvalidResourceId); ``failed``: refused otherwise (after retries); ``not_written``: no time
    left. ``errors``: the refusals' codes."""

    compliance_type: str
    written: int = 0
    not_managed: int = 0
    failed: int = 0
    not_written: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # Instances no longer targeted (tag removed or changed, stopped) whose items of this type were removed.
    cleared: int = 0

    @property
    def missing(self) -> int:
        """Instances whose compliance is not this run's although it should be (the metric)."""
        return self.failed + self.not_written

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.compliance_type,
            "written": self.written,
            "not_managed": self.not_managed,
            "failed": self.failed,
            "not_written": self.not_written,
        }
        if self.errors:
            data["errors"] = dict(sorted(self.errors.items()))
        if self.cleared:
            data["cleared"] = self.cleared
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComplianceTally:
        """A tally as ``to_dict`` wrote it (a child's report, read back by the organization run's merge)."""
        return cls(
            str(data["type"]),
            written=int(data.get("written", 0)),
            not_managed=int(data.get("not_managed", 0)),
            failed=int(data.get("failed", 0)),
            not_written=int(data.get("not_written", 0)),
            errors={str(code): int(count) for code, count in dict(data.get("errors") or {}).items()},
            cleared=int(data.get("cleared", 0)),
        )

    @classmethod
    def combined(cls, compliance_type: str, parts: Iterable[ComplianceTally]) -> ComplianceTally:
        """The tally of a run from its parts' (its (account, region) pairs')."""
        total = cls(compliance_type)
        for part in parts:
            total.written += part.written
            total.not_managed += part.not_managed
            total.failed += part.failed
            total.not_written += part.not_written
            total.cleared += part.cleared
            for code, count in part.errors.items():
                total.errors[code] = total.errors.get(code, 0) + count
        return total


def write_compliance(
    ssm: SSMClient,
    instances: Sequence[InstanceResult],
    run: ComplianceRun,
    clock: Clock,
    *,
    stop_at: float,
) -> ComplianceTally:
    """Each instance's items for ``run`` (one account and region: ``ssm``'s), until ``stop_at``
    (``clock.monotonic()``); what it came to. Never raises for an AWS error: a write that fails is counted."""
    now = clock.now()
    lists = [(i.instance_id, compliance_items(i, run, now)) for i in instances]
    to_write = [(instance_id, items) for instance_id, items in lists if items is not None]
    to_write.sort(key=lambda entry: all(item["Status"] == COMPLIANT for item in entry[1]))
    writer = _Writer(ssm, run, clock, stop_at)
    # On the writers' threads too, every call is a subsegment of the invocation's trace.
    tasks = [in_this_trace(partial(writer.put, instance_id, items)) for instance_id, items in to_write]
    tally = ComplianceTally(run.compliance_type)
    for (_, items), outcome in zip(to_write, clock.concurrently(tasks, WRITERS), strict=True):
        if outcome == "written" and not items:
            tally.cleared += 1
        elif outcome == "written":
            tally.written += 1
        elif outcome == "not_written":
            tally.not_written += 1
        elif outcome == "InvalidResourceId":
            tally.not_managed += 1
        else:
            tally.failed += 1
            tally.errors[outcome] = tally.errors.get(outcome, 0) + 1
    if tally.missing:
        logger.warning("SSM Compliance not written for every instance", extra={"compliance": tally.to_dict()})
    return tally


def departed(ssm: SSMClient, kept: Collection[str], run: ComplianceRun) -> list[str] | str:
    """The resources of ``ssm``'s account and region that carry this deployment's type and are not in
    ``kept`` (the instances a whole-fleet run reported: what the target tag selects now), found with
    ListResourceComplianceSummaries (filter ComplianceType); or the error code SSM answered. Asked before
    the run's writes, so the listing never waits behind them for the client's retry quota."""
    found: list[str] = []
    try:
        pages = ssm.get_paginator("list_resource_compliance_summaries").paginate(
            Filters=[{"Key": "ComplianceType", "Values": [run.compliance_type], "Type": "EQUAL"}]
        )
        for page in pages:
            found += [
                summary["ResourceId"]
                for summary in page.get("ResourceComplianceSummaryItems", [])
                if summary.get("ResourceId") and summary["ResourceId"] not in kept
            ]
    except AWS_ERRORS as refusal:
        code = error_code(refusal)
        logger.warning("ListResourceComplianceSummaries failed", extra={"error": code})
        return code
    return found


def clear_departed(
    ssm: SSMClient,
    resources: list[str] | str,
    run: ComplianceRun,
    clock: Clock,
    tally: ComplianceTally,
    *,
    stop_at: float,
) -> None:
    """Remove this deployment's type from each of ``resources`` (``departed``'s answer): an instance
    whose tag was removed or changed, or that stopped, would otherwise keep its last items for ever.
    PutComplianceItems with an empty ``Items`` list (COMPLETE: "the system overwrites all existing
    compliance information for the resource") leaves none. Counted in ``tally`` (``cleared``; a refusal
    as any write's; a listing that failed, by its code in ``errors``)."""
    if isinstance(resources, str):
        tally.errors[resources] = tally.errors.get(resources, 0) + 1
        return
    writer = _Writer(ssm, run, clock, stop_at)
    tasks = [partial(writer.put, instance_id, []) for instance_id in resources]
    for outcome in clock.concurrently(tasks, WRITERS):
        if outcome == "written":
            tally.cleared += 1
        elif outcome == "not_written":
            tally.not_written += 1
        elif outcome != "InvalidResourceId":  # gone since: nothing left to clear
            tally.failed += 1
            tally.errors[outcome] = tally.errors.get(outcome, 0) + 1


class _Writer:
    """PutComplianceItems of one run in one account and region, until ``stop_at``."""

    def __init__(self, ssm: SSMClient, run: ComplianceRun, clock: Clock, stop_at: float) -> None:
        self.ssm, self.run, self.clock, self.stop_at = ssm, run, clock, stop_at
        self.summary: ComplianceExecutionSummaryTypeDef = {
            "ExecutionTime": run.started,
            "ExecutionId": run.run_id,
            "ExecutionType": EXECUTION_TYPE,
        }

    def put(self, instance_id: str, items: list[ComplianceItemEntryTypeDef]) -> str:
        """One instance's write: "written", "not_written" (no time left) or the error code SSM answered."""
        if self.clock.monotonic() >= self.stop_at:
            return "not_written"
        summary = {**self.summary, "ExecutionTime": _iso(self.run.started)}
        content = json.dumps({"items": items, "summary": summary}, sort_keys=True)
        try:
            self.ssm.put_compliance_items(
                ResourceId=instance_id,
                ResourceType=RESOURCE_TYPE,
                ComplianceType=self.run.compliance_type,
                ExecutionSummary=self.summary,
                Items=items,
                ItemContentHash=hashlib.sha256(content.encode()).hexdigest(),
                UploadType="COMPLETE",
            )
        except AWS_ERRORS as refusal:
            code = error_code(refusal)
            if code != "InvalidResourceId":
                extra = {"instance_id": instance_id, "error": code, "error_message": short(str(refusal))}
                logger.warning("PutComplianceItems failed", extra=extra)
            return code
        return "written"


def compliance_items(
    instance: InstanceResult, run: ComplianceRun, now: datetime
) -> list[ComplianceItemEntryTypeDef] | None:
    """The complete list of ``instance``'s items for ``run``; None when there is nothing to write to."""
    if instance.reason in NOTHING_TO_WRITE or instance.reason in OTHER_RUNS_INSTANCE:
        return None
    if instance.reason == Reason.NOT_TARGET_TAGGED:
        return []  # named, but no longer this deployment's: its earlier items go (an empty list)
    if instance.reason == Reason.INSTANCE_NOT_RUNNING and instance.detail.get("state") in GONE_STATES:
        return None
    items = [_instance_item(instance, run)]
    for pull in instance.users.pulls if instance.users is not None else ():
        if pull.registry:
            items.append(_pull_item(pull, now))
        elif pull.error not in NOT_A_USER_FAILURE:
            items.append(_user_item(pull))
    return items


def _instance_item(instance: InstanceResult, run: ComplianceRun) -> ComplianceItemEntryTypeDef:
    succeeded = instance.status == "succeeded"
    result = instance.status + (f", {instance.outcome}" if instance.outcome else "")
    details = {
        "action": run.action,
        "status": instance.status,
        "outcome": instance.outcome or "",
        "reason": str(instance.reason),
        "command_id": str(instance.detail.get("command_id") or ""),
        "message": str(instance.detail.get("message") or ""),
    }
    if not succeeded:
        details["next_step"] = next_step(instance.reason)
    if instance.users is not None and instance.users.not_listed:
        details["users_not_listed"] = str(instance.users.not_listed)
    return {
        "Id": INSTANCE_ITEM_ID,
        "Title": f"ecr-fleet-auth {run.action}: {result} ({instance.reason})",
        "Severity": INSTANCE_SEVERITY.get(instance.status, "HIGH"),
        "Status": COMPLIANT if succeeded else NON_COMPLIANT,
        "Details": _bounded(details),
    }


def can_pull(pull: Pull, now: datetime) -> tuple[bool, str]:
    """Whether the user's docker pulls from the registry now, and the reason to give (``ok`` when it does
    with nothing to say)."""
    if pull.state in HELPER_STATES and not pull.error:
        return True, STATE_REASONS.get(pull.state, "ok")
    if pull.state == LOGGED_IN and not pull.expired and not _past(pull.expires_at, now):
        return True, pull.error or "ok"
    if pull.state == LOGGED_IN:
        return False, Reason.LOGIN_EXPIRED.value
    return False, pull.error or STATE_REASONS.get(pull.state, pull.state)


def _pull_item(pull: Pull, now: datetime) -> ComplianceItemEntryTypeDef:
    pulls, reason = can_pull(pull, now)
    details = {
        "user": pull.user,
        "registry": pull.registry,
        "state": pull.state,
        "expires_at": pull.expires_at,
        "reason": reason,
    }
    if reason != "ok":
        details["next_step"] = next_step(reason)
    return {
        "Id": f"{pull.user}@{pull.registry}",
        "Title": f"docker pull from {pull.registry} as {pull.user}",
        "Severity": PULL_SEVERITY,
        "Status": COMPLIANT if pulls else NON_COMPLIANT,
        "Details": _bounded(details),
    }


def _user_item(pull: Pull) -> ComplianceItemEntryTypeDef:
    details = {"user": pull.user, "reason": pull.error, "next_step": next_step(pull.error)}
    return {
        "Id": pull.user,
        "Title": f"docker pull as {pull.user}",
        "Severity": PULL_SEVERITY,
        "Status": NON_COMPLIANT,
        "Details": _bounded(details),
    }


def _bounded(details: dict[str, str]) -> dict[str, str]:
    """Non-empty details, each within the model's 4,096 characters."""
    return {key: value[:DETAIL_CHARS] for key, value in details.items() if value}


def _past(expires_at: str, now: datetime) -> bool:
    """Whether ``expires_at`` (the agent's ISO 8601 UTC time) has passed; an unreadable one has not."""
    if not expires_at:
        return False
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= now


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
