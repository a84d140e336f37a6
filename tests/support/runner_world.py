"""A simulated account for the runner: EC2, Run Command and SQS from ``localfleet``, SNS from moto.

The runner is invoked through ``handler.handler`` with its real client factory
configuration and the environment the synthesized template gives the function
(deploy-time references replaced by this world's names:
``localfleet.runner_environment``); the account
(``localfleet.composition.simulated_account``) answers its EC2 and SSM clients in
this process, through the same engine, wire and model validation as the HTTP
simulator, on a simulated clock. Tests choose what happens on each instance (an
``CannedRun``: result line, exit status, duration; ping status; termination; ...);
Run Command's statuses follow from the engine alone. The runner's SQS calls (events put back
to the new-instance queue) go to the account's queues; its DynamoDB calls (claims) to moto's
DynamoDB in this process, where the stack's claim table is created; the notifications' inbox
is moto's (``Mailbox``). The fixtures that build it are in tests/runner/conftest.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS
from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.harnesses.in_process_state_machine import RUNS_BUCKET
from localfleet.hosts.canned_agent import CannedRun
from localfleet.identity import ACCOUNT, REGION
from localfleet.runner_environment import TOPIC_NAME, deploy_time, local_runner_environment, use_environment
from localfleet.ssm.models.engine import Command, CommandEngine
from localfleet.ssm.models.managed_nodes import ManagedInstance
from localfleet.synthesized_stack import Template
from localfleet.transport import ServiceEndpoint

TAG_KEY, TAG_VALUE = "ecr-fleet-auth", "enabled"
# What CloudFormation fills in at deploy time, as this world names it (the simulator's account and
# region; TOPIC_ARN: the topic the World's Mailbox creates, TOPIC_NAME).
DEPLOY_TIME = deploy_time(ACCOUNT, REGION, RUNS_BUCKET)
REGISTRY = DEPLOY_TIME["REGISTRIES"]
DOCUMENT = DEPLOY_TIME["DOCUMENT_NAME"]
OUTPUT_LOG_GROUP = DEPLOY_TIME["OUTPUT_LOG_GROUP"]
CLAIM_TABLE = DEPLOY_TIME["CLAIM_TABLE_NAME"]


@dataclass(frozen=True)
class Mailbox:
    """The run's notifications as a subscriber gets them: moto's SNS topic, an SQS queue subscribed to it."""

    topic_arn: str
    sqs: Any
    queue_url: str

    @classmethod
    def subscribed(cls, region: str = REGION) -> Mailbox:
        sns, sqs = boto3.client("sns", region_name=region), boto3.client("sqs", region_name=region)
        topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        queue_url = sqs.create_queue(QueueName="mail")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        return cls(topic, sqs, queue_url)

    def notifications(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]


def use_runner_environment(
    monkeypatch: pytest.MonkeyPatch, template: Template, *, services: Sequence[str]
) -> None:
    """The runner's environment as ``template`` gives it (deploy-time values: ``DEPLOY_TIME``), this
    world's region; each of ``services`` points at loopback and is never dialled."""
    use_environment(
        monkeypatch, local_runner_environment(template, DEPLOY_TIME, region=REGION, services=services)
    )


@dataclass
class World:
    account: SimulatedAccount
    runner: InProcessRunner
    monkeypatch: pytest.MonkeyPatch
    mail: Mailbox = field(init=False)
    # (operation, happening, when) not yet happened; see before_first.
    happenings: list[tuple[str, Callable[[], None], Callable[[dict[str, Any]], bool]]] = field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        self.ssm.before = self._before
        self.mail = Mailbox.subscribed()
        self.configure(TOPIC_ARN=self.mail.topic_arn)

    # --- the account, as tests look at it ----------------------------------------------------
    @property
    def clock(self) -> SimulatedClock:
        assert isinstance(self.account.clock, SimulatedClock)
        return self.account.clock

    @property
    def ssm(self) -> ServiceEndpoint:
        """SSM's endpoint: requests received (``sent``, ``calls``) and faults to inject."""
        return self.account.ssm_endpoint

    @property
    def ec2(self) -> ServiceEndpoint:
        return self.account.ec2_endpoint

    @property
    def engine(self) -> CommandEngine:
        return self.account.ssm.engine

    @property
    def commands(self) -> dict[str, Command]:
        return self.account.commands

    @property
    def api_calls(self) -> Counter[str]:
        """Calls the runner's clients made, by "service.Operation" (retries not counted)."""
        return self.account.api_calls

    @property
    def retry_sleeps(self) -> list[float]:
        return self.runner.retry_sleeps

    def node(self, instance_id: str) -> ManagedInstance:
        return self.account.node(instance_id)

    # --- the world moving ------------------------------------------------------------------------
    def configure(self, **environment: str) -> None:
        for name, value in environment.items():
            self.monkeypatch.setenv(name, value)

    def launch(
        self,
        count: int = 1,
        *,
        name: str = "web",
        tagged: bool = True,
        running: bool = True,
        managed: bool = True,
        agent: CannedRun | None = None,
        **node: Any,
    ) -> list[str]:
        """Instances with a Name tag (and the target tag); ``node``: SSM's view (ping_status, ...)."""
        tags = {"Name": name, **({TAG_KEY: TAG_VALUE} if tagged else {})}
        return self.account.launch(count, tags=tags, running=running, managed=managed, agent=agent, **node)

    def come_online(
        self, instance_id: str, *, agent: CannedRun | None = None, **node: Any
    ) -> ManagedInstance:
        """Its SSM agent registers now (launched with ``managed=False``): SSM lists it, Online."""
        return self.account.register_agent(instance_id, agent=agent, **node)

    def terminate(self, instance_id: str, state: str = "terminated") -> None:
        """EC2 terminates it; SendCommand refuses it from now on, SSM's ping status lags."""
        self.account.terminate(instance_id, state)

    def before_first(
        self,
        operation: str,
        happening: Callable[[], None],
        when: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> None:
        """Let ``happening`` take place just before the first SSM ``operation`` request ``when`` it holds."""
        self.happenings.append((operation, happening, when))

    def _before(self, operation: str, params: dict[str, Any]) -> None:
        for due in [h for h in self.happenings if h[0] == operation and h[2](params)]:
            self.happenings.remove(due)
            due[1]()

    def cancel(self, instance_id: str) -> None:
        """Someone cancels the command that reached ``instance_id`` (CancelCommand for that instance)."""
        (command,) = [c for c in self.commands.values() if instance_id in c.invocations]
        self.engine.cancel(command, [instance_id])

    def invoke(
        self, event: Any, timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS, *, lineage: str | None = None
    ) -> dict[str, Any]:
        """The handler, invoked directly or (``lineage``) by the event source mapping."""
        return self.runner.invoke(event, timeout_seconds, lineage=lineage)

    def notifications(self) -> list[dict[str, str]]:
        return self.mail.notifications()
