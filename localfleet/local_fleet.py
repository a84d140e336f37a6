"""A whole local deployment: the simulated AWS, the stack's document in the SSM emulator,
instances in sandboxes, and the real runner handler configured as the stack configures it.
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

from .instances import SandboxInstance, User
from .lambda_runtime import FunctionError, LambdaEnvironment, lambda_environment
from .services import ACCOUNT, LOCAL_CREDENTIALS, REGION, REGISTRY, LocalServices
from .ssm_emulator import SsmEmulator
from .stack import LAMBDA_SOURCE, Template, document_content, runner_environment
from .xray_daemon import XRayDaemon

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
        self.emulator = SsmEmulator(tag_resolver=self._tagged_instance_ids)
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
            self.emulator.start()
            self.xray.start()
            self.emulator.register_document(DOCUMENT_NAME, document_content(self.template))
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
            self.emulator.stop()
        with contextlib.suppress(Exception):
            self.xray.stop()
        self.services.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- AWS clients against the simulated services
    def client(self, service: str) -> Any:
        endpoint = self.emulator.endpoint_url if service == "ssm" else self.services.moto_url
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
        ec2 = self.client("ec2")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        tags = [{"Key": "Name", "Value": name}]
        if tagged:  # with the tag the stack's configuration selects
            settings = runner_environment(self.template)
            value = settings["TARGET_TAG_VALUES"].split(",")[0]
            tags.append({"Key": settings["TARGET_TAG_KEY"], "Value": value})
        reservation = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        instance_id = reservation["Instances"][0]["InstanceId"]
        sandbox = SandboxInstance(instance_id, self.workdir / instance_id, self.services, list(users))
        self.emulator.register_instance(
            instance_id,
            sandbox,
            ping_status=ping_status,
            computer_name=name,
            tags={t["Key"]: t["Value"] for t in tags},
        )
        instance = FleetInstance(name, instance_id, tagged, ping_status, sandbox)
        self.instances.append(instance)
        return instance

    def _tagged_instance_ids(self, key: str, values: Sequence[str]) -> list[str]:
        """SendCommand tag targets resolve against EC2, the fleet's one source of tags."""
        tag_key = key.removeprefix("tag:")
        filters = [
            {"Name": f"tag:{tag_key}", "Values": list(values)}
            if values
            else {"Name": "tag-key", "Values": [tag_key]}
        ]
        pages = self.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
        return [i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]]

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
            "AWS_ENDPOINT_URL_SSM": self.emulator.endpoint_url,
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
