"""Step Functions as moto 5.2 runs it, with the Amazon States Language interpreter it ships: the model.

moto executes state machines only when configured to (``{"stepfunctions": {"execute_state_machine":
True}}``: ``mock_aws(config=...)`` in this process, ``POST /moto-api/config`` to its server), and
then every execution runs on the interpreter moto took from LocalStack
(``moto/stepfunctions/parser``): JSONPath, Pass, Task, Map (Distributed, its ItemReader reading S3),
Catch, Retry, the 256 KiB state limit. What it does not do is documented where it matters
(``docs/how-it-works/organizations.md``); the state machine under test is the one the stack
synthesizes (``resolved_definition``), created as it is, never rewritten.

``StateMachines`` creates it and runs named executions (an unnamed StartExecution gets moto's ARN
ending in ``:None``, which two executions share). ``Figures`` reads what AWS bills and limits, from
the interpreter itself: state transitions (every ``*StateEntered`` event, the Map's children's
included, which no API returns: each Map run has an event manager of its own) and the largest state
payload (every value the interpreter checks against the 256 KiB quota, measured as JSON).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.quotas import is_within_size_quota

from ...synthesized_stack import Template, only, resolve

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
DONE = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# A role ARN for CreateStateMachine (moto checks its form, not its policies).
ROLE_ARN = "arn:aws:iam::{account}:role/ecr-fleet-auth-state-machine"


class Patcher(Protocol):
    def setattr(self, target: Any, name: str, value: Any) -> None: ...


def resolved_definition(template: Template, references: Mapping[str, str]) -> tuple[str, str]:
    """The template's state machine: its name and its definition with every reference worked out
    (``synthesized_stack.resolve``: ``<logical id>.Arn`` of a function, ``<logical id>`` of a bucket,
    ``AWS::Partition``, ...)."""
    properties = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    definition = resolve(properties["DefinitionString"], references)
    json.loads(definition)  # a definition that is not JSON is a synthesis bug, not the interpreter's
    return str(properties["StateMachineName"]), str(definition)


class StateMachines:
    """Creates and runs state machines through ``client`` (a boto3 Step Functions client reaching moto)."""

    def __init__(self, client: Any, account: str) -> None:
        self.client = client
        self.account = account

    def create(self, name: str, definition: str) -> str:
        """The state machine's ARN (a Standard workflow, as the stack declares it)."""
        answer = self.client.create_state_machine(
            name=name, definition=definition, roleArn=ROLE_ARN.format(account=self.account), type="STANDARD"
        )
        return str(answer["stateMachineArn"])

    def start(self, state_machine_arn: str, execution_input: Any, name: str) -> str:
        """Start a named execution; its ARN."""
        answer = self.client.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        return str(answer["executionArn"])

    def wait(
        self, execution_arn: str, timeout: float, poll: float = 0.05, longest_poll: float = 1.0
    ) -> dict[str, Any]:
        """DescribeExecution once the execution ended (real time: the interpreter runs on threads).

        The polls grow apart (doubling up to ``longest_poll``): each is a request moto answers in this
        process, taking the interpreter's share of it while a long execution runs."""
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.client.describe_execution(executionArn=execution_arn)
            if described["status"] in DONE:
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout:.0f} s")
            time.sleep(poll)
            poll = min(longest_poll, poll * 2)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's own events (not its Map's children's), every page."""
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.client.get_execution_history(
                executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events


@dataclass
class Figures:
    """What the interpreter did, counted as it did it (``install``)."""

    transitions: int = 0  # *StateEntered events, the Map's children's included
    largest_payload: int = 0  # bytes: the largest state value checked against the 256 KiB quota
    entered: dict[str, int] = field(default_factory=dict)  # state name -> times entered
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, patch: Patcher) -> None:
        original_add = EventManager.add_event
        figures = self

        def add_event(manager: EventManager, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
            if str(event_type).endswith("StateEntered"):
                name = ""
                details = kwargs.get("event_details") or (args[0] if args else None) or {}
                entered = details.get("stateEnteredEventDetails") if isinstance(details, Mapping) else None
                if entered:
                    name = str(entered.get("name", ""))
                with figures._lock:
                    figures.transitions += 1
                    figures.entered[name] = figures.entered.get(name, 0) + 1
            return original_add(manager, context, event_type, *args, **kwargs)

        def within_quota(value: Any) -> bool:
            size = len(
                value.encode()
                if isinstance(value, str)
                else json.dumps(value, separators=(",", ":")).encode()
            )
            with figures._lock:
                figures.largest_payload = max(figures.largest_payload, size)
            return is_within_size_quota(value)

        patch.setattr(EventManager, "add_event", add_event)
        for module in (state_module, state_task_lambda, state_task_service):
            patch.setattr(module, "is_within_size_quota", within_quota)
