"""One simulated account: its EC2 instances and SSM Run Command, wired together and served to boto3.

The runner's tests and the benchmarks run the real runner against it in this
process (``in_process_runner``), on a ``SimulatedClock``; the local fleet serves
the same pieces over HTTP on a ``RealClock`` (``local_fleet``). Either way an
instance is launched once — EC2 knows its tags and state, SSM knows it as a
managed node with its own (lagging) view — and what happens on it is chosen as an
executor: a ``CannedAgent`` here, a sandboxed host in the local fleet.

EC2 also tells EventBridge (``event_bus``: whoever listens, e.g. the stack's
``NewInstanceDelivery``): an instance launched running sends its ``running`` state-change
event, a tag given to a running instance its ``Tag Change on Resource`` event. The
account's SQS (``sqs``) holds the stack's queues; the runner reaches it like EC2 and SSM, and
DynamoDB (the stack's claim table, ``create_tables``) too: moto's, in this process.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from ..clocks import Clock
from ..ec2 import Ec2Inventory, Ec2Wire
from ..eventbridge.models import state_change_event, tag_change_event
from ..hosts.canned_agent import CannedAgent, CannedRun, runs_overlap
from ..identity import ACCOUNT, REGION
from ..sqs import SqsService, SqsWire
from ..ssm import RunCommandService, SsmWire
from ..ssm.models.agent_interface import Executor
from ..ssm.models.engine import Command
from ..ssm.models.managed_nodes import ManagedInstance
from ..synthesized_stack import Template, table_definitions
from ..transport import InProcessTransport, LoopbackServer, ServiceEndpoint
from ..transport.moto_in_process import MotoJsonWire


class SimulatedAccount:
    """EC2 and Run Command of one account in one region (``account_id``, ``region``); a
    ``SimulatedOrganization`` holds several, one per (account, region) pair.

    ``tags_from_ec2``: SendCommand tag targets resolve against EC2's tags (the local fleet);
    otherwise against SSM's own view of each node's tags, which a test may make lag EC2's."""

    def __init__(
        self,
        clock: Clock,
        *,
        tags_from_ec2: bool = False,
        account_id: str = ACCOUNT,
        region: str = REGION,
        first_instance_number: int = 0,
    ) -> None:
        """``first_instance_number``: where its instance ids start (ids are unique across pairs)."""
        self.clock = clock
        self.account_id = account_id
        self.region = region
        self.ec2 = Ec2Inventory(first_instance_number)
        self.ssm = RunCommandService(clock, self.ec2.tagged if tags_from_ec2 else None)
        self.ssm_endpoint = ServiceEndpoint(SsmWire(self.ssm.handler))
        self.ec2_endpoint = ServiceEndpoint(Ec2Wire(self.ec2))
        self.sqs = SqsService(clock, account_id, region)
        self.sqs_endpoint = ServiceEndpoint(SqsWire(self.sqs))
        self.dynamodb_endpoint = ServiceEndpoint(MotoJsonWire("dynamodb", region))
        # EventBridge's default bus: each listener gets every event EC2 sends about an instance.
        self.event_bus: list[Callable[[dict[str, Any]], None]] = []
        self.agents: dict[str, CannedAgent] = {}
        # Calls made by clients of sessions from ``session()``, as "service.Operation" (retries not counted).
        self.api_calls: Counter[str] = Counter()
        self._servers: list[LoopbackServer] = []

    # --- reaching it ---------------------------------------------------------------------
    def endpoint(self, service: str) -> ServiceEndpoint:
        return {
            "ssm": self.ssm_endpoint,
            "ec2": self.ec2_endpoint,
            "sqs": self.sqs_endpoint,
            "dynamodb": self.dynamodb_endpoint,
        }[service]

    def create_tables(self, template: Template, name: str) -> None:
        """The template's DynamoDB table (the claim table, if any) as ``name``, empty (made anew)."""
        # Not through ``session()``: setting up the world is not among the calls the runner made.
        session = InProcessTransport(self.dynamodb_endpoint).attach(boto3.Session(region_name=self.region))
        dynamodb = session.client("dynamodb")
        for definition in table_definitions(template):
            with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
                dynamodb.delete_table(TableName=name)
            dynamodb.create_table(TableName=name, **definition)

    def session(self, region: str = REGION, services: tuple[str, ...] = ("ec2", "ssm")) -> boto3.Session:
        """A boto3 session whose clients for ``services`` are answered in this process."""
        session = boto3.Session(region_name=region)
        InProcessTransport(*(self.endpoint(service) for service in services)).attach(session)
        session.events.register("before-call", self._count)
        return session

    def serve(self, service: str) -> str:
        """Serve ``service`` over loopback HTTP too; its endpoint URL."""
        server = LoopbackServer(self.endpoint(service)).start()
        self._servers.append(server)
        return server.url

    def close(self, *, clock: bool = True) -> None:
        """Stop its engine and servers; ``clock``: its clock too (False: the clock is shared)."""
        self.ssm.engine.stop()
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if clock:
            self.clock.close()

    def _count(self, model: Any, **_: Any) -> None:
        self.api_calls[f"{model.service_model.service_name}.{model.name}"] += 1

    # --- the fleet -------------------------------------------------------------------------
    def register_document(self, name: str, content: Mapping[str, Any]) -> None:
        self.ssm.register_document(name, content)

    def launch(
        self,
        count: int = 1,
        *,
        tags: Mapping[str, str] | None = None,
        running: bool = True,
        managed: bool = True,
        agent: CannedRun | None = None,
        executor: Executor | None = None,
        **node: Any,
    ) -> list[str]:
        """``count`` instances in one reservation; managed ones get an SSM node (``node``: its options).

        A stopped instance's node has lost its connection, as SSM reports it. Each
        managed node runs ``executor`` or, by default, a ``CannedAgent`` playing ``agent``.
        """
        ids = self.ec2.launch(count, tags, "running" if running else "stopped")
        if not running:
            node["ping_status"] = "ConnectionLost"
        if managed:
            for instance_id in ids:
                self.add_node(instance_id, tags=tags, agent=agent, executor=executor, **node)
        if running:
            self.entered_running(*ids)
        return ids

    def entered_running(self, *instance_ids: str) -> None:
        """EC2 sends each instance's ``running`` state-change event (a launch, or a start)."""
        for instance_id in instance_ids:
            self._emit(
                state_change_event(
                    instance_id, "running", account=self.account_id, region=self.region, at=self.clock.now()
                )
            )

    def tag(self, instance_id: str, tags: Mapping[str, str]) -> None:
        """CreateTags on the instance: EC2 and SSM see them; the tag-change event goes to the bus."""
        after = self.ec2.tag(instance_id, tags)
        node = self.ssm.instance(instance_id)
        if node is not None:
            node.tags.update(tags)
        self._emit(
            tag_change_event(
                instance_id,
                list(tags),
                after,
                account=self.account_id,
                region=self.region,
                at=self.clock.now(),
            )
        )

    def _emit(self, event: dict[str, Any]) -> None:
        for listener in list(self.event_bus):
            listener(event)

    def add_node(
        self,
        instance_id: str,
        *,
        tags: Mapping[str, str] | None = None,
        agent: CannedRun | None = None,
        executor: Executor | None = None,
        **node: Any,
    ) -> ManagedInstance:
        if executor is None:
            canned = CannedAgent(agent or CannedRun(), self.clock)
            self.agents[instance_id] = canned
            executor = canned
        name = (tags or {}).get("Name", "")
        return self.ssm.register_instance(
            instance_id, executor, tags=tags, computer_name=node.pop("computer_name", name), **node
        )

    def register_agent(
        self,
        instance_id: str,
        *,
        agent: CannedRun | None = None,
        executor: Executor | None = None,
        **node: Any,
    ) -> ManagedInstance:
        """The SSM agent of an instance launched unmanaged registers now: SSM lists it (Online).

        A new instance runs before its agent has registered; until this call SSM does
        not know it (DescribeInstanceInformation leaves it out, SendCommand refuses it).
        The node takes the tags EC2 has for the instance at this moment; ``node``: its
        options, as for ``launch``.
        """
        if self.ssm.instance(instance_id) is not None:
            raise ValueError(f"{instance_id} is already a managed node")
        tags = self.ec2.instances[instance_id].tags
        return self.add_node(instance_id, tags=tags, agent=agent, executor=executor, **node)

    def terminate(self, instance_id: str, state: str = "terminated") -> None:
        """EC2 terminates it (``terminated``) or has it shutting down; SSM refuses it from now on."""
        if state == "terminated":
            self.ec2.set_state(instance_id, state)
        node = self.ssm.instance(instance_id)
        if node is not None:
            node.state = state  # SSM's ping status lags: it stays as it was

    def node(self, instance_id: str) -> ManagedInstance:
        found = self.ssm.instance(instance_id)
        if found is None:
            raise KeyError(instance_id)
        return found

    # --- what happened ---------------------------------------------------------------------
    @property
    def commands(self) -> dict[str, Command]:
        return self.ssm.engine.commands

    def agent_runs_overlap(self) -> bool:
        """Whether the agent ever worked on one instance for two commands at once."""
        return runs_overlap(list(self.agents.values()))
