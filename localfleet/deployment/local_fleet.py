"""A whole local deployment: the simulated account (EC2 and SSM Run Command over HTTP on a real
clock), moto for the rest of AWS, the stack's document, instances in sandboxes, and the real
runner started as Lambda starts it, configured as the stack configures it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ..clocks import RealClock
from ..hosts.sandbox_instance import SandboxInstance, User
from ..lambda_runtime import FunctionError, LambdaEnvironment, XRayDaemon, lambda_environment
from ..synthesized_stack import LAMBDA_SOURCE, Template, document_content, runner_environment
from .local_services import ACCOUNT, LOCAL_CREDENTIALS, REGION, REGISTRY, LocalServices
from .simulated_account import SimulatedAccount

DOCUMENT_NAME = "EcrFleetAuth-AgentDocument-local"
OUTPUT_LOG_GROUP = "/ecr-fleet-auth/local/run-command-output"


@dataclass
class FleetInstance:
    name: str
    instance_id: str
    tagged: bool
    ping_status: str
    sandbox: SandboxInstance


class LocalFleet:
    """Use as a context manager: everything it starts stops on exit, also on errors."""

    def __init__(self, template: Template, workdir: Path | None = None, asset: Path | None = None) -> None:
        """`asset`: the runner's code as synthesis staged it (default: its source directory)."""
        self.template = template
        self.asset = asset or LAMBDA_SOURCE
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-local-"))
        self.services = LocalServices(self.workdir)
        # SendCommand tag targets resolve against EC2, the fleet's one source of tags.
        self.account = SimulatedAccount(RealClock(), tags_from_ec2=True)
        self.endpoints: dict[str, str] = {}  # service -> its loopback URL
        self.xray = XRayDaemon()
        self.instances: list[FleetInstance] = []
        self.topic_arn = ""
        self._queue_url = ""
        self.last_stdout = ""  # what the last invocation printed to stdout (metrics, as EMF)
        self.last_trace_id: str | None = None  # its X-Ray trace, in self.xray
        self.runner: LambdaEnvironment  # set on entry, once the topic it publishes to exists

    # --- lifecycle
    def __enter__(self) -> LocalFleet:
        try:
            self.services.start()
            self.endpoints = {service: self.account.serve(service) for service in ("ec2", "ssm")}
            self.xray.start()
            self.account.register_document(DOCUMENT_NAME, document_content(self.template))
            self._subscribe_to_notifications()
            self.runner = self._lambda_environment()  # built once; every invocation starts from it
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for instance in self.instances:
            with contextlib.suppress(Exception):
                instance.sandbox.close()
        with contextlib.suppress(Exception):
            self.account.close()
        with contextlib.suppress(Exception):
            self.xray.stop()
        self.services.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- AWS clients against the simulated services
    def client(self, service: str) -> Any:
        endpoint = self.endpoints.get(service, self.services.moto_url)
        session = boto3.session.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        return session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]

    def _subscribe_to_notifications(self) -> None:
        sns, sqs = self.client("sns"), self.client("sqs")
        self.topic_arn = sns.create_topic(Name="ecr-fleet-auth-local")["TopicArn"]
        self._queue_url = sqs.create_queue(QueueName="ecr-fleet-auth-local-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def notifications(self) -> list[dict[str, str]]:
        """SNS messages the runner published since the last call ({"subject", "message"})."""
        sqs = self.client("sqs")
        received: list[dict[str, str]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                body = json.loads(message["Body"])
                received.append({"subject": body.get("Subject", ""), "message": body["Message"]})
                sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- the fleet
    def add_instance(
        self, name: str, users: Sequence[User], *, tagged: bool = True, ping_status: str = "Online"
    ) -> FleetInstance:
        tags = {"Name": name}
        if tagged:  # with the tag the stack's configuration selects
            settings = runner_environment(self.template)
            tags[settings["TARGET_TAG_KEY"]] = settings["TARGET_TAG_VALUES"].split(",")[0]
        (instance_id,) = self.account.ec2.launch(1, tags)
        sandbox = SandboxInstance(
            instance_id, self.workdir / instance_id, self.services.surroundings(), list(users)
        )
        self.account.add_node(instance_id, tags=tags, executor=sandbox, ping_status=ping_status)
        instance = FleetInstance(name, instance_id, tagged, ping_status, sandbox)
        self.instances.append(instance)
        return instance

    # --- the runner
    def _lambda_environment(self) -> LambdaEnvironment:
        """The runner as Lambda starts it: its asset, the layer, the runtime, the stack's environment."""
        deploy_time = {
            "DOCUMENT_NAME": DOCUMENT_NAME,
            "REGISTRIES": REGISTRY,
            "OUTPUT_LOG_GROUP": OUTPUT_LOG_GROUP,
            "TOPIC_ARN": self.topic_arn,
        }
        return lambda_environment(self.template, self.asset, self.workdir / "lambda", deploy_time=deploy_time)

    def local_services_env(self) -> dict[str, str]:
        """What points the runner at the simulated AWS instead of the real one."""
        return {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.services.moto_url,
            "AWS_ENDPOINT_URL_EC2": self.endpoints["ec2"],
            "AWS_ENDPOINT_URL_SSM": self.endpoints["ssm"],
            "AWS_XRAY_DAEMON_ADDRESS": self.xray.address,
        }

    def invoke(self, event: dict[str, Any], *, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
        """Invoke the runner once, in a fresh Lambda-shaped process; its report, or FunctionError."""
        invocation = self.runner.invoke(
            event,
            function_arn=self.runner.function_arn(ACCOUNT),
            extra={**self.local_services_env(), **(extra_env or {})},
        )
        # Lambda sends stdout to CloudWatch Logs, where the EMF lines become metrics.
        self.last_stdout = invocation.stdout
        self.last_trace_id = invocation.trace_id
        if invocation.error_type is not None:
            raise FunctionError(invocation)
        report: dict[str, Any] = invocation.payload
        return report
