"""Which (account, region) pairs a run covers: the function's own, and the StackSet's stack instances.

Without a StackSet (``STACK_SET_NAME`` empty) a run covers its own account and region only.
With one, the pairs are the own pair (own credentials, own document) plus every stack instance
of the organization's StackSet, read with CloudFormation's ListStackInstances (its paginator,
``CallAs`` = ``STACK_SET_CALL_AS``), kept to ``MEMBER_ACCOUNTS`` / ``MEMBER_REGIONS`` when set
(never widened). A stack instance equal to the own pair is the own pair.

A stack instance that is not ``CURRENT`` is not necessarily unusable (CloudFormation API
reference, StackInstanceSummary and StackInstanceComprehensiveStatus): ``OUTDATED`` covers every
stack during a StackSet operation (``DetailedStatus`` ``PENDING`` or ``RUNNING``) and every stack
whose last update failed or was stopped (``FAILED``, ``CANCELLED``) while the previous stack still
stands; ``INOPERABLE`` is a stack a failed delete left behind; ``SKIPPED_SUSPENDED_ACCOUNT`` says the
account "was suspended at the time of the operation" and stays until the next StackSet operation, so
a reinstated account's stack that stands is tried like any other (a still suspended one answers the
role or the calls with a refusal, and the pair is reported unreachable for that). Every agent change
renames the member document, so every deploy is such an update. So a pair whose stack instance has a stack
(``StackId``) is run with what that stack offers — its role, and the agent document it has
(``MemberDocuments``: the expected one, else the newest earlier version with the contract's
parameters) — and its report target says the stack instance's status and detailed status. Only a
pair with nothing to use is unreachable without being called (``member_stack_not_ready``: no stack
was created there, whatever the detailed status), or after one look
(``member_document_missing``: no agent document of the stack there; ``member_document_outdated``:
only earlier versions whose parameters refuse the values to be sent).

An event may narrow the pairs by ``account_ids`` and ``regions``; naming an account or region
outside them is the caller's error (``InvalidEvent``), raised before anything is sent. A run of
instance events covers the pairs its events came from (``pair_targets``): the own pair, and in an
organization the member pairs whose stacks forward their instances' events to the stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..shared import contract
from ..shared.events import RunRequest
from ..shared.invocations import InvalidEvent
from ..shared.observability import logger
from ..shared.reasons import Reason
from ..shared.settings import RunnerSettings
from .clients import AWS_ERRORS, ClientFactory, Pair, error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_ssm import SSMClient

LIST_PAGE_SIZE = 100  # ListStackInstances' MaxResults limit
DOCUMENT_PAGE_SIZE = 50  # ListDocuments' MaxResults limit
MEMBER_DOCUMENT_VERSION = "1"  # a member document's content change gives it a new name, never a version
# What a member role from before the document lookup answers it: the expected document is used, as then.
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})


@dataclass(frozen=True)
class Target:
    """One pair of the run: ``ready`` when the run may call it; otherwise why not."""

    pair: Pair
    home: bool = False
    ready: bool = True
    reason: Reason | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # A member's stack instance that is not CURRENT (status, detailed_status, status_reason), run on
    # the stack that still stands there; empty for CURRENT ones and the own pair.
    stack_instance: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As the organization's state machine keeps it between its plan and a child (JSON)."""
        return {
            "account_id": self.pair.account,
            "region": self.pair.region,
            "home": self.home,
            "ready": self.ready,
            "reason": None if self.reason is None else str(self.reason),
            "detail": dict(self.detail),
            "stack_instance": dict(self.stack_instance),
        }

    @classmethod
    def from_dict(cls, kept: Mapping[str, Any]) -> Target:
        """``to_dict``'s shape back as a target."""
        reason = kept.get("reason")
        return cls(
            Pair(str(kept["account_id"]), str(kept["region"])),
            home=bool(kept.get("home", False)),
            ready=bool(kept.get("ready", True)),
            reason=None if reason is None else Reason(reason),
            detail=dict(kept.get("detail") or {}),
            stack_instance={str(k): str(v) for k, v in (kept.get("stack_instance") or {}).items()},
        )


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
    if organization_mode(settings):
        assert cloudformation is not None
        found += _members(settings, home, cloudformation)
    return narrow(found, request)


def pair_targets(
    pairs: set[Pair], settings: RunnerSettings, home: Pair, factory: ClientFactory
) -> dict[Pair, Target]:
    """The pairs among ``pairs`` this stack covers (those of instance events): its own, and in an
    organization those of the StackSet's stack instances (listed only when a member pair is asked
    for). A pair not returned is not covered."""
    found = {home: Target(home, home=True)} if home in pairs else {}
    if organization_mode(settings) and pairs - {home}:
        found.update(
            {t.pair: t for t in _members(settings, home, factory.cloudformation()) if t.pair in pairs}
        )
    return found


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
            if summary.get("StackId"):
                members[pair] = Target(pair, stack_instance=detail)  # the previous stack still stands
                continue
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


