"""An emulator of SSM Run Command served at botocore's HTTP layer.

moto has no Run Command (FACTS.md), and botocore's Stubber answers before the
retry logic runs, so neither can show a throttling storm ridden out by the
runner's real clients. This fake is registered as a ``before-send`` handler:
the real boto3 client serialises and validates each request against botocore's
service model, the fake answers with the JSON the service would send (including
error responses such as ThrottlingException), and the real client parses it
and applies its retry policy.

It also enforces what the model does not: SendCommand's 50-id and Targets
limits, MaxConcurrency/MaxErrors forms, page-size limits, the document's name,
version and parameter patterns (from ``contract``, as the real document does).

Time comes from a ``FakeClock`` shared with the runner. Each invocation starts
when one of the command's MaxConcurrency slots is free and finishes after its
node's ``duration``.

What the service does that a runner must survive, from AWS's documentation
(SSM user guide, "Understanding command statuses",
https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html,
and botocore's SSM service model). Where the documentation leaves a choice open,
the fake takes the harsher one and says so (HARSHER):

* ``InvalidInstanceId``: SendCommand with ``InstanceIds`` fails *as a whole* when any
  id is not a valid target; the model's error documentation lists shutting-down and
  terminated instances and unregistered agents. Nothing is started. HARSHER: the
  message names no instance id, so a caller cannot learn which one from it.
  A terminated node's ping status is not updated at once (``Node.state`` changes,
  ``ping_status`` stays): SSM's ping lags the EC2 state.
* Targets resolve after SendCommand returns: "Right after SendCommand,
  ListCommandInvocations may list nothing" (``target_resolution_seconds``; until
  then the command is Pending with TargetCount 0 and lists no invocation).
* A tag matching no managed node ends the command with StatusDetails
  ``No Instances In Tag`` and no invocation. HARSHER: its Status is ``Failed``
  (the guide gives the detail, not the Status).
* ``Delayed``: "The system attempted to send the command to the managed node but
  wasn't successful. The system retries again." A node that is not Online when the
  command reaches it is Delayed (HARSHER than Pending: it looks like progress).
* "If the agent doesn't receive the command before the time that equals the sum of
  the Timeout (seconds) parameter and the Execution timeout parameter, the status
  changes to Delivery Timed Out": undelivered invocations time out only after the
  delivery timeout *plus* the document's execution timeout (``execution_timeout``).
* ListCommands is eventually consistent: a new command appears in it only after
  ``list_commands_lag`` seconds. HARSHER: also when asked by CommandId (an empty
  list, as for a command that does not exist yet), not only in searches.
* The agent's own lock: an invocation that starts on a node while another command's
  invocation runs there prints the agent's ``locked`` result (skipped) at once.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import botocore.exceptions
import botocore.retries.bucket
import botocore.waiter
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from ecr_fleet_auth import contract

WALL_START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
LISTING_OUTPUT_CHARS = 2500
STDOUT_CHARS = 24000
TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}
# EC2 states in which SendCommand refuses an instance id (botocore's InvalidInstanceId documentation).
INVALID_TARGET_STATES = {"shutting-down", "terminated"}
NO_INSTANCES_IN_TAG = "No Instances In Tag"
LOCK_HELD_SECONDS = 1.0
# Error codes answered with a 5xx status; every other injected code is a 400.
SERVER_ERRORS = {"InternalServerError": 500, "ServiceUnavailable": 503}


class FakeClock:
    """Monotonic time that only moves when someone sleeps; wall time moves with it."""

    def __init__(self, start: float = 1000.0, wall_start: datetime = WALL_START) -> None:
        self.start = self.time = start
        self.wall_start = wall_start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.time

    def wall(self, moment: float | None = None) -> datetime:
        """Wall-clock time at a monotonic moment (default: now)."""
        return self.wall_start + timedelta(seconds=(self.time if moment is None else moment) - self.start)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += max(0.0, seconds)


def simulate_botocore_time(monkeypatch: pytest.MonkeyPatch, clock: FakeClock, sleeps: list[float]) -> None:
    """Run botocore's retry back-off, adaptive rate limiter and waiters on the simulated clock.

    The real policies still decide how long to wait; the waits are recorded
    (the storm tests read them) and pass in simulated time, not wall time.
    """

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    class Condition(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            # Real time always moves on; a simulated wait must too, or a bucket
            # short of a token by a rounding error would wait forever.
            sleep(max(timeout or 0.0, 0.001))
            return True

    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(botocore.retries.bucket, "time", SimpleNamespace(time=clock.monotonic, sleep=sleep))
    monkeypatch.setattr(
        botocore.retries.bucket, "threading", SimpleNamespace(Condition=Condition, Lock=threading.Lock)
    )
    monkeypatch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=sleep))


def agent_line(outcome: str = "changed", reason: str = "ok", message: str = "", **extra: Any) -> str:
    return json.dumps(
        {
            "schema": contract.RESULT_SCHEMA,
            "action": "refresh",
            "outcome": outcome,
            "reason": reason,
            "message": message,
            **extra,
        },
        separators=(",", ":"),
    )


@dataclass
class Behaviour:
    """How a node answers a command: Run Command's statuses and the agent's output."""

    status: str = "Success"
    status_details: str = "Success"
    stdout: str = field(default_factory=agent_line)
    stderr: str = ""
    response_code: int = 0
    duration: float = 20.0


@dataclass
class Node:
    instance_id: str
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    ping_status: str = "Online"
    platform_type: str = "Linux"
    platform_name: str = "Amazon Linux"
    behaviour: Behaviour = field(default_factory=Behaviour)
    state: str = "running"  # the EC2 state, as SendCommand checks it


@dataclass
class Invocation:
    node: Node
    start: float
    finish: float
    delivered: bool = True  # False: the node was not Online; Delayed, then Delivery Timed Out
    locked: bool = False  # the agent found another run's lock: skipped, reason locked


@dataclass
class Command:
    command_id: str
    sent_at: float
    request: dict[str, Any]
    invocations: list[Invocation]
    resolved_at: float = 0.0  # Targets are resolved (invocations listed) from this moment

    @property
    def by_tag(self) -> bool:
        return "Targets" in self.request


# (operation, its request number, params) -> an error code or a TRANSPORT_ERRORS name, or None.
FaultRule = Callable[[str, int, dict[str, Any]], str | None]


class FakeServiceError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


class FakeRunCommand:
    def __init__(self, clock: FakeClock, document_name: str, document_version: str = "1") -> None:
        self.clock = clock
        self.document_name = document_name
        self.document_version = document_version
        self.nodes: dict[str, Node] = {}
        self.commands: dict[str, Command] = {}
        self.calls: Counter[str] = Counter()  # requests received, retries included
        self.requests: list[tuple[str, dict[str, Any]]] = []
        # A throttling storm is ``lambda op, n, p: "ThrottlingException" if n % 3 else None``.
        self.fault: FaultRule = lambda operation, number, params: None
        # The same, but the request is carried out first and only its answer is an error:
        # what the client sees when the service's response is lost.
        self.lost_answer: FaultRule = lambda operation, number, params: None
        # Called with (operation, params) before each request is handled: the world moving
        # on between two calls (an instance terminating just before a SendCommand).
        self.before: Callable[[str, dict[str, Any]], None] = lambda operation, params: None
        self.execution_timeout = 600.0  # the document's executionTimeout
        self.target_resolution_seconds = 0.0
        self.list_commands_lag = 0.0

    # --- registration --------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        self.nodes[node.instance_id] = node
        return node

    def sent(self, operation: str = "SendCommand") -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == operation]

    def peak_concurrency(self) -> int:
        """Most invocations running at one moment, over all commands of the run."""
        edges = sorted(
            (moment, step)
            for command in self.commands.values()
            for invocation in command.invocations
            if invocation.delivered and not invocation.locked
            for moment, step in ((invocation.start, 1), (invocation.finish, -1))
        )
        running = peak = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return peak

    def agent_runs_overlap(self) -> bool:
        """Whether the agent ever worked on one node for two commands at once (locked runs do not work)."""
        runs: dict[str, list[tuple[float, float]]] = {}
        for command in self.commands.values():
            for invocation in command.invocations:
                if invocation.delivered and not invocation.locked:
                    runs.setdefault(invocation.node.instance_id, []).append(
                        (invocation.start, invocation.finish)
                    )
        return any(
            later_start < earlier_finish
            for spans in runs.values()
            for (_, earlier_finish), (later_start, _) in itertools.pairwise(sorted(spans))
        )

    def commanded(self, instance_id: str) -> int:
        """How many commands reached ``instance_id`` (an invocation was created for it)."""
        return sum(
            any(i.node.instance_id == instance_id for i in command.invocations)
            for command in self.commands.values()
        )

    # --- HTTP layer ------------------------------------------------------------------------
    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if not target.startswith("AmazonSSM."):
            return None
        operation = target.split(".", 1)[1]
        body = request.body or b"{}"
        params = json.loads(body.decode() if isinstance(body, bytes) else body)
        self.calls[operation] += 1
        self.requests.append((operation, params))
        self.before(operation, params)
        try:
            code = self.fault(operation, self.calls[operation], params)
            if code is not None:
                _raise_transport_error(code, request.url)  # the request never arrived
                raise FakeServiceError(code, "injected fault", SERVER_ERRORS.get(code, 400))
            handler = getattr(self, "_" + operation, None)
            if handler is None:
                raise FakeServiceError("InvalidAction", f"{operation} is not emulated")
            status, payload = 200, handler(params)
            lost = self.lost_answer(operation, self.calls[operation], params)
            if lost is not None:
                _raise_transport_error(lost, request.url)  # carried out, answer never arrived
                raise FakeServiceError(lost, "carried out, then the answer was lost", SERVER_ERRORS[lost])
        except FakeServiceError as error:
            status, payload = error.status, {"__type": error.code, "message": error.message}
        return AWSResponse(
            request.url,
            status,
            {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fake"},
            _Raw(json.dumps(payload).encode()),
        )

    # --- operations ------------------------------------------------------------------------
    def _DescribeInstanceInformation(self, params: dict[str, Any]) -> dict[str, Any]:
        size = params.get("MaxResults", 10)
        _require(5 <= size <= 50, "MaxResults must be between 5 and 50")
        wanted: set[str] | None = None
        for item in params.get("Filters", []):
            _require(item["Key"] == "InstanceIds", f"filter {item['Key']} is not emulated")
            _require(len(item["Values"]) <= 100, "at most 100 filter values")
            wanted = set(item["Values"])
        nodes = [n for n in self.nodes.values() if wanted is None or n.instance_id in wanted]
        page, token = _page(sorted(nodes, key=lambda n: n.instance_id), params, size)
        return _with_token(
            {
                "InstanceInformationList": [
                    {
                        "InstanceId": n.instance_id,
                        "PingStatus": n.ping_status,
                        "PlatformType": n.platform_type,
                        "PlatformName": n.platform_name,
                        "AgentVersion": "3.3.0.0",
                        "ResourceType": "EC2Instance",
                    }
                    for n in page
                ]
            },
            token,
        )

    def _SendCommand(self, params: dict[str, Any]) -> dict[str, Any]:
        ids, targets = params.get("InstanceIds"), params.get("Targets")
        _require((ids is None) != (targets is None), "exactly one of InstanceIds and Targets")
        _require(params["DocumentName"] == self.document_name, "InvalidDocument", code="InvalidDocument")
        _require(
            params.get("DocumentVersion") == self.document_version, "bad version", "InvalidDocumentVersion"
        )
        _require(len(params.get("Comment", "")) <= 100, "Comment longer than 100 characters")
        _require(30 <= params.get("TimeoutSeconds", 3600) <= 2_592_000, "TimeoutSeconds out of range")
        concurrency, errors = params.get("MaxConcurrency", "50"), params.get("MaxErrors", "0")
        _require(contract.matches(contract.MAX_CONCURRENCY_PATTERN, concurrency), "MaxConcurrency")
        _require(contract.matches(contract.MAX_ERRORS_PATTERN, errors), "MaxErrors")
        for name, values in params.get("Parameters", {}).items():
            parameter = contract.PARAMETERS_BY_NAME.get(name)
            _require(parameter is not None, f"unknown parameter {name}", "InvalidParameters")
            assert parameter is not None
            _require(len(values) == 1 and parameter.accepts(values[0]), name, "InvalidParameters")
        if ids is not None:
            _require(1 <= len(ids) <= 50, "1 to 50 InstanceIds")
            invalid = [i for i in ids if i not in self.nodes or self.nodes[i].state in INVALID_TARGET_STATES]
            # HARSHER: the message does not say which ids (see the module docstring).
            _require(not invalid, "Instances not in a valid state for account", "InvalidInstanceId")
            resolve_after = 0.0
        else:
            _require(len(targets) <= 5, "at most 5 Targets")
            for target in targets:
                _require(target["Key"].startswith("tag:"), "only tag targets are emulated")
                _require(len(target["Values"]) <= 50, "at most 50 target values")
            resolve_after = self.target_resolution_seconds
        command_id = f"{len(self.commands) + 1:08d}-0000-4000-8000-000000000000"
        now = self.clock.monotonic()
        command = Command(command_id, now, params, [], resolved_at=now + resolve_after)
        self.commands[command_id] = command
        command.invocations = self._schedule(command, [self.nodes[i] for i in ids] if ids else None)
        answer = self._command(command)
        answer.update(Status="Pending", StatusDetails="Pending")  # as SendCommand answers
        return {"Command": answer}

    def _schedule(self, command: Command, nodes: list[Node] | None) -> list[Invocation]:
        """The invocations' timeline, from the moment the targets are resolved."""
        params = command.request
        if nodes is None:  # tag targets: the managed nodes carrying the tag when resolved
            matched: dict[str, Node] = {}
            for target in params["Targets"]:
                key = target["Key"][4:]
                matched.update(
                    (n.instance_id, n)
                    for n in self.nodes.values()
                    # A terminated (or shutting-down) instance is no longer a target.
                    if n.tags.get(key) in target["Values"] and n.state not in INVALID_TARGET_STATES
                )
            nodes = [matched[i] for i in sorted(matched)]
        begin = command.resolved_at
        slots = [begin] * _budget(params.get("MaxConcurrency", "50"), len(nodes))
        never_delivered = begin + params.get("TimeoutSeconds", 3600) + self.execution_timeout
        invocations = []
        for node in nodes:
            if node.ping_status != "Online":  # Delayed until delivery + execution timeout; holds no slot
                invocations.append(Invocation(node, never_delivered, never_delivered, delivered=False))
                continue
            start = heapq.heappop(slots)
            others = [
                other
                for earlier in self.commands.values()
                if earlier is not command
                for other in earlier.invocations
                if other.node is node and other.delivered and not other.locked
            ]
            # Whoever starts first holds the agent's lock; the other finds it held.
            locked = any(other.start <= start < other.finish for other in others)
            finish = start + (LOCK_HELD_SECONDS if locked else node.behaviour.duration)
            if not locked:
                for other in others:
                    if start < other.start < finish:
                        other.locked, other.finish = True, other.start + LOCK_HELD_SECONDS
            heapq.heappush(slots, finish)
            invocations.append(Invocation(node, start, finish, locked=locked))
        return invocations

    def _ListCommands(self, params: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.monotonic()
        visible = [c for c in self.commands.values() if now >= c.sent_at + self.list_commands_lag]
        if "CommandId" in params:
            command = self.commands.get(params["CommandId"])
            _require(command is not None, "no such command", "InvalidCommandId")
            return {"Commands": [self._command(c) for c in visible if c is command]}
        size = params.get("MaxResults", 50)
        _require(1 <= size <= 50, "MaxResults must be between 1 and 50")
        commands = visible
        for item in params.get("Filters", []):
            key, value = item["key"], item["value"]
            if key in ("InvokedAfter", "InvokedBefore"):
                _require(len(value) == 20 and value.endswith("Z"), f"{key} wants YYYY-MM-DDTHH:MM:SSZ")
                moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                after = key == "InvokedAfter"
                commands = [c for c in commands if (self.clock.wall(c.sent_at) >= moment) == after]
            elif key == "DocumentName":
                commands = [c for c in commands if c.request["DocumentName"] == value]
            elif key == "Status":
                commands = [c for c in commands if self._command(c)["Status"] == value]
            elif key == "ExecutionStage":
                _require(value in ("Executing", "Complete"), "ExecutionStage is Executing or Complete")
                complete = value == "Complete"
                commands = [c for c in commands if (self._command(c)["Status"] in TERMINAL) == complete]
            else:
                _require(False, f"filter {key} is not emulated")
        # Newest first, as the service lists them.
        commands.sort(key=lambda c: c.sent_at, reverse=True)
        page, token = _page(commands, params, size)
        return _with_token({"Commands": [self._command(c) for c in page]}, token)

    def _ListCommandInvocations(self, params: dict[str, Any]) -> dict[str, Any]:
        size = params.get("MaxResults", 50)
        _require(1 <= size <= 50, "MaxResults must be between 1 and 50")
        command = self.commands.get(params["CommandId"])
        _require(command is not None, "no such command", "InvalidCommandId")
        assert command is not None
        page, token = _page(self._listed(command), params, size)
        return _with_token(
            {
                "CommandInvocations": [
                    self._invocation(command, i, params.get("Details", False)) for i in page
                ]
            },
            token,
        )

    def _GetCommandInvocation(self, params: dict[str, Any]) -> dict[str, Any]:
        command = self.commands.get(params["CommandId"])
        listed = self._listed(command) if command else []
        found = [i for i in listed if i.node.instance_id == params["InstanceId"]]
        _require(bool(found), "no such invocation", "InvocationDoesNotExist")
        status, details = self._state(found[0])
        behaviour = found[0].node.behaviour
        finished = status in TERMINAL
        return {
            "CommandId": params["CommandId"],
            "InstanceId": params["InstanceId"],
            "Status": status,
            "StatusDetails": details,
            "StandardOutputContent": _stdout(found[0])[:STDOUT_CHARS] if finished else "",
            "StandardErrorContent": behaviour.stderr[:8000] if finished else "",
            "ResponseCode": behaviour.response_code if finished else -1,
        }

    # --- state -----------------------------------------------------------------------------
    def _listed(self, command: Command) -> list[Invocation]:
        return command.invocations if self.clock.monotonic() >= command.resolved_at else []

    def _state(self, invocation: Invocation) -> tuple[str, str]:
        now = self.clock.monotonic()
        if not invocation.delivered:
            return ("TimedOut", "Delivery Timed Out") if now >= invocation.finish else ("Delayed", "Delayed")
        if now < invocation.start:
            return "Pending", "Pending"
        if now < invocation.finish:
            return "InProgress", "In Progress"
        if invocation.node.platform_type != "Linux" or invocation.locked:
            return "Success", "Success"  # the precondition skipped the step, or the agent said skipped
        return invocation.node.behaviour.status, invocation.node.behaviour.status_details

    def _command(self, command: Command) -> dict[str, Any]:
        listed = self._listed(command)
        states = [self._state(i)[0] for i in listed]
        details = None
        if self.clock.monotonic() < command.resolved_at:
            status = "Pending"
        elif not states and command.by_tag:
            status, details = "Failed", NO_INSTANCES_IN_TAG  # HARSHER: see the module docstring
        elif all(state in TERMINAL for state in states):
            status = "Success" if all(state == "Success" for state in states) else "Failed"
        else:
            status = "InProgress"
        request = command.request
        return {
            "CommandId": command.command_id,
            "DocumentName": request["DocumentName"],
            "DocumentVersion": request.get("DocumentVersion", "$DEFAULT"),
            "Comment": request.get("Comment", ""),
            "Parameters": request.get("Parameters", {}),
            "InstanceIds": request.get("InstanceIds", []),
            "Targets": request.get("Targets", []),
            "RequestedDateTime": self.clock.wall(command.sent_at).timestamp(),
            "Status": status,
            "StatusDetails": details or status,
            "MaxConcurrency": request.get("MaxConcurrency", "50"),
            "MaxErrors": request.get("MaxErrors", "0"),
            "TargetCount": len(states),
            "CompletedCount": sum(state in TERMINAL for state in states),
            "ErrorCount": sum(state in {"Failed", "TimedOut"} for state in states),
        }

    def _invocation(self, command: Command, invocation: Invocation, details: bool) -> dict[str, Any]:
        status, status_details = self._state(invocation)
        item: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": invocation.node.instance_id,
            "InstanceName": invocation.node.name,
            "DocumentName": command.request["DocumentName"],
            "Status": status,
            "StatusDetails": status_details,
        }
        if details:
            behaviour = invocation.node.behaviour
            plugin: dict[str, Any] = {
                "Name": "ecrFleetAuth",
                "Status": status,
                "StatusDetails": status_details,
            }
            if status in TERMINAL and invocation.delivered:
                output = _stdout(invocation)
                if behaviour.stderr and not invocation.locked:
                    output += "\n----------ERROR-------\n" + behaviour.stderr
                code = 0 if invocation.locked else behaviour.response_code
                plugin.update(ResponseCode=code, Output=output[:LISTING_OUTPUT_CHARS])
            item["CommandPlugins"] = [plugin]
        return item


