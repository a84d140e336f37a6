"""From what Run Command reports for one instance to the contract's per-instance result.

The agent prints exactly one compact JSON line on stdout; the plugin output may
also carry stderr after it, so the result is the *last* line that parses as a
JSON object with the contract's schema number. Run Command's own status decides
whenever the agent did not get to speak (not delivered, timed out, cancelled).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..aws.run_command import Invocation
from ..shared import contract
from ..shared.reasons import Reason
from ..shared.report import AgentUsers, InstanceResult, Pull

# StatusDetails → (status, reason) when the agent's result line is not the answer.
# StatusDetails is more precise than Status ("Delivery Timed Out" vs
# "Execution Timed Out" are both Status TimedOut), so it is looked up first.
SSM_STATUS_DETAILS: dict[str, tuple[str, Reason]] = {
    "Pending": ("pending", Reason.NOT_YET_DELIVERED),
    "In Progress": ("pending", Reason.IN_PROGRESS),
    "Delayed": ("pending", Reason.DELIVERY_DELAYED),
    "Cancelling": ("pending", Reason.CANCELLING),
    "Success": ("failed", Reason.OUTPUT_UNPARSEABLE),
    "Failed": ("failed", Reason.COMMAND_FAILED),
    "Delivery Timed Out": ("unreachable", Reason.DELIVERY_TIMED_OUT),
    "Undeliverable": ("unreachable", Reason.UNDELIVERABLE),
    "Execution Timed Out": ("failed", Reason.EXECUTION_TIMED_OUT),
    "Cancelled": ("failed", Reason.CANCELLED),
    "Terminated": ("failed", Reason.STOPPED_BY_MAX_ERRORS),
    "Access Denied": ("failed", Reason.ACCESS_DENIED),
    "Invalid Platform": ("skipped", Reason.UNSUPPORTED_PLATFORM),
}
SSM_STATUSES: dict[str, tuple[str, Reason]] = {
    "Pending": ("pending", Reason.NOT_YET_DELIVERED),
    "InProgress": ("pending", Reason.IN_PROGRESS),
    "Delayed": ("pending", Reason.DELIVERY_DELAYED),
    "Cancelling": ("pending", Reason.CANCELLING),
    "Success": ("failed", Reason.OUTPUT_UNPARSEABLE),
    "Failed": ("failed", Reason.COMMAND_FAILED),
    "TimedOut": ("failed", Reason.TIMED_OUT),
    "Cancelled": ("failed", Reason.CANCELLED),
}
# A finished command that lists no invocation for an instance: what its own StatusDetails say happened
# (Command.StatusDetails, SSM API reference; "Understanding command statuses"). The refusals end the
# command before any instance ("Rate Exceeded: ... The system has canceled the command before running it
# on any managed node"; command-level "Access Denied"; "No Instances In Tag"); after Success and the
# other outcomes, the command ran but the instance was not among the targets SSM resolved.
COMMAND_DETAILS_WITHOUT_INVOCATION: dict[str, Reason] = {
    "Rate Exceeded": Reason.RATE_EXCEEDED,
    "Access Denied": Reason.COMMAND_ACCESS_DENIED,
    "No Instances In Tag": Reason.NO_INSTANCES_IN_TAG,
    "Incomplete": Reason.COMMAND_INCOMPLETE,
    "Cancelled": Reason.COMMAND_CANCELLED,
    "Success": Reason.NO_INVOCATION,
    "Failed": Reason.NO_INVOCATION,
    "Delivery Timed Out": Reason.NO_INVOCATION,
    "Execution Timed Out": Reason.NO_INVOCATION,
}
# Invocations whose output can hold a result line: the agent ran to the end.
AGENT_FINISHED = frozenset({"Success", "Failed"})
OUTCOME_STATUS = {"changed": "succeeded", "unchanged": "succeeded", "skipped": "skipped", "failed": "failed"}


@dataclass(frozen=True)
class AgentResult:
    outcome: str
    reason: str
    message: str
    users: AgentUsers = field(default_factory=AgentUsers)

    @classmethod
    def parse(cls, output: str) -> AgentResult | None:
        """The agent's result line in ``output`` (stdout, possibly followed by stderr), if any."""
        for raw_line in reversed(output.splitlines()):
            line = raw_line.strip()
            if not line.startswith("{"):
                continue
            try:
                data: Any = json.loads(line)
            except ValueError:
                continue
            if not isinstance(data, dict) or data.get("schema") != contract.RESULT_SCHEMA:
                continue
            outcome, reason = data.get("outcome"), data.get("reason")
            if outcome not in contract.OUTCOMES or not isinstance(reason, str) or not reason:
                continue
            message = data.get("message")
            return cls(outcome, reason, message if isinstance(message, str) else "", _users(data))
        return None


def _users(data: dict[str, Any]) -> AgentUsers:
    """``users`` of a result line as pulls: one per user x registry, one per user the agent could not
    serve at all (a reason, no registry). Entries of another shape are left out (a newer agent's)."""
    pulls = []
    for entry in data.get("users") or ():
        user = entry.get("user") if isinstance(entry, dict) else None
        registries = entry.get("registries") if isinstance(entry, dict) else None
        if not isinstance(user, str) or not isinstance(registries, dict):
            continue
        reason = entry.get("reason")
        if not registries and isinstance(reason, str):
            pulls.append(Pull(user, "", "", error=reason))
        for registry, state in registries.items():
            if isinstance(state, dict) and isinstance(state.get("state"), str):
                pulls.append(
                    Pull(
                        user,
                        registry,
                        state["state"],
                        expires_at=_text(state.get("expires_at")),
                        error=_text(state.get("error")),
                        expired=state.get("expired") is True,
                    )
                )
    truncated = data.get("users_truncated")
    return AgentUsers(tuple(pulls), truncated if isinstance(truncated, int) else 0)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def needs_full_output(invocation: Invocation) -> bool:
    """True when the agent finished but its line is not in the (truncated) listing output."""
    return invocation.status in AGENT_FINISHED and AgentResult.parse(invocation.output) is None


def instance_result(invocation: Invocation, agent: AgentResult | None, name: str = "") -> InstanceResult:
    detail: dict[str, Any] = {
        "command_id": invocation.command_id,
        "ssm_status": invocation.status_details or invocation.status,
    }
    if invocation.response_code is not None:
        detail["response_code"] = invocation.response_code
    label = name or invocation.instance_name
    if agent is not None and invocation.status in AGENT_FINISHED:
        if agent.message:
            detail["message"] = agent.message
        return InstanceResult(
            invocation.instance_id,
            label,
            OUTCOME_STATUS[agent.outcome],
            agent.outcome,
            agent.reason,
            detail,
            users=agent.users,
        )
    status, reason = SSM_STATUS_DETAILS.get(invocation.status_details) or SSM_STATUSES.get(
        invocation.status, ("failed", Reason.UNKNOWN_SSM_STATUS)
    )
    return InstanceResult(invocation.instance_id, label, status, None, reason, detail)


def uninvoked_reason(command_status_details: str) -> Reason:
    """Why a finished command has no invocation for an instance, from the command's StatusDetails
    (none read: ``no_invocation``); ``unknown_ssm_status`` for details this version does not know."""
    if not command_status_details:
        return Reason.NO_INVOCATION
    return COMMAND_DETAILS_WITHOUT_INVOCATION.get(command_status_details, Reason.UNKNOWN_SSM_STATUS)