@dataclass(frozen=True)
class DocumentChoice:
    """The agent document a member pair offers for a command (``name``; None: none fits). When none
    fits but an earlier version takes the contract's parameters, ``outdated`` says which version and
    which of its parameters refuses the value to be sent (``member_document_outdated``)."""

    name: str | None
    outdated: dict[str, str] = field(default_factory=dict)


class MemberDocuments:
    """Which agent document a member pair offers: the one the stack expects (``MEMBER_DOCUMENT_NAME``),
    else, while its stack instance is being updated or after an update failed, the newest earlier
    version that takes the contract's parameters *and accepts the values to be sent*: an earlier
    version's ``allowedPattern`` or ``allowedValues`` may predate a value the runner sends now (the
    registries' dual-stack names), and SendCommand refuses a value that does not match them (SSM API
    reference, SendCommand: InvalidParameters, "You must specify values for all required parameters in
    the Amazon Web Services Systems Manager document ... and only supported parameters"; Systems
    Manager User Guide, "SSM document syntax elements": allowedValues, allowedPattern). One ListDocuments
    call (``Owner`` Self, ``Name`` prefix: the SSM API reference's DocumentKeyValuesFilter) finds every
    version; DescribeDocument names an earlier one's parameters, GetDocument gives its content."""

    def __init__(self, ssm: SSMClient) -> None:
        self._ssm = ssm

    def choose(self, expected: str, values: Mapping[str, str]) -> DocumentChoice:
        """The document to send ``values`` with."""
        family = contract.content_version_family(expected)
        try:
            found = self._versions(family)
        except AWS_ERRORS as error:
            if error_code(error) not in ACCESS_DENIED_CODES:
                raise
            # A member role from before the lookup was granted: send the expected document, as then.
            logger.warning("may not list the member documents; sending the expected one")
            return DocumentChoice(expected)
        if expected in found:
            return DocumentChoice(expected)
        outdated: dict[str, str] = {}
        for name in sorted(found, key=lambda n: (found[n], n), reverse=True):
            if not self._takes_the_contracts_parameters(name):
                continue
            refusal = self._refusal(name, values)
            if refusal is None:
                return DocumentChoice(name)
            outdated = outdated or {"outdated_document": name, **refusal}
        return DocumentChoice(None, outdated)

    def _refusal(self, name: str, values: Mapping[str, str]) -> dict[str, str] | None:
        """The first parameter of document ``name`` whose allowedValues or allowedPattern refuse its
        value (``parameter``, ``problem``); None if all accept. A member role from before GetDocument
        was granted cannot tell: the document is taken, as then."""
        try:
            content = self._ssm.get_document(Name=name, DocumentFormat="JSON")["Content"]
        except AWS_ERRORS as error:
            if error_code(error) not in ACCESS_DENIED_CODES:
                raise
            logger.warning("may not read the member document; sending it unchecked", extra={"document": name})
            return None
        declared: Mapping[str, Any] = json.loads(content).get("parameters", {})
        for parameter, value in values.items():
            spec = declared.get(parameter, {})
            allowed = spec.get("allowedValues")
            if allowed is not None and value not in [str(v) for v in allowed]:
                return {"parameter": parameter, "problem": f"not one of its allowedValues {allowed}"}
            # As SSM applies it: a search, the pattern carrying its own anchors (contract.py).
            pattern = spec.get("allowedPattern")
            if pattern is not None and not re.search(pattern, value):
                return {"parameter": parameter, "problem": f"does not match its allowedPattern {pattern}"}
        return None

    def _versions(self, family: str) -> dict[str, float]:
        """Name -> creation time of every content version of the family there."""
        pages = self._ssm.get_paginator("list_documents").paginate(
            Filters=[{"Key": "Owner", "Values": ["Self"]}, {"Key": "Name", "Values": [family]}],
            PaginationConfig={"PageSize": DOCUMENT_PAGE_SIZE},
        )
        return {
            identifier["Name"]: identifier["CreatedDate"].timestamp() if "CreatedDate" in identifier else 0.0
            for page in pages
            for identifier in page.get("DocumentIdentifiers", [])
            if contract.is_content_version(identifier.get("Name", ""), family)
        }

    def _takes_the_contracts_parameters(self, name: str) -> bool:
        described = self._ssm.describe_document(Name=name)["Document"]
        declared = {parameter.get("Name", "") for parameter in described.get("Parameters", [])}
        return described.get("Status", "Active") == "Active" and declared >= set(contract.PARAMETERS_BY_NAME)