def _stdout(invocation: Invocation) -> str:
    if invocation.node.platform_type != "Linux":
        return "Step execution skipped due to unsatisfied preconditions"
    if invocation.locked:
        return agent_line("skipped", "locked", "another ecr-fleet-auth run is in progress")
    return invocation.node.behaviour.stdout


# What botocore raises when a connection fails, by name; a fault rule may answer with these.
TRANSPORT_ERRORS: dict[str, type[botocore.exceptions.BotoCoreError]] = {
    "EndpointConnectionError": botocore.exceptions.EndpointConnectionError,
    "ConnectTimeoutError": botocore.exceptions.ConnectTimeoutError,
    "ReadTimeoutError": botocore.exceptions.ReadTimeoutError,
    "ConnectionClosedError": botocore.exceptions.ConnectionClosedError,
}


def _raise_transport_error(name: str, url: str) -> None:
    error = TRANSPORT_ERRORS.get(name)
    if error is not None:
        raise error(endpoint_url=url)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _require(condition: bool, message: str, code: str = "ValidationException") -> None:
    if not condition:
        raise FakeServiceError(code, message)


def _budget(value: str, total: int) -> int:
    if value.endswith("%"):
        return max(1, math.ceil(int(value[:-1]) * total / 100))
    return max(1, int(value))


def _page(items: list[Any], params: dict[str, Any], size: int) -> tuple[list[Any], str | None]:
    offset = int(params.get("NextToken") or 0)
    end = offset + size
    return items[offset:end], (str(end) if end < len(items) else None)


def _with_token(payload: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        payload["NextToken"] = token
    return payload
