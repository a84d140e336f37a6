"""The Run Command engine: commands and their invocations, moved on by events on a clock.

One model of a command and its invocations serves every way the simulator runs.
Nothing here sleeps or starts a thread: each change is an event scheduled on the
``Clock`` (``localfleet.clocks``) — targets resolved, an invocation sent, delivered,
a step finished, the delivery deadline reached — so the same code gives the same
statuses on a real clock (HTTP, real scripts) and on a simulated one (in-process,
canned runs). Tests choose what happens on an instance (its executor's exit code,
output and duration; its ping status; whether it terminates, is slow to pick a
command up, or may not be commanded); the statuses follow from here alone.

Statuses follow the SSM API reference (``CommandInvocation.StatusDetails``,
``Command.StatusDetails``), the user guide's "Understanding command statuses" and
the agent's aggregation (``contracts.DocumentResultAggregator``: Failed > TimedOut >
Cancelled > Success, "Skipped is a form of success"). Where the documentation
names a StatusDetails value but not the Status with it, or leaves a choice open,
the choice is marked CHOICE; where it takes the harsher reading for a client, HARSHER.

What happens to an invocation:

* Tag targets resolve after SendCommand returns (``target_resolution_seconds``):
  until then the command is Pending with TargetCount 0 and lists no invocation.
  A node already shutting down or terminated then is not a target (no invocation).
  A tag that matches no managed node ends the command with StatusDetails
  ``No Instances In Tag`` (HARSHER: Status Failed; the guide gives only the detail).
* Command-level refusals end a command with no invocation at all (Command.StatusDetails in the
  API reference; "Understanding command statuses"):
  ``Rate Exceeded`` — "The number of managed nodes targeted by the command exceeded the account
  limit for pending invocations. The system has canceled the command before running it on any
  managed node": when its targets and the invocations still pending in the account exceed
  ``pending_invocation_limit`` (CHOICE: no limit unless set; the guide gives no number), the command
  ends so at once, TargetCount 0 (HARSHER: no invocation listed, not even cancelled ones), Status
  Cancelled (CHOICE: the guide's "canceled"; the Status enum has no Rate Exceeded).
  ``Access Denied`` — a tag command none of whose resolved targets the caller may command ends so,
  no invocation (HARSHER: AWS leaves open whether the refusal is per node or for the command; a
  command with some allowed targets keeps per-node ``Access Denied`` invocations), Status Failed.
* Sending respects MaxConcurrency across the whole command; MaxErrors: "when the
  command fails one more time beyond the value of MaxErrors, the system stops
  sending the command to additional targets" — those end ``Terminated``.
* A node the caller may not command: ``Access Denied`` (CHOICE: Status Failed).
  A node gone (terminated, shutting down, Inactive) by the time an invocation is
  sent or delivered: ``Undeliverable``, which neither counts as an error nor
  decides Success.
* A node that is not Online (ConnectionLost): ``Delayed`` — "the system attempted
  to send the command to the managed node but wasn't successful. The system
  retries again" — and it holds no MaxConcurrency slot (CHOICE). If it comes back
  it is sent; if not: ``Delivery Timed Out``.
* "If the agent doesn't receive the command before the time that equals the sum of
  the Timeout (seconds) parameter and the Execution timeout parameter, the status
  changes to Delivery Timed Out": every invocation not started by the SendCommand
  time + TimeoutSeconds + the document's execution timeout (the sum of its steps'
  ``timeoutSeconds``) times out then — queued, Delayed or slow to be picked up.
* A running step that outlasts its ``timeoutSeconds`` is ``Execution Timed Out``
  (exit code 137). CancelCommand ends at once every invocation not yet running;
  a running one is left to finish (CHOICE: executors cannot be interrupted).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from ...clocks import Clock, Scheduled
from .agent_interface import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult, Executor
from .documents import Document, StepPlan, execution_timeout_seconds, plan_steps
from .managed_nodes import GONE_STATES, ManagedInstance

_log = logging.getLogger(__name__)

# StatusDetails → Status.
STATUS_OF_DETAILS = {
    "Pending": "Pending",
    "Delayed": "Delayed",
    "In Progress": "InProgress",
    "Success": "Success",
    "Failed": "Failed",
    "Execution Timed Out": "TimedOut",
    "Delivery Timed Out": "TimedOut",
    "Cancelled": "Cancelled",
    "Undeliverable": "Failed",  # CHOICE: the enum has no Undeliverable; it is not a success
    "Terminated": "Cancelled",  # CHOICE: "invocations were canceled by the system" (MaxErrors reached)
    "Access Denied": "Failed",  # CHOICE: a terminal refusal
}
NOT_STARTED_DETAILS = frozenset({"Pending", "Delayed"})
TERMINAL_DETAILS = frozenset(STATUS_OF_DETAILS) - NOT_STARTED_DETAILS - {"In Progress"}
# Command.ErrorCount: "the number of targets for which the status is Failed or Execution Timed Out";
# these alone count against MaxErrors (delivery timeouts and undeliverables do not).
ERROR_DETAILS = frozenset({"Failed", "Execution Timed Out"})
NO_INSTANCES_IN_TAG = "No Instances In Tag"
RATE_EXCEEDED = "Rate Exceeded"
COMMAND_ACCESS_DENIED = "Access Denied"

# The output limits, stated once. GetCommandInvocation: StandardOutputContent "The first
# 24,000 characters", StandardErrorContent the first 8,000. ListCommandInvocations with
# Details: "the first 2,500 characters" of each plugin's output.
STDOUT_CONTENT_CHARS = 24_000
STDERR_CONTENT_CHARS = 8_000
PLUGIN_OUTPUT_CHARS = 2_500

DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"
DEFAULT_DELIVERY_TIMEOUT_SECONDS = 3600  # CHOICE: the API reference gives no default
DELIVERY_RETRY_SECONDS = 30.0  # CHOICE: how often a Delayed invocation is tried again


def rate_limit(value: str, target_count: int, *, at_least_one: bool) -> int:
    """MaxConcurrency / MaxErrors ("10" or "10%") as a number of targets.

    CHOICE: a percentage rounds up for concurrency (at least one node runs) and
    down for errors ("10% of 50" allows 5 errors; the sixth stops the command).
    """
    if value.endswith("%"):
        share = int(value[:-1]) * target_count / 100
        number = math.ceil(share) if at_least_one else math.floor(share)
    else:
        number = int(value)
    return max(1, number) if at_least_one else number


def truncate_output(stdout: str, stderr: str, capacity: int = PLUGIN_OUTPUT_CHARS) -> str:
    """The agent's plugin output: stdout, then stderr under an ERROR title, cut to ``capacity``.

    Follows amazon-ssm-agent ``contracts.TruncateOutput`` (both halves cut
    when both are long, the long one cut when the other is short), with the
    service's 2,500-character limit.
    """
    title = "\n----------ERROR-------\n" if stderr else ""
    cut_out, cut_err = "\n---Output truncated---", "\n---Error truncated----"
    space = capacity - len(title)
    if len(stdout) + len(stderr) < space:
        return stdout + title + stderr
    if len(stdout) > space / 2 and len(stderr) > space / 2:
        half = (space - len(cut_err) - len(cut_out)) // 2
        return stdout[:half] + cut_out + title + stderr[:half] + cut_err
    if len(stdout) < space / 2:
        return stdout + title + stderr[: space - len(cut_err) - len(stdout)] + cut_err
    return stdout[: space - len(cut_out) - len(stderr)] + cut_out + title + stderr


@dataclass
class PluginResult:
    name: str
    details: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started: float | None = None  # epoch seconds
    finished: float | None = None

    @property
    def status(self) -> str:
        return STATUS_OF_DETAILS[self.details]

    @property
    def output(self) -> str:
        """What ListCommandInvocations shows with Details: the plugin output, cut."""
        return truncate_output(self.stdout, self.stderr)

    @property
    def stdout_content(self) -> str:
        """What GetCommandInvocation shows; empty until the step has finished."""
        return self.stdout[:STDOUT_CONTENT_CHARS] if self.details in TERMINAL_DETAILS else ""

    @property
    def stderr_content(self) -> str:
        return self.stderr[:STDERR_CONTENT_CHARS] if self.details in TERMINAL_DETAILS else ""


@dataclass(eq=False)
class Invocation:
    command: Command = field(repr=False)
    instance_id: str
    instance_name: str
    plugins: list[PluginResult]
    details: str = "Pending"
    response_code: int = -1
    started: float | None = None  # epoch seconds
    finished: float | None = None
    cancel_requested: bool = False
    holds_slot: bool = False  # counted against the command's MaxConcurrency
    timer: Scheduled | None = field(default=None, repr=False)  # its next delivery event

    @property
    def status(self) -> str:
        return STATUS_OF_DETAILS[self.details]

    @property
    def terminal(self) -> bool:
        return self.details in TERMINAL_DETAILS


# The targets of a command: known when sent (InstanceIds) or resolved later (tag Targets).
Targets = list[ManagedInstance] | Callable[[], list[ManagedInstance]]


@dataclass(eq=False)
class Command:
    command_id: str
    document: Document
    request: Mapping[str, Any]
    parameter_values: dict[str, list[str]]
    requested: float  # epoch seconds (RequestedDateTime)
    requested_at: float  # the clock's monotonic time
    delivery_deadline: float  # monotonic: an invocation not started by then is Delivery Timed Out
    by_tag: bool
    resolved: bool = False  # targets known: invocations exist
    concurrency: int = 1
    error_limit: int = 0
    invocations: dict[str, Invocation] = field(default_factory=dict)
    queue: deque[Invocation] = field(default_factory=deque)  # not yet sent, in sending order
    running: int = 0  # invocations holding a MaxConcurrency slot
    cancel_requested: bool = False
    refused: str | None = None  # a command-level refusal (Rate Exceeded, Access Denied): no invocation
    errors: int = 0  # invocations Failed or Execution Timed Out
    ended: int = 0  # invocations in a terminal status
    deadline: Scheduled | None = field(default=None, repr=False)
    # By the node's platform type and SSM agent version.
    plans: dict[tuple[str, str], list[StepPlan]] = field(default_factory=dict, repr=False)

    def steps_for(self, platform_type: str, agent_version: str) -> list[StepPlan]:
        """The document's steps as an agent of that version runs them on that platform (planned once
        per command): whether ``SSM_<name>`` is set depends on the agent (``documents.plan_steps``)."""
        key = (platform_type, agent_version)
        if key not in self.plans:
            self.plans[key] = plan_steps(self.document, self.parameter_values, platform_type, agent_version)
        return self.plans[key]

    @property
    def timeout_seconds(self) -> int:
        return int(self.request.get("TimeoutSeconds", DEFAULT_DELIVERY_TIMEOUT_SECONDS))

    @property
    def complete(self) -> bool:
        return self.resolved and self.ended == len(self.invocations)

    def status_details(self) -> str:
        if not self.resolved:
            return "Pending"
        if self.refused is not None:
            return self.refused
        if not self.invocations and self.by_tag:
            return NO_INSTANCES_IN_TAG
        if self.ended < len(self.invocations):
            return self._unfinished_details()
        return self._final_details()

    def _unfinished_details(self) -> str:
        if self.cancel_requested:
            return "Cancelling"
        started = any(i.details != "Pending" for i in self.invocations.values())
        return "In Progress" if started else "Pending"

    def _final_details(self) -> str:
        if self.cancel_requested:
            return "Cancelled"
        details = [i.details for i in self.invocations.values()]
        if self.errors > self.error_limit:
            return "Failed" if "Failed" in details else "Execution Timed Out"
        # "Delivery Timed Out: the value of MaxErrors or more command invocations shows a status of
        # Delivery Timed Out"; CHOICE: with MaxErrors 0, one is enough.
        if details.count("Delivery Timed Out") >= max(1, self.error_limit):
            return "Delivery Timed Out"
        # Undeliverable invocations "don't contribute to whether the parent command status is
        # Success or Incomplete".
        counted = [d for d in details if d != "Undeliverable"]
        return "Success" if all(d == "Success" for d in counted) else "Incomplete"

    def status(self) -> str:
        details = self.status_details()
        # CHOICE: Incomplete and No Instances In Tag are reported with Status Failed (the Status
        # enum has neither).
        return {
            "In Progress": "InProgress",
            "Incomplete": "Failed",
            NO_INSTANCES_IN_TAG: "Failed",
            RATE_EXCEEDED: "Cancelled",
            COMMAND_ACCESS_DENIED: "Failed",
            "Cancelling": "Cancelling",
        }.get(details, STATUS_OF_DETAILS.get(details, details))


class CommandEngine:
    """Commands and their invocations; every change happens under ``lock`` as an event on ``clock``.

    ``nodes`` looks a managed node up at the moment it matters (delivery), so a
    node that goes offline or terminates while a command waits is seen then.
    ``delivery_time_scale`` multiplies the delivery deadline and retry interval
    (tests over HTTP see "Delivery Timed Out" within the model's 30 s minimum).
    """

    def __init__(
        self,
        clock: Clock,
        nodes: Callable[[str], ManagedInstance | None],
        *,
        delivery_time_scale: float = 1.0,
        target_resolution_seconds: float = 0.0,
        pending_invocation_limit: int | None = None,
    ) -> None:
        self.clock = clock
        self.nodes = nodes
        self.delivery_time_scale = delivery_time_scale
        self.target_resolution_seconds = target_resolution_seconds
        # The account's limit of pending invocations (None: none): a command beyond it is Rate Exceeded.
        self.pending_invocation_limit = pending_invocation_limit
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.commands: dict[str, Command] = {}
        self._stopped = False

    # --- commands ----------------------------------------------------------------------
    def send(
        self,
        document: Document,
        request: Mapping[str, Any],
        parameter_values: dict[str, list[str]],
        targets: Targets,
    ) -> Command:
        """Record a command and set it going; tag targets (a callable) resolve as an event."""
        now = self.clock.monotonic()
        timeout = int(request.get("TimeoutSeconds", DEFAULT_DELIVERY_TIMEOUT_SECONDS))
        total = timeout + execution_timeout_seconds(document, parameter_values)
        command = Command(
            command_id=str(uuid.uuid4()),
            document=document,
            request=dict(request),
            parameter_values=parameter_values,
            requested=self.clock.time(),
            requested_at=now,
            delivery_deadline=now + total * self.delivery_time_scale,
            by_tag=callable(targets),
        )
        with self.lock:
            self.commands[command.command_id] = command
            if callable(targets):
                delay = self.target_resolution_seconds
                if delay > 0:
                    self.clock.call_at(now + delay, lambda: self._resolve(command, targets()))
                else:
                    self._resolve(command, targets())
            else:
                self._resolve(command, targets)
        return command

    def cancel(self, command: Command, instance_ids: list[str] | None) -> None:
        """CancelCommand: every invocation not yet running ends Cancelled now; running ones finish."""
        with self.lock:
            if not instance_ids:
                command.cancel_requested = True
            for instance_id in instance_ids or list(command.invocations):
                invocation = command.invocations.get(instance_id)
                if invocation is None or invocation.terminal:
                    continue
                invocation.cancel_requested = True
                if invocation.details in NOT_STARTED_DETAILS:
                    self._end(invocation, "Cancelled")
            self.changed.notify_all()

    def stop(self) -> None:
        """Stop sending: every invocation not yet started is cancelled."""
        with self.lock:
            self._stopped = True
            for command in self.commands.values():
                self.cancel(command, None)

    def idle(self) -> bool:
        with self.lock:
            return all(command.complete for command in self.commands.values())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait (real clock) until every command has resolved and every invocation ended; False on timeout."""
        with self.changed:
            return self.changed.wait_for(
                lambda: all(command.complete for command in self.commands.values()), timeout
            )

    # --- what happened, for tests and benchmarks -----------------------------------------
    def peak_concurrency(self) -> int:
        """Most invocations running at one moment, over every command."""
        with self.lock:
            edges = sorted(
                (moment, step)
                for command in self.commands.values()
                for invocation in command.invocations.values()
                if invocation.started is not None
                for moment, step in (
                    (invocation.started, 1),
                    (invocation.finished if invocation.finished is not None else math.inf, -1),
                )
            )
        running = peak = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return peak

    def commanded(self, instance_id: str) -> int:
        """How many commands have an invocation for ``instance_id``."""
        with self.lock:
            return sum(instance_id in command.invocations for command in self.commands.values())

    # --- events ------------------------------------------------------------------------
    def _resolve(self, command: Command, targets: list[ManagedInstance]) -> None:
        with self.lock:
            refusal = self._refusal(command, targets)
            if refusal is not None:
                command.refused, command.resolved = refusal, True
                self.changed.notify_all()
                return
            count = len(targets)
            request = command.request
            command.concurrency = rate_limit(
                request.get("MaxConcurrency", DEFAULT_MAX_CONCURRENCY), count, at_least_one=True
            )
            command.error_limit = rate_limit(
                request.get("MaxErrors", DEFAULT_MAX_ERRORS), count, at_least_one=False
            )
            step_names = [str(step.get("name", step.get("action"))) for step in command.document.steps()]
            for target in targets:
                invocation = Invocation(
                    command, target.instance_id, target.computer_name, [PluginResult(n) for n in step_names]
                )
                command.invocations[target.instance_id] = invocation
                command.queue.append(invocation)
            command.resolved = True
            if command.cancel_requested or self._stopped:
                for invocation in command.invocations.values():
                    self._end(invocation, "Cancelled")
            elif command.invocations:
                command.deadline = self.clock.call_at(
                    command.delivery_deadline, lambda: self._expire(command)
                )
                self._dispatch(command)
            self.changed.notify_all()

    def _refusal(self, command: Command, targets: list[ManagedInstance]) -> str | None:
        """A command-level refusal of this command and its targets, if any (the module docstring)."""
        limit = self.pending_invocation_limit
        if limit is not None and targets and self._pending_invocations() + len(targets) > limit:
            return RATE_EXCEEDED
        if command.by_tag and targets and not any(target.commandable for target in targets):
            return COMMAND_ACCESS_DENIED
        return None

    def _pending_invocations(self) -> int:
        """Invocations of the account's commands that have not ended yet."""
        return sum(
            not invocation.terminal
            for command in self.commands.values()
            for invocation in command.invocations.values()
        )

    def _dispatch(self, command: Command) -> None:
        """Send queued invocations while MaxConcurrency has room."""
        while command.queue and command.running < command.concurrency:
            invocation = command.queue.popleft()
            if not invocation.terminal:
                self._send(invocation)

    def _send(self, invocation: Invocation) -> None:
        command = invocation.command
        now = self.clock.monotonic()
        node = self.nodes(invocation.instance_id)
        if invocation.cancel_requested or self._stopped:
            self._end(invocation, "Cancelled")
        elif command.errors > command.error_limit:
            self._end(invocation, "Terminated")
        elif now >= command.delivery_deadline:
            self._end(invocation, "Delivery Timed Out")
        elif node is not None and not node.commandable:
            self._end(invocation, "Access Denied")
        elif self._can_take(node, invocation):
            invocation.holds_slot = True
            command.running += 1
            invocation.timer = self.clock.call_at(
                now + node.delivery_delay, lambda: self._deliver(invocation)
            )

    def _can_take(self, node: ManagedInstance | None, invocation: Invocation) -> TypeGuard[ManagedInstance]:
        """Whether ``node`` can take ``invocation`` now; if not, it ends (node gone) or waits (offline)."""
        if node is None or _gone(node):
            self._end(invocation, "Undeliverable")
            return False
        if node.ping_status != "Online":
            self._delay(invocation)
            return False
        return True

    def _delay(self, invocation: Invocation) -> None:
        """Delayed: retried until the node is back or the delivery deadline passes (holding no slot)."""
        self._release(invocation)
        invocation.details = "Delayed"
        retry = self.clock.monotonic() + DELIVERY_RETRY_SECONDS * self.delivery_time_scale
        invocation.timer = self.clock.call_at(retry, lambda: self._retry(invocation))

    def _retry(self, invocation: Invocation) -> None:
        with self.lock:
            if invocation.terminal:
                return
            command = invocation.command
            invocation.details = "Pending"
            command.queue.appendleft(invocation)
            self._dispatch(command)
            self.changed.notify_all()

    def _deliver(self, invocation: Invocation) -> None:
        with self.lock:
            if invocation.terminal:
                return
            node = self.nodes(invocation.instance_id)
            if invocation.cancel_requested:
                self._end(invocation, "Cancelled")
            elif self._can_take(node, invocation):
                invocation.details = "In Progress"
                invocation.started = self.clock.time()
                steps = invocation.command.steps_for(node.platform_type, node.agent_version)
                self._start_step(_Run(invocation, node.executor, steps), 0)
            self.changed.notify_all()

    def _start_step(self, run: _Run, index: int) -> None:
        invocation = run.invocation
        if index == len(run.steps):
            self._finish(invocation)
            return
        step, plugin = run.steps[index], invocation.plugins[index]
        plugin.started = self.clock.time()
        plugin.details = "In Progress"
        if step.skip_message is not None:
            self._end_step(run, index, ("Success", 0, step.skip_message, ""))
        elif step.fail_message is not None:
            self._end_step(run, index, ("Failed", 1, "", step.fail_message))
        else:
            began = self.clock.monotonic()
            self.clock.run_work(
                lambda: _execute(run.executor, step, invocation.instance_id),
                lambda result: self._step_ran(run, index, began, result),
            )

    def _step_ran(self, run: _Run, index: int, began: float, result: ExecutionResult) -> None:
        """The executor has answered; the step ends when its run does, or at its timeout."""
        limit = began + run.steps[index].timeout_seconds
        ends = self.clock.monotonic() + max(0.0, result.duration)
        if result.timed_out or ends > limit:
            outcome = ("Execution Timed Out", STOPPED_PREEMPTIVELY_EXIT_CODE, result.stdout, result.stderr)
            ends = min(ends, limit)
        else:
            details = "Success" if result.exit_code == 0 else "Failed"
            outcome = (details, result.exit_code, result.stdout, result.stderr)

        def end() -> None:
            with self.lock:
                self._end_step(run, index, outcome)
                self.changed.notify_all()

        if ends > self.clock.monotonic():
            self.clock.call_at(ends, end)
        else:
            end()

    def _end_step(self, run: _Run, index: int, outcome: tuple[str, int, str, str]) -> None:
        plugin = run.invocation.plugins[index]
        plugin.details, plugin.response_code, plugin.stdout, plugin.stderr = outcome
        plugin.finished = self.clock.time()
        self._start_step(run, index + 1)

    def _finish(self, invocation: Invocation) -> None:
        # ResponseCode: the first step that did not succeed, else the last step's exit code.
        failing = [p for p in invocation.plugins if p.details != "Success"]
        deciding = failing[0] if failing else invocation.plugins[-1] if invocation.plugins else None
        invocation.response_code = deciding.response_code if deciding else 0
        self._terminal(invocation, _aggregate([p.details for p in invocation.plugins]))

    def _end(self, invocation: Invocation, details: str) -> None:
        """Finish without running (never delivered, stopped, refused): the plugins share the outcome."""
        if invocation.timer is not None:
            invocation.timer.cancel()
        self._terminal(invocation, details)
        for plugin in invocation.plugins:
            if plugin.details in ("Pending", "In Progress"):
                plugin.details = details
                plugin.finished = invocation.finished

    def _terminal(self, invocation: Invocation, details: str) -> None:
        command = invocation.command
        invocation.details = details
        invocation.finished = self.clock.time()
        command.ended += 1
        if details in ERROR_DETAILS:
            command.errors += 1
            if command.errors > command.error_limit:
                queued, command.queue = list(command.queue), deque()
                for waiting in queued:
                    if not waiting.terminal:
                        self._end(waiting, "Terminated")
        self._release(invocation)
        if command.complete and command.deadline is not None:
            command.deadline.cancel()

    def _release(self, invocation: Invocation) -> None:
        if invocation.holds_slot:
            invocation.holds_slot = False
            invocation.command.running -= 1
            self._dispatch(invocation.command)

    def _expire(self, command: Command) -> None:
        with self.lock:
            for invocation in command.invocations.values():
                if invocation.details in NOT_STARTED_DETAILS:
                    self._end(invocation, "Delivery Timed Out")
            command.queue.clear()
            self.changed.notify_all()


@dataclass(frozen=True)
class _Run:
    """An invocation being run on its node: the node's executor and the document's steps as planned for it."""

    invocation: Invocation
    executor: Executor
    steps: list[StepPlan]


def _gone(node: ManagedInstance) -> bool:
    """ "Undeliverable: The managed node might not exist or might not be responding."""
    return node.state in GONE_STATES or node.ping_status == "Inactive"


def _execute(executor: Executor, step: StepPlan, instance_id: str) -> ExecutionResult:
    try:
        return executor.run(step.script, step.env, step.timeout_seconds)
    except Exception as error:  # a broken executor fails its step, never hangs the command
        _log.exception("executor of %s failed", instance_id)
        return ExecutionResult(1, "", f"executor error: {error!r}")


def _aggregate(plugin_details: list[str]) -> str:
    # amazon-ssm-agent DocumentResultAggregator precedence: Failed > TimedOut > Cancelled > Success.
    for details in ("Failed", "Execution Timed Out", "Cancelled"):
        if details in plugin_details:
            return details
    return "Success"


def iso_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
