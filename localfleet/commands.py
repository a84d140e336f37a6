"""The Run Command engine: commands, their invocations, rate control and statuses.

Statuses follow the SSM API reference (``CommandInvocation.StatusDetails``,
``Command.StatusDetails``) and the agent's aggregation
(``contracts.DocumentResultAggregator``: Failed > TimedOut > Cancelled >
Success, "Skipped is a form of success"). Where the documentation names a
StatusDetails value but not the Status that goes with it, the choice is
marked "CHOICE" below.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .documents import Document, StepPlan, plan_steps
from .executors import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult
from .fleet import ManagedInstance

_log = logging.getLogger(__name__)

# StatusDetails → Status.
STATUS_OF_DETAILS = {
    "Pending": "Pending",
    "In Progress": "InProgress",
    "Success": "Success",
    "Failed": "Failed",
    "Execution Timed Out": "TimedOut",
    "Delivery Timed Out": "TimedOut",
    "Cancelled": "Cancelled",
    "Undeliverable": "Failed",  # CHOICE: the enum has no Undeliverable; it is not a success
    "Terminated": "Cancelled",  # CHOICE: "invocations were canceled by the system" (MaxErrors reached)
}
TERMINAL_DETAILS = frozenset(STATUS_OF_DETAILS) - {"Pending", "In Progress"}
# Command.ErrorCount: "the number of targets for which the status is Failed or Execution Timed Out";
# these alone count against MaxErrors (delivery timeouts and undeliverables do not).
ERROR_DETAILS = frozenset({"Failed", "Execution Timed Out"})
# GetCommandInvocation: StandardOutputContent "The first 24,000 characters", stderr the first 8,000.
STDOUT_CONTENT_CHARS = 24_000
STDERR_CONTENT_CHARS = 8_000
# ListCommandInvocations Details: "the first 2,500 characters" of plugin output.
PLUGIN_OUTPUT_CHARS = 2_500
DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"
DEFAULT_DELIVERY_TIMEOUT_SECONDS = 3600  # CHOICE: the API reference gives no default


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


@dataclass
class PluginResult:
    name: str
    details: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started: float | None = None
    finished: float | None = None

    @property
    def status(self) -> str:
        return STATUS_OF_DETAILS[self.details]

    @property
    def output(self) -> str:
        return truncate_output(self.stdout, self.stderr, PLUGIN_OUTPUT_CHARS)


@dataclass(eq=False)
class Invocation:
    command: Command = field(repr=False)
    instance_id: str
    instance_name: str
    plugins: list[PluginResult]
    details: str = "Pending"
    response_code: int = -1
    started: float | None = None
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    sent: bool = False  # taken by a worker: delivering or running

    @property
    def status(self) -> str:
        return STATUS_OF_DETAILS[self.details]

    @property
    def terminal(self) -> bool:
        return self.details in TERMINAL_DETAILS

    def finish(self, details: str) -> None:
        """Enter a terminal status (lock held); the command keeps its error count current."""
        self.details = details
        self.finished = time.time()
        if details in ERROR_DETAILS:
            self.command.errors += 1

    def end(self, details: str) -> None:
        """Finish without running (never delivered, stopped): the plugins share the outcome."""
        self.finish(details)
        for plugin in self.plugins:
            if plugin.details in ("Pending", "In Progress"):
                plugin.details = details
                plugin.finished = self.finished


@dataclass(eq=False)
class Command:
    command_id: str
    document: Document
    request: Mapping[str, Any]
    parameter_values: dict[str, list[str]]
    requested: float
    delivery_deadline: float  # time.monotonic() after which an unstarted invocation will not run
    concurrency: int
    error_limit: int
    invocations: dict[str, Invocation] = field(default_factory=dict)
    cancel_requested: bool = False
    errors: int = 0  # invocations Failed or Execution Timed Out, kept by Invocation.finish
    workers: int = 0  # worker threads still sending this command
    deadline_timer: threading.Timer | None = None

    @property
    def timeout_seconds(self) -> int:
        return int(self.request.get("TimeoutSeconds", DEFAULT_DELIVERY_TIMEOUT_SECONDS))

    def error_count(self) -> int:
        return self.errors

    def status_details(self) -> str:
        invocations = list(self.invocations.values())
        if not all(i.terminal for i in invocations):
            if self.cancel_requested:
                return "Cancelling"
            return "In Progress" if any(i.details != "Pending" for i in invocations) else "Pending"
        if self.cancel_requested:
            return "Cancelled"
        details = [i.details for i in invocations]
        errors = sum(d in ERROR_DETAILS for d in details)
        if errors > self.error_limit:
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
        # CHOICE: Incomplete is reported with Status Failed (the Status enum has no Incomplete).
        return {"In Progress": "InProgress", "Incomplete": "Failed", "Cancelling": "Cancelling"}.get(
            details, STATUS_OF_DETAILS.get(details, details)
        )


def truncate_output(stdout: str, stderr: str, capacity: int) -> str:
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


class CommandEngine:
    """Runs commands in background threads; every state change happens under one lock.

    Each command gets as many worker threads as its MaxConcurrency allows
    (capped by ``worker_limit``). A worker takes the next invocation not yet
    sent, decides whether it may still be sent, and delivers and runs it; so
    no more than MaxConcurrency invocations of the command are ever in flight,
    fleet-wide, whatever their number.
    """

    def __init__(self, worker_limit: int = 256, delivery_time_scale: float = 1.0) -> None:
        self.worker_limit = worker_limit
        self.delivery_time_scale = delivery_time_scale
        self.changed = threading.Condition(threading.RLock())
        self.commands: dict[str, Command] = {}
        self._busy = 0  # worker threads alive

    def create(
        self,
        document: Document,
        request: Mapping[str, Any],
        parameter_values: dict[str, list[str]],
        targets: list[ManagedInstance],
    ) -> Command:
        """Record a command for ``targets``; ``start`` sends it."""
        count = len(targets)
        timeout = int(request.get("TimeoutSeconds", DEFAULT_DELIVERY_TIMEOUT_SECONDS))
        command = Command(
            command_id=str(uuid.uuid4()),
            document=document,
            request=dict(request),
            parameter_values=parameter_values,
            requested=time.time(),
            delivery_deadline=time.monotonic() + timeout * self.delivery_time_scale,
            concurrency=rate_limit(
                request.get("MaxConcurrency", DEFAULT_MAX_CONCURRENCY), count, at_least_one=True
            ),
            error_limit=rate_limit(request.get("MaxErrors", DEFAULT_MAX_ERRORS), count, at_least_one=False),
        )
        step_names = [str(step.get("name", step.get("action"))) for step in document.steps()]
        for target in targets:
            plugins = [PluginResult(name) for name in step_names]
            command.invocations[target.instance_id] = Invocation(
                command, target.instance_id, target.computer_name, plugins
            )
        with self.changed:
            self.commands[command.command_id] = command
        return command

    def start(self, command: Command, instance_lookup: Callable[[str], ManagedInstance | None]) -> None:
        unsent = iter(list(command.invocations.values()))
        workers = min(command.concurrency, self.worker_limit, len(command.invocations))
        with self.changed:
            self._busy += workers
            command.workers = workers
            if workers:
                # Invocations still queued behind MaxConcurrency when the delivery timeout passes
                # will not run; they show Delivery Timed Out then, not when a worker gets to them.
                delay = max(0.0, command.delivery_deadline - time.monotonic())
                command.deadline_timer = threading.Timer(delay, self._expire_unsent, args=(command,))
                command.deadline_timer.daemon = True
                command.deadline_timer.start()
        for number in range(workers):
            threading.Thread(
                target=self._work,
                args=(command, unsent, instance_lookup),
                name=f"command-{command.command_id[:8]}-{number}",
                daemon=True,
            ).start()

    def cancel(self, command: Command, instance_ids: list[str] | None) -> None:
        """Cancel the invocations not yet running: queued ones at once, delivering ones when they wake.

        An invocation already running is left to finish: executors cannot be
        interrupted (the real agent would kill the script).
        """
        with self.changed:
            if not instance_ids:
                command.cancel_requested = True
            for instance_id in instance_ids or list(command.invocations):
                invocation = command.invocations.get(instance_id)
                if invocation is None:
                    continue
                invocation.cancel_requested.set()
                if not invocation.sent and not invocation.terminal:
                    invocation.end("Cancelled")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no command has work left; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: self._busy == 0, timeout)

    def stop(self) -> None:
        """Stop sending: every invocation not yet started is cancelled."""
        with self.changed:
            for command in self.commands.values():
                self.cancel(command, None)

    # --- sending -----------------------------------------------------------------------
    def _work(
        self,
        command: Command,
        unsent: Iterator[Invocation],
        instance_lookup: Callable[[str], ManagedInstance | None],
    ) -> None:
        try:
            while True:
                with self.changed:
                    invocation = next(unsent, None)
                    if invocation is None:
                        return
                    instance = self._send_or_end(command, invocation, instance_lookup)
                if instance is not None and self._delivered(command, invocation, instance):
                    self._run(command, invocation, instance)
        finally:
            with self.changed:
                self._busy -= 1
                command.workers -= 1
                if command.workers == 0 and command.deadline_timer is not None:
                    command.deadline_timer.cancel()
                self.changed.notify_all()

    def _expire_unsent(self, command: Command) -> None:
        with self.changed:
            for invocation in command.invocations.values():
                if not invocation.sent and not invocation.terminal:
                    invocation.end("Delivery Timed Out")

    def _send_or_end(
        self,
        command: Command,
        invocation: Invocation,
        instance_lookup: Callable[[str], ManagedInstance | None],
    ) -> ManagedInstance | None:
        """The instance to send ``invocation`` to, or None after giving it its terminal status."""
        if invocation.terminal:
            pass  # expired while queued
        elif invocation.cancel_requested.is_set():
            invocation.end("Cancelled")
        elif command.error_count() > command.error_limit:
            # "When the command fails one more time beyond the value of MaxErrors, the system stops
            # sending the command to additional targets" — those get StatusDetails Terminated.
            invocation.end("Terminated")
        elif time.monotonic() >= command.delivery_deadline:
            # "If this time is reached and the command hasn't already started running, it won't run."
            invocation.end("Delivery Timed Out")
        else:
            instance = instance_lookup(invocation.instance_id)
            if instance is not None and instance.ping_status == "Online":
                invocation.sent = True
                return instance
            # "Undeliverable: The managed node might not exist or might not be responding."
            invocation.end("Undeliverable")
        return None

    def _delivered(self, command: Command, invocation: Invocation, instance: ManagedInstance) -> bool:
        """Wait out the instance's delivery delay; False when the invocation ended instead."""
        until_deadline = command.delivery_deadline - time.monotonic()
        wait = min(instance.delivery_delay, max(0.0, until_deadline))
        cancelled = (
            invocation.cancel_requested.wait(wait) if wait > 0 else invocation.cancel_requested.is_set()
        )
        with self.changed:
            if cancelled:
                invocation.end("Cancelled")
            elif instance.delivery_delay >= until_deadline:
                invocation.end("Delivery Timed Out")
            else:
                invocation.details = "In Progress"
                invocation.started = time.time()
                return True
            return False

    def _run(self, command: Command, invocation: Invocation, instance: ManagedInstance) -> None:
        steps = plan_steps(command.document, command.parameter_values, instance.platform_type)
        for plugin, step in zip(invocation.plugins, steps, strict=True):
            self._run_step(plugin, step, instance)
        with self.changed:
            # ResponseCode: the first step that did not succeed, else the last step's exit code.
            failing = [p for p in invocation.plugins if p.details != "Success"]
            deciding = failing[0] if failing else invocation.plugins[-1] if invocation.plugins else None
            invocation.response_code = deciding.response_code if deciding else 0
            invocation.finish(_aggregate([p.details for p in invocation.plugins]))

    def _run_step(self, plugin: PluginResult, step: StepPlan, instance: ManagedInstance) -> None:
        with self.changed:
            plugin.started = time.time()
            plugin.details = "In Progress"
        if step.skip_message is not None:
            outcome = ("Success", 0, step.skip_message, "")
        elif step.fail_message is not None:
            outcome = ("Failed", 1, "", step.fail_message)
        else:
            try:
                result = instance.executor.run(step.script, step.env, step.timeout_seconds)
            except Exception as error:  # a broken executor fails its step, never hangs the command
                _log.exception("executor of %s failed", instance.instance_id)
                result = ExecutionResult(1, "", f"executor error: {error!r}")
            if result.timed_out:
                details = "Execution Timed Out"
                code = STOPPED_PREEMPTIVELY_EXIT_CODE
            else:
                details = "Success" if result.exit_code == 0 else "Failed"
                code = result.exit_code
            outcome = (details, code, result.stdout, result.stderr)
        with self.changed:
            plugin.details, plugin.response_code, plugin.stdout, plugin.stderr = outcome
            plugin.finished = time.time()


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
