"""Which (account, region) pairs a run covers: the function's own, and the StackSet's stack instances.

Without a StackSet (``STACK_SET_NAME`` empty) a run covers its own account and region only.
With one, the pairs are the own pair (own credentials, own document) plus every stack instance
of the organization's StackSet, read with CloudFormation's ListStackInstances (its paginator,
``CallAs`` = ``STACK_SET_CALL_AS``), kept to ``MEMBER_ACCOUNTS`` / ``MEMBER_REGIONS`` when set
(never widened). A stack instance equal to the own pair is the own pair. One whose ``Status``
is not ``CURRENT`` (``OUTDATED``, ``INOPERABLE``: CloudFormation API reference,
StackInstanceSummary) is reported unreachable without being called
(``member_stack_not_ready``, with its status, detailed status and reason): its role or document
may be missing or old.

An event may narrow the pairs by ``account_ids`` and ``regions``; naming an account or region
outside them is the caller's error (``InvalidEvent``), raised before anything is sent. Runs of
instance events cover the own pair only: the stack's rules saw those events there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import contract
from .clients import Pair
from .events import InvalidEvent, RunRequest
from .reasons import Reason
from .settings import RunnerSettings

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

LIST_PAGE_SIZE = 100  # ListStackInstances' MaxResults limit
MEMBER_DOCUMENT_VERSION = "1"  # a member document's content change gives it a new name, never a version


@dataclass(frozen=True)
class Target:
    """One pair of the run: ``ready`` when the run may call it; otherwise why not."""

    pair: Pair
    home: bool = False
    ready: bool = True
    reason: Reason | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def organization_mode(settings: RunnerSettings) -> bool:
    return bool(settings.stack_set_name)


def targets(
    request: RunRequest,
    settings: RunnerSettings,
    home: Pair,
    cloudformation: CloudFormationClient | None,
) -> list[Target]:
    """The run's pairs, the own pair first, narrowed by the event (``InvalidEvent``: it names another)."""
    found = [Target(home, home=True)]
    if organization_mode(settings) and request.source not in contract.INSTANCE_EVENT_SOURCES:
        assert cloudformation is not None
        found += _members(settings, home, cloudformation)
    return narrow(found, request)


def narrow(found: list[Target], request: RunRequest) -> list[Target]:
    """The pairs of the event's ``account_ids`` and ``regions``; an unknown one is an error naming it."""
    accounts = {target.pair.account for target in found}
    regions = {target.pair.region for target in found}
    problems = [
        f"account_ids: {account!r} is not covered by this stack (covered: {_listed(accounts)})"
        for account in request.account_ids or ()
        if account not in accounts
    ]
    problems += [
        f"regions: {region!r} is not covered by this stack (covered: {_listed(regions)})"
        for region in request.regions or ()
        if region not in regions
    ]
    chosen = [
        target
        for target in found
        if (request.account_ids is None or target.pair.account in request.account_ids)
        and (request.regions is None or target.pair.region in request.regions)
    ]
    if not problems and not chosen:
        problems.append("account_ids and regions: together they name no (account, region) this stack covers")
    if problems:
        raise InvalidEvent("invalid event: " + " | ".join(problems))
    return chosen


def _members(settings: RunnerSettings, home: Pair, cloudformation: CloudFormationClient) -> list[Target]:
    pages = cloudformation.get_paginator("list_stack_instances").paginate(
        StackSetName=settings.stack_set_name,
        CallAs=settings.stack_set_call_as,
        PaginationConfig={"PageSize": LIST_PAGE_SIZE},
    )
    members: dict[Pair, Target] = {}
    for page in pages:
        for summary in page.get("Summaries", []):
            pair = Pair(summary.get("Account", ""), summary.get("Region", ""))
            if pair == home or not _kept(pair, settings):
                continue
            status = summary.get("Status", "")
            if status == "CURRENT":
                members[pair] = Target(pair)
                continue
            detail = {
                "status": status,
                "detailed_status": summary.get("StackInstanceStatus", {}).get("DetailedStatus", ""),
                "status_reason": summary.get("StatusReason", ""),
            }
            members[pair] = Target(pair, ready=False, reason=Reason.MEMBER_STACK_NOT_READY, detail=detail)
    return [members[pair] for pair in sorted(members)]


def _kept(pair: Pair, settings: RunnerSettings) -> bool:
    """``MEMBER_ACCOUNTS`` / ``MEMBER_REGIONS`` narrow what the StackSet lists (empty: no narrowing)."""
    if settings.member_accounts and pair.account not in settings.member_accounts:
        return False
    return not settings.member_regions or pair.region in settings.member_regions


def _listed(items: Sequence[str] | set[str], most: int = 10) -> str:
    ordered = sorted(items)
    shown = ", ".join(ordered[:most])
    return shown + (f", ... and {len(ordered) - most} more" if len(ordered) > most else "")
