"""Carrying out a plan: send its dispatches lane by lane, follow their commands, collect the results.

``Execution.carry_out`` is step 4 of a run (``runner.run``). Each lane has a capacity, its
share of the run's concurrency; a dispatch is sent only when the concurrency of the lane's
running commands plus its own fits in it, so the plan's rate budget holds for the whole
run (a lane's batches of 50 go one after the other). Commands are polled one ListCommands
call per command (never per instance) with back-off until they finish or the deadline
comes; then each command's invocations are collected and turned into per-instance results
(``results.instance_result``).

SSM refusing some instances of a dispatch (``InvalidInstanceId``, ...) starts nothing: the
others are sent again without them (``_instead_of_refused``). When a look at the instances
does not say which one SSM refused, the dispatch is halved; the halves share its
concurrency and error budget and are sent at once if the lane has room, so isolating a
refused id never holds back the work of the accepted ones (with a lane of concurrency 1
they still go one at a time). A SendCommand whose answer was lost is never sent again,
only looked for until the deadline (``run_command``'s docstring); its lane counts it as
running until a command it started would be over (``unconfirmed_hold_seconds``).

An instance a finished command never reached (no invocation) is looked up once more in
EC2 at the end: one that stopped or terminated after discovery is not a failure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.clients import AWS_ERRORS, error_code
from ..aws.discovery import Fleet, TargetTag
from ..aws.run_command import (
    INSTANCE_ERRORS,
    MAYBE_INSTANCE_ERRORS,
    CommandSpec,
    Invocation,
    RunCommand,
    SendUnconfirmed,
)
from ..shared.clock import Clock
from ..shared.observability import logger
from ..shared.reasons import Reason
from ..shared.report import InstanceResult, short
from .planning import Dispatch, Exclusion, Plan, exclusion, halves, without
from .results import AgentResult, instance_result, needs_full_output, uninvoked_reason

FIRST_POLL_SECONDS = 5.0
MAX_POLL_SECONDS = 30.0
# GetCommandInvocation is per instance: a cap keeps a fleet of broken outputs
# from costing one call per instance.
MAX_OUTPUT_FALLBACKS = 20
# Added to the longest a command can last before an unconfirmed send stops holding its lane.
UNCONFIRMED_HOLD_MARGIN_SECONDS = 60.0
# EC2 states in which an instance cannot run a command: reported, not counted as a failure,
# when a finished command never reached it (the state it had at discovery is gone).
NOT_RUNNING_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})


def unconfirmed_hold_seconds(spec: CommandSpec) -> float:
    """How long a send whose answer was lost holds its lane's capacity.

    A command that did start delivers to no instance after its delivery timeout (SSM
    counts the delivery timeout plus the execution timeout before it says Delivery Timed
    Out), and each delivered instance runs at most the execution timeout: past that sum
    and a margin nothing of it can still run, so the lane's next batch cannot overlap it
    and break the concurrency promise. The send itself is never repeated.
    """
    return (
        spec.delivery_timeout_seconds + 2 * spec.execution_timeout_seconds + UNCONFIRMED_HOLD_MARGIN_SECONDS
    )


@dataclass(frozen=True)
class _Unconfirmed:
    """A send whose answer was lost: its command may exist; it is looked for, never sent again."""

    dispatch: Dispatch
    doubt: SendUnconfirmed
    holds_until: float  # monotonic: until then its lane counts it as running


@dataclass
class _Lane:
    capacity: int  # how many instances its commands may run at once, together
    queue: deque[Dispatch]


class Execution:
    """Sends a plan's dispatches lane by lane and follows their commands to the end or the deadline."""

    def __init__(
        self, commands: RunCommand, spec: CommandSpec, tag: TargetTag, clock: Clock, fleet: Fleet
    ) -> None:
        self._commands = commands
        self._spec = spec
        self._tag = tag
        self._clock = clock
        self._fleet = fleet
        self._lanes: list[_Lane] = []
        self._running: dict[str, Dispatch] = {}
        self._unconfirmed: list[_Unconfirmed] = []
        # Commands of lost answers found after their hold: they no longer count against their lane.
        self._released: set[str] = set()
        # Instance id -> the finished command that never reached it.
        self._uninvoked: dict[str, str] = {}
        # Command id -> its StatusDetails once finished: why an instance it never reached was not run.
        self._command_details: dict[str, str] = {}
        self._completed_seen: dict[str, int] = {}
        self._fallbacks_left = MAX_OUTPUT_FALLBACKS
        self.results: dict[str, InstanceResult] = {}
        self.command_ids: list[str] = []

    def carry_out(self, plan: Plan, stop_at: float) -> dict[str, InstanceResult]:
        """Send, wait and collect until every command has finished or ``stop_at`` (monotonic) comes."""
        self._lanes = [
            _Lane(max(dispatch.concurrency for dispatch in lane), deque(lane)) for lane in plan.lanes
        ]
        self._send_what_fits()
        interval = FIRST_POLL_SECONDS
        while self._running or self._unconfirmed:
            remaining = stop_at - self._clock.monotonic()
            if remaining <= 0:
                break
            self._clock.sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_POLL_SECONDS)
            self._look_for_unconfirmed()
            for command_id, dispatch in list(self._running.items()):
                settled, invocations = self._settled(command_id, dispatch)
                if settled:
                    del self._running[command_id]
                    self._take_results(command_id, dispatch, invocations, finished=True)
            self._send_what_fits()
        for command_id, dispatch in self._running.items():
            self._take_results(command_id, dispatch, self._invocations(command_id), finished=False)
        self._give_up_unconfirmed()
        for lane in self._lanes:
            for dispatch in lane.queue:
                self._set(dispatch.instance_ids, "pending", Reason.NOT_SENT_BEFORE_DEADLINE, {})
        self._explain_uninvoked()
        return self.results

    def interrupted(self) -> dict[str, InstanceResult]:
        """What is known if the run stops now: results so far, running commands as pending."""
        self._give_up_unconfirmed()
        known = dict(self.results)
        for command_id, dispatch in self._running.items():
            for instance_id in dispatch.instance_ids:
                detail = {"command_id": command_id}
                known.setdefault(
                    instance_id, InstanceResult(instance_id, "", "pending", None, Reason.IN_PROGRESS, detail)
                )
        return known

    def _send_what_fits(self) -> None:
        """In each lane, send queued dispatches while their concurrency fits in the lane's capacity."""
        for index, lane in enumerate(self._lanes):
            while lane.queue:
                used = self._used(index)
                if used and used + lane.queue[0].concurrency > lane.capacity:
                    break
                # A refusal started nothing: what replaces the dispatch goes first, at once if it fits.
                lane.queue.extendleft(reversed(self._send(lane.queue.popleft())))

    def _used(self, lane: int) -> int:
        """The concurrency of the lane's commands that may be running now."""
        now = self._clock.monotonic()
        running = sum(
            dispatch.concurrency
            for command_id, dispatch in self._running.items()
            if dispatch.lane == lane and command_id not in self._released
        )
        unsure = sum(
            unsure.dispatch.concurrency
            for unsure in self._unconfirmed
            if unsure.dispatch.lane == lane and now < unsure.holds_until
        )
        return running + unsure

    def _send(self, dispatch: Dispatch) -> list[Dispatch]:
        """Send one dispatch; returns what to send instead if SSM refused some of its instances."""
        try:
            command_id = self._commands.send(self._spec, dispatch, self._tag.key, self._tag.values)
        except SendUnconfirmed as doubt:
            # Perhaps sent: looked for until the deadline, and holding its lane while it could run.
            logger.warning("SendCommand answer lost", extra={"error": str(doubt), "lane": dispatch.lane})
            holds_until = self._clock.monotonic() + unconfirmed_hold_seconds(self._spec)
            self._unconfirmed.append(_Unconfirmed(dispatch, doubt, holds_until))
            return []
        except AWS_ERRORS as error:
            code = error_code(error)
            about_instances = code in INSTANCE_ERRORS or (
                code in MAYBE_INSTANCE_ERRORS and dispatch.lookups_left > 0
            )
            if about_instances and not dispatch.by_tag:
                return self._instead_of_refused(dispatch, error)  # nothing started
            # This batch is lost, the others are not; nothing is re-sent.
            logger.warning("SendCommand failed", extra={"error": str(error), "lane": dispatch.lane})
            self._set(dispatch.instance_ids, "failed", Reason.SEND_FAILED, {"error": code})
            return []
        self._follow(command_id, dispatch)
        return []

    def _follow(self, command_id: str, dispatch: Dispatch) -> None:
        self._running[command_id] = dispatch
        self.command_ids.append(command_id)

    def _instead_of_refused(self, dispatch: Dispatch, error: ClientError | BotoCoreError) -> list[Dispatch]:
        """What to send instead of a dispatch SSM refused because of some of its instances.

        The error does not reliably say which: the instances' states are looked up again
        (one terminated or untagged since discovery is reported as such and dropped, the
        others are sent again), at most ``MAX_LOOKUPS`` times along one chain of resends,
        so each further race (another instance terminated or untagged meanwhile) costs one
        more look, not the batch. If a look explains nothing, an ``INSTANCE_ERRORS``
        refusal halves the dispatch, and its halves halve again without looking, until the
        refused instance stands alone and is reported with SSM's refusal; any other refusal
        (AccessDenied for the role itself) fails the batch. Costs, only when SSM refuses,
        one SendCommand per halving and two lookups per look.
        """
        code = error_code(error)
        logger.warning(
            "SendCommand refused instances", extra={"error": code, "instances": len(dispatch.instance_ids)}
        )
        looked = dispatch.lookups_left > 0 and (code not in INSTANCE_ERRORS or not dispatch.halved)
        if looked:
            try:
                states = self._recheck(dispatch.instance_ids)
            except AWS_ERRORS as failure:
                logger.warning("could not look the instances up again", extra={"error": str(failure)})
                states = {}
            dropped = {instance_id for instance_id, excluded in states.items() if excluded is not None}
            for instance_id in dropped:
                excluded = states[instance_id]
                assert excluded is not None
                self._set([instance_id], excluded.status, excluded.reason, {**excluded.detail, "error": code})
            if dropped:
                rest = without(dispatch, dropped)
                return [rest] if rest.instance_ids else []
        if code not in INSTANCE_ERRORS:  # not explained by the instances: the batch is lost
            self._set(dispatch.instance_ids, "failed", Reason.SEND_FAILED, {"error": code})
            return []
        if len(dispatch.instance_ids) > 1:
            return list(halves(dispatch, looked=looked))
        if code == "UnsupportedPlatformType":
            self._set(dispatch.instance_ids, "skipped", Reason.UNSUPPORTED_PLATFORM, {"error": code})
        else:
            detail = {"error": code, "message": short(str(error))}
            self._set(dispatch.instance_ids, "unreachable", Reason.INVALID_INSTANCE_ID, detail)
        return []

    def _recheck(self, instance_ids: Sequence[str]) -> dict[str, Exclusion | None]:
        """Instance id -> why it cannot be commanded now (None: it can), looked up again."""
        members = self._fleet.discover(self._tag, instance_ids)
        return {member.instance_id: exclusion(member) for member in members}

    def _look_for_unconfirmed(self) -> None:
        for unsure in list(self._unconfirmed):
            doubt = unsure.doubt
            found = self._commands.find_sent(self._spec.document_name, doubt.comment, doubt.since)
            if found:
                logger.info("found the command of a lost SendCommand answer", extra={"command_id": found})
                self._unconfirmed.remove(unsure)
                self._follow(found, unsure.dispatch)
                if self._clock.monotonic() >= unsure.holds_until:
                    self._released.add(found)  # its lane already moved on; nothing of it still runs

    def _give_up_unconfirmed(self) -> None:
        for unsure in self._unconfirmed:
            detail = {"error": error_code(unsure.doubt.error), "comment": unsure.doubt.comment}
            self._set(unsure.dispatch.instance_ids, "failed", Reason.SEND_UNCONFIRMED, detail)
        self._unconfirmed = []

    def _settled(self, command_id: str, dispatch: Dispatch) -> tuple[bool, list[Invocation] | None]:
        """Whether every instance we sent the command to has finished, and its invocations if readable.

        A tag-targeted command also reaches tagged instances that cannot run it
        (stopped, connection lost): SSM keeps it InProgress until their delivery
        timeout. So once enough invocations have completed to cover ours, look
        at the invocations themselves rather than wait for the command.
        """
        try:
            progress = self._commands.progress(command_id)
        except AWS_ERRORS as error:
            # A failed poll is only a missed look; the next one (or the final collection) catches up.
            logger.warning("ListCommands failed", extra={"command_id": command_id, "error": str(error)})
            return False, None
        if progress.finished:
            self._command_details[command_id] = progress.status_details
            return True, self._invocations(command_id)
        ours = len(dispatch.instance_ids)
        if not dispatch.by_tag or progress.completed_count < ours:
            return False, None
        if progress.completed_count <= self._completed_seen.get(command_id, -1):
            return False, None  # nothing new since the last look
        self._completed_seen[command_id] = progress.completed_count
        invocations = self._invocations(command_id)
        if invocations is None:
            return False, None
        done = {invocation.instance_id for invocation in invocations if invocation.finished}
        return done.issuperset(dispatch.instance_ids), invocations

    def _invocations(self, command_id: str) -> list[Invocation] | None:
        try:
            return self._commands.invocations(command_id)
        except AWS_ERRORS as error:
            logger.warning(
                "ListCommandInvocations failed", extra={"command_id": command_id, "error": str(error)}
            )
            return None

    def _take_results(
        self, command_id: str, dispatch: Dispatch, invocations: list[Invocation] | None, *, finished: bool
    ) -> None:
        """Each invocation's result; instances it lacks are pending, or failed once the command finished."""
        if invocations is None:
            status = "failed" if finished else "pending"
            self._set(dispatch.instance_ids, status, Reason.RESULTS_UNAVAILABLE, {"command_id": command_id})
            return
        for invocation in invocations:
            agent = AgentResult.parse(invocation.output)
            if agent is None and needs_full_output(invocation) and self._fallbacks_left > 0:
                self._fallbacks_left -= 1
                agent = self._full_output_result(command_id, invocation.instance_id)
            self.results[invocation.instance_id] = instance_result(invocation, agent)
        missing = [i for i in dispatch.instance_ids if i not in self.results]
        if finished and missing:
            # Reported for what happened to the command: refused before any instance (Rate Exceeded,
            # Access Denied, No Instances In Tag), cancelled, or run without this instance among its targets.
            details = self._command_details.get(command_id, "")
            reason = uninvoked_reason(details)
            detail = {"command_id": command_id, **({"command_status": details} if details else {})}
            self._set(missing, "failed", reason, detail)
            if reason == Reason.NO_INVOCATION:  # perhaps stopped or terminated since discovery: one look
                self._uninvoked.update(dict.fromkeys(missing, command_id))
        else:
            self._set(missing, "pending", Reason.NOT_YET_DELIVERED, {"command_id": command_id})

    def _explain_uninvoked(self) -> None:
        """Instances a finished command never reached: one EC2 look for all of them.

        A tag command reaches the managed nodes carrying the tag when SSM resolves its
        targets; an instance that stopped or terminated after discovery is not one of them,
        and it would not have been in the run had discovery looked a moment later: it is
        reported ``skipped`` / ``instance_not_running`` (not a failure), not ``no_invocation``.
        """
        if not self._uninvoked:
            return
        try:
            states = self._fleet.states(list(self._uninvoked))
        except AWS_ERRORS as error:
            logger.warning("could not look up instances no command reached", extra={"error": str(error)})
            return
        for instance_id, command_id in self._uninvoked.items():
            state = states.get(instance_id, "")
            if state in NOT_RUNNING_STATES:
                detail = {"state": state, "command_id": command_id}
                self._set([instance_id], "skipped", Reason.INSTANCE_NOT_RUNNING, detail)

    def _full_output_result(self, command_id: str, instance_id: str) -> AgentResult | None:
        try:
            return AgentResult.parse(self._commands.standard_output(command_id, instance_id))
        except AWS_ERRORS as error:
            logger.warning(
                "GetCommandInvocation failed", extra={"instance_id": instance_id, "error": str(error)}
            )
            return None

    def _set(self, instance_ids: Iterable[str], status: str, reason: Reason, detail: dict[str, Any]) -> None:
        for instance_id in instance_ids:
            self.results[instance_id] = InstanceResult(instance_id, "", status, None, reason, dict(detail))


def dry_run_results(plan: Plan) -> dict[str, InstanceResult]:
    """What a dry run reports instead of carrying the plan out: each instance's dispatch."""
    results = {}
    dispatches = plan.dispatches
    for number, dispatch in enumerate(dispatches, start=1):
        detail = {
            "dispatch": "target tag" if dispatch.by_tag else f"batch {number} of {len(dispatches)}",
            "max_concurrency": dispatch.max_concurrency,
            "max_errors": dispatch.max_errors,
        }
        for instance_id in dispatch.instance_ids:
            results[instance_id] = InstanceResult(instance_id, "", "skipped", None, Reason.DRY_RUN, detail)
    return results
