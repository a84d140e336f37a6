"""A simulated account for the runner: EC2 and SNS from moto, Run Command from ``FakeRunCommand``.

The runner is invoked through ``handler.handler`` with its real client factory
configuration and the environment the synthesized template gives the function
(deploy-time references replaced by this world's names); only the session
underneath gets the Run Command emulator, and only time (the runner's clock and
botocore's retry sleeps) is simulated.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecr_fleet_auth import clients, runner
from ecr_fleet_auth.observability import metrics
from handler import handler
from tests.runner.fake_ssm import Behaviour, FakeClock, FakeRunCommand, Node, simulate_botocore_time
from tests.support.template import Template, resolved_runner_environment

EVENTS = Path(__file__).parent.parent / "events"
REGION = "eu-west-1"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DOCUMENT = "EcrFleetAuth-Agent"
TAG_KEY, TAG_VALUE = "ecr-fleet-auth", "enabled"
LAMBDA_TIMEOUT_SECONDS = 900
OUTPUT_LOG_GROUP = "/ecr-fleet-auth/run-command"
# What CloudFormation fills in at deploy time, as this world names it (TOPIC_ARN: World sets it).
DEPLOY_TIME = {
    "DOCUMENT_NAME": DOCUMENT,
    "REGISTRIES": REGISTRY,
    "OUTPUT_LOG_GROUP": OUTPUT_LOG_GROUP,
    "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:replaced-by-the-world",
}


def load_event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class LambdaContextStub:
    clock: FakeClock
    deadline: float
    function_name: str = "ecr-fleet-auth-runner"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:ecr-fleet-auth-runner"
    aws_request_id: str = "00000000-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self.clock.monotonic()) * 1000)


@dataclass
class World:
    clock: FakeClock
    ssm: FakeRunCommand
    monkeypatch: pytest.MonkeyPatch
    retry_sleeps: list[float] = field(default_factory=list)
    # Calls the runner's clients made, by "service.Operation" (retries not counted).
    api_calls: Counter[str] = field(default_factory=Counter)
    # One of moto's built-in images (looking one up costs a second per test).
    image_id: str = "ami-03cf127a"
    queue_url: str = ""

    def __post_init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="ecr-fleet-auth")["TopicArn"]
        self.queue_url = sqs.create_queue(QueueName="mail")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        self.sqs = sqs
        self.configure(TOPIC_ARN=topic)

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
        ping_status: str = "Online",
        platform_type: str = "Linux",
        behaviour: Behaviour | None = None,
    ) -> list[str]:
        tags = [{"Key": "Name", "Value": name}]
        if tagged:
            tags.append({"Key": TAG_KEY, "Value": TAG_VALUE})
        reservation = self.ec2.run_instances(
            ImageId=self.image_id,
            MinCount=count,
            MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        ids = [instance["InstanceId"] for instance in reservation["Instances"]]
        if not running:
            self.ec2.stop_instances(InstanceIds=ids)
        if not running:
            ping_status = "ConnectionLost"  # what SSM says of a stopped instance
        if managed:
            for instance_id in ids:
                self.ssm.add(
                    Node(
                        instance_id,
                        name=name,
                        tags={tag["Key"]: tag["Value"] for tag in tags},
                        ping_status=ping_status,
                        platform_type=platform_type,
                        behaviour=behaviour or Behaviour(),
                    )
                )
        return ids

    def terminate(self, instance_id: str, state: str = "terminated") -> None:
        """EC2 terminates it; SendCommand refuses it from now on, SSM's ping status lags."""
        if state == "terminated":
            self.ec2.terminate_instances(InstanceIds=[instance_id])
        self.ssm.nodes[instance_id].state = state

    def before_first(
        self,
        operation: str,
        happening: Callable[[], None],
        when: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> None:
        """Let ``happening`` take place just before the first ``operation`` request (``when`` it holds)."""
        pending = [happening]

        def before(name: str, params: dict[str, Any]) -> None:
            if name == operation and when(params) and pending:
                pending.pop()()

        self.ssm.before = before

    def invoke(self, event: Any, timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS) -> dict[str, Any]:
        context = LambdaContextStub(self.clock, self.clock.monotonic() + timeout_seconds)
        result: dict[str, Any] = handler(event, context)
        return result

    def notifications(self) -> list[dict[str, str]]:
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]


@pytest.fixture(scope="session")
def template_environment(synthesized_template: Template) -> dict[str, str]:
    """The runner's environment exactly as the default stack sets it."""
    return resolved_runner_environment(synthesized_template, DEPLOY_TIME)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, template_environment: dict[str, str]) -> Iterator[World]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "POWERTOOLS_")):
            monkeypatch.delenv(name)
    environment = {
        **template_environment,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        # Loopback only, and never dialled: the emulator answers before anything is sent.
        "AWS_ENDPOINT_URL_SSM": "http://127.0.0.1:9",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # moto loads hundreds of AMIs per region otherwise: a second per test.
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    clock = FakeClock()
    fake = FakeRunCommand(clock, DOCUMENT)
    session = boto3.Session(region_name=REGION)
    session.events.register("before-send.ssm", fake)
    api_calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        api_calls[f"{model.service_model.service_name}.{model.name}"] += 1

    session.events.register("before-call", count)
    factory = clients.ClientFactory(session=session)
    monkeypatch.setattr(clients, "default_factory", lambda: factory)
    monkeypatch.setattr(
        runner, "SYSTEM_CLOCK", runner.Clock(monotonic=clock.monotonic, sleep=clock.sleep, now=clock.wall)
    )
    with mock_aws():
        built = World(clock, fake, monkeypatch, api_calls=api_calls)
        simulate_botocore_time(monkeypatch, clock, built.retry_sleeps)
        yield built
    metrics.clear_metrics()
