"""The run report (CONTRACT.md section 6) and its notification text.

Plain data and plain functions: the report's dict is the Lambda's return value,
its log record and the source of its metrics and SNS message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from . import contract
from .troubleshooting import next_step

FAILURE_STATUSES = ("failed", "unreachable")
# SNS e-mail is read by a person: a screenful per status, not the whole fleet.
MAX_LISTED_PER_STATUS = 25
MAX_MESSAGE_CHARS = 12_000
MAX_SUBJECT_CHARS = 100
# A failed run's error message, and an SSM refusal's, in the report, the log and the e-mail.
ERROR_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class InstanceResult:
    instance_id: str
    name: str
    status: str
    outcome: str | None
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "status": self.status,
            "outcome": self.outcome,
            "reason": str(self.reason),
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

    def summary(self) -> dict[str, int]:
        statuses = Counter(instance.status for instance in self.instances)
        outcomes = Counter(i.outcome for i in self.instances if i.status == "succeeded")
        return {
            "total": len(self.instances),
            "succeeded": statuses["succeeded"],
            "changed": outcomes["changed"],
            "unchanged": outcomes["unchanged"],
            "failed": statuses["failed"],
            "unreachable": statuses["unreachable"],
            "skipped": statuses["skipped"],
            "pending": statuses["pending"],
        }

    @property
    def has_failures(self) -> bool:
        return self.error is not None or any(i.status in FAILURE_STATUSES for i in self.instances)

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
        if self.error is not None:
            data["error"] = dict(self.error)
        return data


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
    return f"ecr-fleet-auth {report.action}: {state}"[:MAX_SUBJECT_CHARS]


def output_log_link(log_group: str, region: str) -> str:
    """The CloudWatch console page of the Run Command output log group.

    The console's fragment escapes '/' as '$252F' (URL-encoded twice, '%' written '$')."""
    domain = {"cn-": "console.amazonaws.cn", "us-gov-": "console.amazonaws-us-gov.com"}
    host = next((d for prefix, d in domain.items() if region.startswith(prefix)), "console.aws.amazon.com")
    escaped = quote(quote(log_group, safe=""), safe="").replace("%", "$")
    return f"https://{region}.{host}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{escaped}"


def message(report: Report, *, output_log_group: str = "", region: str = "") -> str:
    """A plain-text summary a person can read at a glance: counts, then what needs attention,
    each with its next step, then where the full agent output is."""
    counts = report.summary()
    lines = [
        subject(report),
        "",
        f"Run {report.run_id} ({report.source}{', dry run' if report.dry_run else ''})",
        f"Started {report.started_at}, finished {report.finished_at}",
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
    for status in (*FAILURE_STATUSES, "pending"):
        listed = [instance for instance in report.instances if instance.status == status]
        if listed:
            lines += ["", f"{status.capitalize()} ({len(listed)}):"]
            for instance in listed[:MAX_LISTED_PER_STATUS]:
                lines += [_line(instance), f"      next step: {next_step(instance.reason)}"]
            if len(listed) > MAX_LISTED_PER_STATUS:
                lines.append(f"  ... and {len(listed) - MAX_LISTED_PER_STATUS} more (see the run's log)")
    if report.command_ids:
        lines += ["", "Run Command ids: " + ", ".join(_bounded(report.command_ids, 10))]
    if output_log_group and region:
        lines += ["", "Full agent output per instance:", f"  {output_log_link(output_log_group, region)}"]
    text = "\n".join(lines) + "\n"
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 40].rsplit("\n", 1)[0] + "\n... (truncated)\n"
    return text


def _line(instance: InstanceResult) -> str:
    name = f" ({instance.name})" if instance.name else ""
    text = f"  {instance.instance_id}{name}: {instance.reason}"
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
