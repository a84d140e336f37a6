"""The run report (docs/reference/contract.md, "The report") and its notification text.

Plain data and plain functions: the report's dict is the Lambda's return value,
its log record and the source of its metrics and SNS message.

Every instance entry says its ``account_id`` and ``region``. A run of an organization
(``targets`` set) also lists every (account, region) pair it covered and whether it reached it
(``targets``), and counts instances per account (``summary.accounts``).

A run merged from the reports of an organization's state machine (``organization_run``) may be
larger than one process holds as objects: it carries its exact counts (``counted``) and lists only
the instances that need attention, so everything read from it — the summary, the log record, the
metrics, the e-mail — is the same as for a report that lists every instance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from . import contract
from .partitions import partition_of
from .troubleshooting import next_step

FAILURE_STATUSES = ("failed", "unreachable")
# SNS e-mail is read by a person: a screenful per status, not the whole fleet.
MAX_LISTED_PER_STATUS = 25
MAX_MESSAGE_CHARS = 12_000
MAX_SUBJECT_CHARS = 100
# A failed run's error message, and an SSM refusal's, in the report, the log and the e-mail.
ERROR_MESSAGE_CHARS = 300
MAX_COMMAND_LINKS = 10


@dataclass(frozen=True)
class Pull:
    """One user x registry of the agent's result line (``users[].registries``), or a user the agent
    could not serve at all (``registry`` empty, ``error`` the user's reason)."""

    user: str
    registry: str
    state: str
    expires_at: str = ""
    error: str = ""
    expired: bool = False


@dataclass(frozen=True)
class AgentUsers:
    """What the agent's result line says of each user: SSM Compliance is written from it
    (``compliance.py``); not part of the report (the report is per instance)."""

    pulls: tuple[Pull, ...] = ()
    not_listed: int = 0  # users_truncated: users left out to keep the line within its size


@dataclass(frozen=True)
class InstanceResult:
    instance_id: str
    name: str
    status: str
    outcome: str | None
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    account_id: str = ""
    region: str = ""
    # The agent's users (None: the agent did not speak); not in ``to_dict``.
    users: AgentUsers | None = None

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> InstanceResult:
        """An entry of a report's ``instances`` (``to_dict``'s shape) back as a result."""
        return cls(
            instance_id=entry["instance_id"],
            name=entry.get("name") or "",
            status=entry["status"],
            outcome=entry.get("outcome"),
            reason=entry["reason"],
            detail=dict(entry.get("detail") or {}),
            account_id=entry.get("account_id", ""),
            region=entry.get("region", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "account_id": self.account_id,
            "region": self.region,
            "name": self.name,
            "status": self.status,
            "outcome": self.outcome,
            "reason": str(self.reason),
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class TargetResult:
    """One (account, region) of an organization's run: reached, or why not."""

    account_id: str
    region: str
    status: str  # contract.TARGET_STATUSES
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> TargetResult:
        """An entry of a report's ``targets`` back as a result."""
        return cls(
            account_id=entry["account_id"],
            region=entry["region"],
            status=entry["status"],
            reason=entry.get("reason"),
            detail=dict(entry.get("detail") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "region": self.region,
            "status": self.status,
            "reason": None if self.reason is None else str(self.reason),
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class Report:
    run_id: str
    action: str
    dry_run: bool
    source: str
    started_at: str
    finished_at: str
    instances: tuple[InstanceResult, ...]
    command_ids: tuple[str, ...]
    # A run that stopped before it could report per instance: reason run_failed, code, message.
    error: dict[str, str] | None = None
    # An organization's run: every (account, region) it covered (None: a single-account run).
    targets: tuple[TargetResult, ...] | None = None
    # A run merged from parts: its exact counts, ``instances`` listing only some of them (None: all listed).
    counted: Counted | None = None
    # A run of the organization's state machine: its execution's ARN.
    execution: str | None = None
    # A run of instance events: instances whose command Run Command refused for a passing cause
    # (Rate Exceeded: nothing ran), left out of this report for their events to come again
    # (``triggers``). Neither counted, listed nor published: the run that gives up reports them.
    retried: tuple[InstanceResult, ...] = ()
    # What the run wrote to SSM Compliance (``compliance.ComplianceTally.to_dict``); None: a dry run.
    compliance: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        counts: dict[str, Any] = dict(self.counted.summary) if self.counted else _counts(self.instances)
        if self.targets is not None:
            counts["accounts"] = self.accounts()
        return counts

    def accounts(self) -> dict[str, dict[str, int]]:
        """Counts like the summary's for each account the run covered (an unreached one counts 0)."""
        if self.counted is not None:
            return {account: dict(counts) for account, counts in sorted(self.counted.accounts.items())}
        named = sorted({t.account_id for t in self.targets or ()} | {i.account_id for i in self.instances})
        return {account: _counts([i for i in self.instances if i.account_id == account]) for account in named}

    @property
    def unreachable_targets(self) -> list[TargetResult]:
        return [target for target in self.targets or () if target.status == "unreachable"]

    @property
    def has_failures(self) -> bool:
        counts = self.summary()
        return (
            self.error is not None
            or any(counts[status] for status in FAILURE_STATUSES)
            or bool(self.unreachable_targets)
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "action": self.action,
            "dry_run": self.dry_run,
            "source": self.source,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "summary": self.summary(),
            "instances": [instance.to_dict() for instance in self.instances],
            "command_ids": list(self.command_ids),
        }
        if self.targets is not None:
            data["targets"] = [target.to_dict() for target in self.targets]
        if self.compliance is not None:
            data["compliance"] = dict(self.compliance)
        if self.error is not None:
            data["error"] = dict(self.error)
        if self.execution is not None:
            data["execution"] = self.execution
        return data


@dataclass(frozen=True)
class Counted:
    """The exact counts of a report whose ``instances`` list only some of its instances: ``summary``
    (``total``, ``succeeded``, ... as ``_counts`` gives them) and the same per account."""

    summary: dict[str, int]
    accounts: dict[str, dict[str, int]]


def counts(instances: Sequence[InstanceResult]) -> dict[str, int]:
    """The summary's counts of ``instances``: total, succeeded (changed, unchanged), and per status."""
    return _counts(instances)


def _counts(instances: Sequence[InstanceResult]) -> dict[str, int]:
    statuses = Counter(instance.status for instance in instances)
    outcomes = Counter(i.outcome for i in instances if i.status == "succeeded")
    return {
        "total": len(instances),
        "succeeded": statuses["succeeded"],
        "changed": outcomes["changed"],
        "unchanged": outcomes["unchanged"],
        "failed": statuses["failed"],
        "unreachable": statuses["unreachable"],
        "skipped": statuses["skipped"],
        "pending": statuses["pending"],
    }


def should_notify(report: Report, policy: str) -> bool:
    """Per the notify policy; a dry run sends nothing, since nothing was run."""
    if report.dry_run or policy == "never":
        return False
    return policy == "always" or report.has_failures


def subject(report: Report) -> str:
    if report.error is not None:
        return f"ecr-fleet-auth {report.action}: run failed ({report.error['code']})"[:MAX_SUBJECT_CHARS]
    counts = report.summary()
    problems = [f"{counts[status]} {status}" for status in (*FAILURE_STATUSES, "pending") if counts[status]]
    if problems:
        state = ", ".join(problems) + f" of {counts['total']}"
    else:
        state = f"{counts['succeeded']} of {counts['total']} succeeded"
    unreached = report.unreachable_targets
    if unreached:
        state += f"; {len(unreached)} of {len(report.targets or ())} account-regions unreachable"
    return f"ecr-fleet-auth {report.action}: {state}"[:MAX_SUBJECT_CHARS]


# The AWS Management Console of each partition that has one documented: "https://region-code.console.aws.amazon.com"
# (AWS General Reference, AWS Management Console endpoints), the China Regions' console.amazonaws.cn and
# AWS GovCloud (US)'s console.amazonaws-us-gov.com (its sign-in is signin.amazonaws-us-gov.com, GovCloud
# User Guide). The partition is botocore's (``partitions.partition_of``); a partition not listed (the
# isolated ones, the European Sovereign Cloud) gets no link rather than a wrong one.
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def console_url(region: str, path: str) -> str:
    """``path`` (``/service/home...``, its fragment after it) in ``region``'s console; "" when the
    region's partition has no console known here. The standard partition's consoles are regional."""
    host = CONSOLE_HOSTS.get(partition_of(region).name) if region else None
    if host is None:
        return ""
    if host == CONSOLE_HOSTS["aws"]:
        host = f"{region}.{host}"
    page, _, fragment = path.partition("#")
    separator = "&" if "?" in page else "?"
    return f"https://{host}{page}{separator}region={region}" + (f"#{fragment}" if fragment else "")


def output_log_link(log_group: str, region: str) -> str:
    """The CloudWatch console page of the Run Command output log group.

    The console's fragment escapes '/' as '$252F' (URL-encoded twice, '%' written '$')."""
    escaped = quote(quote(log_group, safe=""), safe="").replace("%", "$")
    return console_url(region, f"/cloudwatch/home#logsV2:log-groups/log-group/{escaped}")


def command_link(command_id: str, region: str) -> str:
    """Run Command's console page of one command (its targets, statuses and output per instance)."""
    return console_url(region, f"/systems-manager/run-command/{quote(command_id, safe='')}")


def _command_regions(report: Report, default_region: str) -> dict[str, str]:
    """Each command's region: the region of an instance it reached (an organization's run sends one
    command per account and region), else the function's."""
    regions = {
        str(instance.detail["command_id"]): instance.region
        for instance in report.instances
        if instance.detail.get("command_id") and instance.region
    }
    return {command: regions.get(command, default_region) for command in report.command_ids}


def message(report: Report, *, output_log_group: str = "", region: str = "") -> str:
    """A plain-text summary a person can read at a glance: counts, then what needs attention,
    each with its next step, then where the full agent output is."""
    counts = report.summary()
    lines = [
        subject(report),
        "",
        f"Run {report.run_id} ({report.source}{', dry run' if report.dry_run else ''})",
        f"Started {report.started_at}, finished {report.finished_at}",
        *([f"State machine execution: {report.execution}"] if report.execution else []),
        "",
        f"Instances: {counts['total']}",
        f"  succeeded:   {counts['succeeded']}"
        f" ({counts['changed']} changed, {counts['unchanged']} unchanged)",
        *(f"  {status + ':':<12} {counts[status]}" for status in contract.INSTANCE_STATUSES[1:]),
    ]
    if report.error is not None:
        lines[2:2] = [
            f"The run failed before it could report on every instance: {report.error['code']}",
            f"  {report.error['message']}",
            f"  next step: {next_step(report.error['reason'])}",
            "",
        ]
    if report.targets is not None:
        lines += _targets_lines(report)
    for status in (*FAILURE_STATUSES, "pending"):
        listed = [instance for instance in report.instances if instance.status == status]
        if counts[status]:
            lines += ["", f"{status.capitalize()} ({counts[status]}):"]
            for instance in listed[:MAX_LISTED_PER_STATUS]:
                lines += [
                    _line(instance, where_too=report.targets is not None),
                    f"      next step: {next_step(instance.reason)}",
                ]
            more = counts[status] - min(len(listed), MAX_LISTED_PER_STATUS)
            if more > 0:
                lines.append(f"  ... and {more} more (see the run's log)")
    if report.command_ids:
        lines += ["", "Run Command ids: " + ", ".join(_bounded(report.command_ids, 10))]
        links = [
            link
            for command, where in list(_command_regions(report, region).items())[:MAX_COMMAND_LINKS]
            if (link := command_link(command, where))
        ]
        if links:
            lines += ["", "The commands in the console:", *(f"  {link}" for link in links)]
    log_link = output_log_link(output_log_group, region) if output_log_group and region else ""
    if log_link:
        lines += ["", "Full agent output per instance:", f"  {log_link}"]
    text = "\n".join(lines) + "\n"
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 40].rsplit("\n", 1)[0] + "\n... (truncated)\n"
    return text


# AWS Chatbot renders in a channel only AWS services' events and "custom notifications" in its own event
# format (Chatbot Administrator Guide, "Custom notifications": version "1.0", source "custom", content
# with textType "client-markdown", title and description); plain text it does not show. The chat gets
# a short summary and the console links; the e-mail keeps the whole plain-text report.
CHAT_INSTANCES = 5
CHAT_DESCRIPTION_CHARS = 3_000


def chat_notification(report: Report, *, region: str = "") -> dict[str, Any]:
    """The report as a Chatbot custom notification: the subject as title; the counts, the first instances
    that need attention with their reason, and the links to the commands in the console."""
    counts = report.summary()
    lines = [
        f"Run `{report.run_id}` ({report.source}): {counts['total']} instances, "
        + ", ".join(f"{status} {counts[status]}" for status in contract.INSTANCE_STATUSES if counts[status])
    ]
    if report.error is not None:
        lines.append(f"*The run failed:* {report.error['code']}: {report.error['message']}")
    attention = [i for i in report.instances if i.status in (*FAILURE_STATUSES, "pending")]
    for instance in attention[:CHAT_INSTANCES]:
        lines.append(f"• `{instance.instance_id}` {instance.status}: {instance.reason}")
    if len(attention) > CHAT_INSTANCES:
        lines.append(f"… and {len(attention) - CHAT_INSTANCES} more (the e-mail and the run's log list them)")
    for command, where in list(_command_regions(report, region).items())[:MAX_COMMAND_LINKS]:
        link = command_link(command, where)
        lines.append(f"[Command {command}]({link})" if link else f"Command `{command}`")
    description = "\n".join(lines)
    if len(description) > CHAT_DESCRIPTION_CHARS:
        description = description[: CHAT_DESCRIPTION_CHARS - 2].rsplit("\n", 1)[0] + "\n…"
    return {
        "version": "1.0",
        "source": "custom",
        "content": {"textType": "client-markdown", "title": subject(report), "description": description},
    }


def _targets_lines(report: Report) -> list[str]:
    """Per account, its counts; then every account-region the run could not reach, with its next step."""
    lines = ["", f"Accounts: {len(report.accounts())}, account-regions: {len(report.targets or ())}"]
    for account, counts in report.accounts().items():
        shown = ", ".join(
            f"{counts[status]} {status}" for status in contract.INSTANCE_STATUSES if counts[status]
        )
        lines.append(f"  {account}: {counts['total']} instances" + (f" ({shown})" if shown else ""))
    unreached = report.unreachable_targets
    if unreached:
        lines += ["", f"Unreachable account-regions ({len(unreached)}):"]
        for target in unreached[:MAX_LISTED_PER_STATUS]:
            error = target.detail.get("error") or target.detail.get("status") or ""
            lines += [
                f"  {target.account_id}/{target.region}: {target.reason}" + (f" - {error}" if error else ""),
                f"      next step: {next_step(target.reason)}",
            ]
        if len(unreached) > MAX_LISTED_PER_STATUS:
            lines.append(f"  ... and {len(unreached) - MAX_LISTED_PER_STATUS} more (see the run's log)")
    return lines


def _line(instance: InstanceResult, *, where_too: bool) -> str:
    name = f" ({instance.name})" if instance.name else ""
    where = f" [{instance.account_id}/{instance.region}]" if where_too else ""
    text = f"  {instance.instance_id}{name}{where}: {instance.reason}"
    message = instance.detail.get("message")
    if isinstance(message, str) and message:
        text += f" - {message[:160]}"
    return text


def _bounded(items: Sequence[str], most: int) -> list[str]:
    if len(items) <= most:
        return list(items)
    return [*items[:most], f"... and {len(items) - most} more"]


def short(text: str, most: int = ERROR_MESSAGE_CHARS) -> str:
    """``text`` on one line, cut to ``most`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 3] + "..."
