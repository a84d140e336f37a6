"""An organization's run beyond one invocation, its plain part: pairs into batches, reports into one.

``batches``: the plan's (account, region) pairs in batches of whole accounts, each at most one
invocation's measured load (``pairs_per_child``), so a child is the runner narrowed to its accounts
(one AssumeRole per account, as in one invocation) and finishes within its invocation. ``Tally``: the
children's reports, read one at a time, become one report with exact counts, every target, every
command id and the instances that need attention (at most ``LISTED_INSTANCES``: two million
instances do not fit in one function's memory, and nobody reads past the first screens); a batch
with no report has its pairs reported unreachable, ``child_run_failed``, naming its child execution,
and fails the run (``error``), so nothing is lost and the ``RunsFailed`` alarm hears of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..aws.compliance import ComplianceTally
from ..aws.organization import Target
from ..shared import contract
from ..shared.reasons import Reason
from ..shared.report import Counted, InstanceResult, Report, TargetResult, short
from .runner import MAX_CONCURRENT_PAIRS, found_once

# One wave of MAX_CONCURRENT_PAIRS pairs took about 125 s at 10% maxConcurrency with agents of 5-15 s
# (make bench BENCH=organization, docs/how-it-works/organizations.md, "The ceiling"): a child gets as
# many waves as fit in the run's waitSeconds at 150 s each (200 pairs at the default 600 s), at least one.
WAVE_SECONDS = 150
# A merged report lists at most this many instances that need attention; its counts are exact.
LISTED_INSTANCES = 10_000
COUNTED = ("total", "succeeded", "changed", "unchanged", *contract.INSTANCE_STATUSES[1:])


def pairs_per_child(wait_seconds: int) -> int:
    """The pairs one child runs: one invocation's measured load at ``wait_seconds``."""
    return MAX_CONCURRENT_PAIRS * max(1, wait_seconds // WAVE_SECONDS)


def batches(targets: Sequence[Target], most: int) -> list[list[Target]]:
    """``targets`` in batches of whole accounts (in order), each of at most ``most`` pairs; an account
    with more pairs than that (more regions than ``most``) is a batch of its own."""
    by_account: dict[str, list[Target]] = {}
    for target in targets:
        by_account.setdefault(target.pair.account, []).append(target)
    found: list[list[Target]] = []
    for pairs in by_account.values():
        if found and len(found[-1]) + len(pairs) <= most:
            found[-1].extend(pairs)
        else:
            found.append(list(pairs))
    return found


def describe(batch: Sequence[Target]) -> dict[str, Any]:
    """What the plan says of a batch: its pairs and accounts (first and last)."""
    accounts = list(dict.fromkeys(target.pair.account for target in batch))
    return {
        "pairs": len(batch),
        "accounts": len(accounts),
        "first_account": accounts[0],
        "last_account": accounts[-1],
    }


@dataclass
class Tally:
    """The children's reports (dicts, as ``Report.to_dict`` wrote them), added one at a time.

    ``requested``: a run narrowed to instance ids keeps every instance (at most the ids, per pair) and
    counts them at the end, after ``found_once`` (an instance one child found is not ``instance_not_found``
    in another's); any other run adds up the children's counts."""

    requested: tuple[str, ...] | None = None
    instances: list[InstanceResult] = field(default_factory=list)
    targets: list[TargetResult] = field(default_factory=list)
    command_ids: list[str] = field(default_factory=list)
    summary: Counter[str] = field(default_factory=Counter)
    accounts: dict[str, Counter[str]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    # What each child wrote to SSM Compliance (a dry run's children wrote nothing, and say so).
    compliance: list[ComplianceTally] = field(default_factory=list)

    def add_report(self, report: Mapping[str, Any], key: str) -> None:
        for entry in report.get("instances", []):
            if self.requested or (entry["status"] != "succeeded" and len(self.instances) < LISTED_INSTANCES):
                self.instances.append(InstanceResult.from_dict(entry))
        summary = report["summary"]
        self.summary.update({name: summary[name] for name in COUNTED})
        for account, counts in summary.get("accounts", {}).items():
            self._account(account).update({name: counts[name] for name in COUNTED})
        self.targets += [TargetResult.from_dict(target) for target in report.get("targets", [])]
        self.command_ids += report.get("command_ids", [])
        if report.get("error"):
            self.errors.append(dict(report["error"]))
        if report.get("compliance") is not None:
            self.compliance.append(ComplianceTally.from_dict(report["compliance"]))
        self.parts.append(key)

    def add_unreported(self, batch: int, targets: Iterable[Target], why: Mapping[str, str]) -> None:
        """A batch whose child left no report: each of its pairs unreachable, and the run failed."""
        pairs = list(targets)
        detail = {"batch": batch, **why}
        for target in pairs:
            self._account(target.pair.account)
            self.targets.append(
                TargetResult(
                    target.pair.account, target.pair.region, "unreachable", Reason.CHILD_RUN_FAILED, detail
                )
            )
        accounts = sorted({target.pair.account for target in pairs})
        where = f"accounts {accounts[0]}..{accounts[-1]}" if len(accounts) > 1 else f"account {accounts[0]}"
        self.errors.append(
            {
                "reason": Reason.RUN_FAILED.value,
                "code": why.get("error") or "ChildRunFailed",
                "message": short(
                    f"batch {batch} ({len(pairs)} pairs, {where}) ended without a report: "
                    f"{why.get('error') or 'no report'} in {why.get('execution', 'its child execution')}"
                ),
            }
        )

    def report(  # noqa: PLR0917 - the run's own fields, from the plan
        self,
        run_id: str,
        action: str,
        dry_run: bool,
        source: str,
        started_at: str,
        finished_at: str,
        *,
        execution: str,
        error: dict[str, str] | None = None,
        compliance_type: str,
    ) -> Report:
        """The one report; ``error``: the run's own (the plan's, a failed state's), else a child's first;
        ``compliance``: the children's tallies added up (``compliance_type``'s; none on a dry run)."""
        instances = self.instances
        counted = None
        if self.requested:
            instances = found_once(instances)
        else:
            counted = Counted(
                {name: self.summary[name] for name in COUNTED},
                {
                    account: {name: counts[name] for name in COUNTED}
                    for account, counts in self.accounts.items()
                },
            )
        return Report(
            run_id=run_id,
            action=action,
            dry_run=dry_run,
            source=source,
            started_at=started_at,
            finished_at=finished_at,
            instances=tuple(sorted(instances, key=lambda i: (i.account_id, i.region, i.instance_id))),
            command_ids=tuple(self.command_ids),
            error=error or (self.errors[0] if self.errors else None),
            targets=tuple(self.targets),
            counted=counted,
            execution=execution,
            compliance=None
            if dry_run
            else ComplianceTally.combined(compliance_type, self.compliance).to_dict(),
        )

    def _account(self, account: str) -> Counter[str]:
        return self.accounts.setdefault(account, Counter(dict.fromkeys(COUNTED, 0)))
