"""The new-instance delivery as the synthesized stack builds it: rules -> queue -> event source mapping.

``NewInstanceDelivery.from_template`` reads everything from the template, never from
constants: the rules' event patterns and their target (``AWS::Events::Rule``), the queue's
visibility timeout and redrive policy and its dead letters (``AWS::SQS::Queue``), the
mapping's batch size, batching window, maximum concurrency and response types
(``AWS::Lambda::EventSourceMapping``), and whether the function it invokes lets Lambda stop a recursive
loop (its ``RecursiveLoop``, ``Terminate`` when absent: ``recursion``). Then:

* ``put``: an AWS service sends an event to the default bus; each enabled rule whose
  pattern matches sends the whole event (no input transformer on the target) as the body
  of a message to its queue. CHOICE: at once — EventBridge delivers in well under a second,
  and best-effort events that never come are the scheduled run's business.
* ``put_from``: another account's rule forwards an event to one of the stack's event buses (an
  organization's member stacks: ``forwarding``), as the principal its target's role makes it. The
  bus's resource policy (its ``Policy``, or an ``AWS::Events::EventBusPolicy``, read from the
  template) decides, as EventBridge's "Permissions for event buses" say: only what it allows
  gets on the bus (HARSHER: a condition the simulator does not model allows nothing:
  ``iam.allows``); a refused event is kept in ``refused``. What gets on goes through that bus's
  rules, kept as it was sent: its ``account``, ``region`` and resources are the source's
  (EventBridge User Guide, "Sending and receiving events between AWS accounts").
* the queue (``sqs.SqsService``) holds it, with the runner's own put-backs (SendMessageBatch
  with ``DelaySeconds``, which the runner sends to this same service: in-process for the
  runner's tests and benchmarks, over HTTP for the local fleet);
* the event source mapping (``event_source_mapping``) hands the function batches.

It works on any ``Clock``: ``SimulatedClock`` for the runner's tests and the benchmark
(``run_until_idle`` moves time), ``RealClock`` for the local fleet (``wait_until_idle``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..clocks import Clock, SimulatedClock
from ..eventbridge.models import matches
from ..iam.models import Principal, allows
from ..lambda_runtime.models import recursion
from ..lambda_runtime.models.event_source_mapping import EsmSettings, EventSourceMapping, Invocation, Invoke
from ..sqs.models import Queue, SqsService
from ..synthesized_stack import Template, resolve, resources

DEFAULT_BUS = "default"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Mapping[str, Any]
    queue: str  # the target queue's name
    bus: str = DEFAULT_BUS  # the event bus it is on: the default one, or the logical id of the stack's


def _referenced(value: Any) -> str:
    """The logical id a ``Fn::GetAtt`` / ``Ref`` names."""
    if isinstance(value, Mapping) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, Mapping) and "Ref" in value:
        return str(value["Ref"])
    raise ValueError(f"expected a reference to a resource, got {value!r}")


class NewInstanceDelivery:
    def __init__(
        self,
        clock: Clock,
        sqs: SqsService,
        rules: list[Rule],
        queue: Queue,
        *,
        invoke: Invoke,
        esm: EsmSettings,
        bus_policies: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """``bus_policies``: each of the stack's event buses (logical id) and its resource policy."""
        self.clock = clock
        self.sqs = sqs
        self.rules = rules
        self.queue = queue
        self.bus_policies = dict(bus_policies or {})
        self.mapping = EventSourceMapping(clock, sqs, queue, invoke, esm)
        self.events: list[dict[str, Any]] = []  # every event put on the bus
        self.refused: list[tuple[dict[str, Any], Principal]] = []  # events a bus's policy turned away
        self._from_rules: set[str] = set()  # ids of the messages the function did not send

    @classmethod
    def from_template(
        cls,
        template: Template,
        clock: Clock,
        sqs: SqsService,
        invoke: Invoke,
        stack_name: str = "EcrFleetAuth",
    ) -> NewInstanceDelivery:
        """The stack's queues, rules and mapping (raises if the stack deploys none: ``newInstances`` off)."""
        queues: dict[str, Queue] = {}
        declared = resources(template, "AWS::SQS::Queue")

        def queue(logical_id: str) -> Queue:
            if logical_id not in queues:
                properties = declared[logical_id].get("Properties", {})
                redrive = properties.get("RedrivePolicy")
                dead = queue(_referenced(redrive["deadLetterTargetArn"])) if redrive else None
                queues[logical_id] = sqs.create_queue(
                    f"{stack_name}-{logical_id}",
                    visibility_timeout=int(properties.get("VisibilityTimeout", 30)),
                    dead_letters=dead,
                    max_receive_count=int(redrive["maxReceiveCount"]) if redrive else 0,
                )
            return queues[logical_id]

        (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
        properties = mapping["Properties"]
        source = queue(_referenced(properties["EventSourceArn"]))
        function_id = _referenced(properties["FunctionName"])
        function = resources(template, "AWS::Lambda::Function")[function_id]["Properties"]
        esm = EsmSettings(
            batch_size=int(properties.get("BatchSize", 10)),
            batching_window_seconds=int(properties.get("MaximumBatchingWindowInSeconds", 0)),
            maximum_concurrency=int(properties.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
            recursive_loop=function.get("RecursiveLoop", recursion.TERMINATE),
            function=recursion.function_hash(f"{stack_name}/{function_id}"),
        )
        rules = [
            Rule(
                logical_id,
                rule["Properties"]["EventPattern"],
                queue(_referenced(target["Arn"])).name,
                _referenced(rule["Properties"]["EventBusName"])
                if "EventBusName" in rule["Properties"]
                else DEFAULT_BUS,
            )
            for logical_id, rule in resources(template, "AWS::Events::Rule").items()
            if rule["Properties"].get("State", "ENABLED") == "ENABLED"
            and "EventPattern" in rule["Properties"]
            for target in rule["Properties"].get("Targets", [])
            if _referenced(target["Arn"]) in declared
        ]
        # Each bus's policy, its references resolved as CloudFormation would in this account and region:
        # the bus's own Policy property, and any AWS::Events::EventBusPolicy naming it (statements add up).
        buses = resources(template, "AWS::Events::EventBus")
        references = {"AWS::Partition": "aws", "AWS::AccountId": sqs.account, "AWS::Region": sqs.region}
        references |= {
            f"{bus}.Arn": f"arn:aws:events:{sqs.region}:{sqs.account}:event-bus/"
            + bus_resource["Properties"].get("Name", f"{stack_name}-{bus}")
            for bus, bus_resource in buses.items()
        }
        policies: dict[str, dict[str, Any]] = {bus: {"Statement": []} for bus in buses}
        for bus, bus_resource in buses.items():
            held = bus_resource["Properties"].get("Policy", {"Statement": []})
            held = json.loads(held) if isinstance(held, str) else held  # JSON text or an object
            statements = resolve(held, references)["Statement"]
            policies[bus]["Statement"] += statements if isinstance(statements, list) else [statements]
        for policy in resources(template, "AWS::Events::EventBusPolicy").values():
            properties = policy["Properties"]
            policies[_referenced(properties["EventBusName"])]["Statement"].append(
                resolve(properties["Statement"], references)
            )
        return cls(clock, sqs, rules, source, invoke=invoke, esm=esm, bus_policies=policies)

    @property
    def settings(self) -> EsmSettings:
        return self.mapping.settings

    @property
    def invocations(self) -> list[Invocation]:
        return self.mapping.invocations

    # --- EventBridge ---------------------------------------------------------------------
    def put(self, *events: Mapping[str, Any]) -> None:
        """AWS puts ``events`` on the default bus; matching rules send each to their queue."""
        for event in events:
            self._on_bus(DEFAULT_BUS, event)

    @property
    def member_bus(self) -> str | None:
        """The stack's own event bus (organization mode: where member stacks forward), if any."""
        return next(iter(self.bus_policies), None)

    def put_from(self, event: Mapping[str, Any], *, bus: str, sender: Principal) -> bool:
        """Another account's rule puts ``event`` on ``bus`` as ``sender``; whether the bus's policy let it."""
        if not allows(self.bus_policies.get(bus, {}), "events:PutEvents", sender):
            self.refused.append((dict(event), sender))
            return False
        self._on_bus(bus, event)
        return True

    def _on_bus(self, bus: str, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))
        for rule in self.rules:
            if rule.bus == bus and matches(rule.pattern, event):
                message = self.sqs.send(self.sqs.queues[rule.queue], json.dumps(event))
                self._from_rules.add(message.message_id)

    def put_raw(self, body: str) -> None:
        """A message that is not an event (someone else sent to the queue)."""
        self._from_rules.add(self.sqs.send(self.queue, body).message_id)

    # --- where things stand ----------------------------------------------------------------
    def pending(self) -> int:
        """Messages in the queue (visible, delayed or in flight)."""
        return len(self.queue.messages)

    def dead_letters(self) -> int:
        return len(self.queue.dead_letters.messages) if self.queue.dead_letters else 0

    def matched(self) -> int:
        """Messages the rules sent to the queue."""
        return len(self._from_rules)

    def put_back_delays(self) -> list[int]:
        """DelaySeconds of every message the function sent to the queue itself (its put-backs)."""
        return [delay for message_id, delay in self.queue.sent if message_id not in self._from_rules]

    def idle(self) -> bool:
        return not self.queue.messages and not self.mapping.busy

    def answers(self) -> list[Any]:
        return [i.answer for i in self.invocations if i.ended is not None]

    # --- moving on -------------------------------------------------------------------------
    def run_until_idle(self, most_seconds: float = 6 * 3600, step: float = 1.0) -> None:
        """SimulatedClock: move time on until the queue is empty and no batch runs."""
        clock = self._simulated()
        deadline = clock.monotonic() + most_seconds
        while not self.idle():
            if clock.monotonic() >= deadline:
                raise AssertionError(f"still {self.pending()} messages after {most_seconds} s")
            clock.sleep(step)

    def next_invocation(self, most_seconds: float = 3600, step: float = 1.0) -> Invocation:
        """SimulatedClock: move time on until one more invocation has ended; that invocation."""
        clock = self._simulated()
        ended = sum(1 for i in self.invocations if i.ended is not None)
        deadline = clock.monotonic() + most_seconds
        while sum(1 for i in self.invocations if i.ended is not None) == ended:
            if clock.monotonic() >= deadline:
                raise AssertionError(f"no invocation ended within {most_seconds} s")
            clock.sleep(step)
        return [i for i in self.invocations if i.ended is not None][ended]

    def wait_until(self, condition: Any, timeout: float, poll: float = 0.2) -> bool:
        """RealClock: wait (really) until ``condition()`` holds; whether it did."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def _simulated(self) -> SimulatedClock:
        if not isinstance(self.clock, SimulatedClock):
            raise TypeError("only a SimulatedClock can be moved on; on a RealClock use wait_until")
        return self.clock
