"""A whole local deployment: the simulated account (EC2 and SSM Run Command over HTTP on a real
clock), moto for the rest of AWS, the stack's document, instances in sandboxes, and the real
runner started as Lambda starts it, configured as the stack configures it.

With ``new_instances`` the stack's new-instance path is deployed too: EC2's events go to the
rules, the queue and the event source mapping as the template builds them
(``localfleet.composition.NewInstanceDelivery``, on the real clock), which invoke the runner as
Lambda would — each invocation a cold start of the asset, reaching SQS (for its put-backs)
over HTTP like EC2 and SSM. ``add_instance(..., launched_now=True)`` sends the instance's
``running`` event; ``register_agent`` and ``tag`` are its agent registering late and a tag
given later. What those runs report is read from their log records (``event_reports``), as
on AWS, where the answer to SQS holds only the batch item failures.

With ``organization`` the fleet's account is the home pair of a ``SimulatedOrganization``
(issue 14): EC2 and SSM are its routed endpoints, so a request reaches the account whose
credentials signed it; STS (moto's, behind the simulator's gate) and CloudFormation's
ListStackInstances are served beside them, all over HTTP on loopback. ``add_member_account``
plays what the StackSet deploys in a member account (its stack instance, the member role, the
member document); ``add_instance(..., account=...)`` puts an instance there, which reaches its
own account's ECR (moto run as that account) and registry. The runner runs in organization
mode only when invoked with ``organization_env()``; without it, it covers the home pair alone,
as before. With ``organization_templates`` (the stack synthesized with organization context: the
central template and the member template) the new-instance path is the organization's: the central
template's queue, rules and member bus, each member account's stack forwarding its instances' events
to that bus (``SimulatedOrganization.forward_new_instances``), and the runner invoked from the queue
in organization mode, so a member account's new instance is covered through the central path.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ecr_fleet_auth.shared import contract

from ..clocks import RealClock
from ..composition import NewInstanceDelivery
from ..composition.simulated_account import SimulatedAccount
from ..composition.simulated_organization import MEMBER_ROLE, SimulatedOrganization
from ..hosts.sandbox_instance import SandboxInstance, User
from ..identity import ACCOUNT, REGION
from ..lambda_runtime import FunctionError, InvokeResult, LambdaEnvironment, XRayDaemon, lambda_environment
from ..synthesized_stack import (
    LAMBDA_SOURCE,
    Template,
    document_content,
    runner_environment,
    table_definitions,
)
from .local_services import LOCAL_CREDENTIALS, REGISTRY, LocalServices

DOCUMENT_NAME = "EcrFleetAuth-AgentDocument-local"
NOT_REGISTERED = "not registered"  # an instance whose SSM agent has not registered (yet)
OUTPUT_LOG_GROUP = "/ecr-fleet-auth/local/run-command-output"
STACK_SET_NAME = "EcrFleetAuth-Members"
ORGANIZATIONAL_UNIT_ID = "ou-ab12-cdef3456"
CLAIM_TABLE_NAME = "ecr-fleet-auth-local-claims"


@dataclass
class FleetInstance:
    name: str
    instance_id: str
    tagged: bool
    ping_status: str
    sandbox: SandboxInstance
    account_id: str = ACCOUNT


class LocalFleet:
    """Use as a context manager: everything it starts stops on exit, also on errors."""

    def __init__(
        self,
        template: Template,
        workdir: Path | None = None,
        asset: Path | None = None,
        *,
        new_instances: bool = False,
        organization: bool = False,
        organization_templates: tuple[Template, Template] | None = None,
    ) -> None:
        """`asset`: the runner's code as synthesis staged it (default: its source directory);
        `new_instances`: deploy the new-instance path (rules, queue, event source mapping);
        `organization`: the account is an organization's home pair (member accounts may be added);
        `organization_templates`: the central and member templates of the stack synthesized with
        organization context, whose new-instance path (member accounts' events included) is deployed."""
        self.template = template
        self.new_instances = new_instances
        self.organization_templates = organization_templates if organization else None
        self.delivery: NewInstanceDelivery | None = None
        self.event_invocations: list[
            InvokeResult
        ] = []  # the runner's invocations by the event source mapping
        self._invocations_lock = threading.Lock()
        self.asset = asset or LAMBDA_SOURCE
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-local-"))
        self.services = LocalServices(self.workdir)
        self.member_services: dict[str, LocalServices] = {}  # member account -> its ECR and registry
        # SendCommand tag targets resolve against EC2, the fleet's one source of tags.
        self.organization: SimulatedOrganization | None = None
        if organization:
            self.organization = SimulatedOrganization(
                RealClock(),
                stack_set_name=STACK_SET_NAME,
                runner_key=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                tags_from_ec2=True,
            )
            self.account = self.organization.home
        else:
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
            if self.organization is not None:
                self.endpoints = {
                    service: self.organization.serve(service)
                    for service in ("ec2", "ssm", "sts", "cloudformation")
                }
            else:
                self.endpoints = {service: self.account.serve(service) for service in ("ec2", "ssm")}
            if self.new_instances:  # the account's SQS: the runner puts events back there
                self.endpoints["sqs"] = self.account.serve("sqs")
            self.xray.start()
            self.account.register_document(DOCUMENT_NAME, document_content(self.template))
            self._subscribe_to_notifications()
            self.runner = self._lambda_environment()  # built once; every invocation starts from it
            if self.new_instances:  # the claim table in moto, where the runner's DynamoDB calls go
                central = self.organization_templates[0] if self.organization_templates else self.template
                dynamodb = self.client("dynamodb")
                for definition in table_definitions(central):
                    dynamodb.create_table(TableName=CLAIM_TABLE_NAME, **definition)
                self.delivery = NewInstanceDelivery.from_template(
                    central, self.account.clock, self.account.sqs, self._invoke_from_queue
                )
                self.account.event_bus.append(self.delivery.put)
                if self.organization is not None and self.organization_templates is not None:
                    self.organization.forward_new_instances(self.organization_templates[1], self.delivery)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.delivery is not None:
            self.delivery.mapping.enabled = False
        for instance in self.instances:
            with contextlib.suppress(Exception):
                instance.sandbox.close()
        with contextlib.suppress(Exception):
            # An organization's pairs (the fleet's account among them) share its clock.
            (self.organization or self.account).close()
        with contextlib.suppress(Exception):
            self.xray.stop()
        for services in self.member_services.values():
            with contextlib.suppress(Exception):
                services.close()
        self.services.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- AWS clients against the simulated services
    def client(self, service: str) -> Any:
        """A client of EC2 or SSM (the simulated account) or of moto (the rest; SQS: the inbox's)."""
        endpoint = (
            self.endpoints.get(service, self.services.moto_url)
            if service != "sqs"
            else self.services.moto_url
        )
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
        self,
        name: str,
        users: Sequence[User],
        *,
        tagged: bool = True,
        ping_status: str = "Online",
        registered: bool = True,
        launched_now: bool = False,
        account: str = ACCOUNT,
    ) -> FleetInstance:
        """An instance of the fleet; ``registered=False``: its SSM agent has not registered yet
        (``register_agent``); ``launched_now``: EC2 sends its ``running`` event (a launch now, not
        an instance that was already running); ``account``: a member account (``add_member_account``)
        whose ECR and registry it reaches."""
        tags = {"Name": name, **(self.target_tag() if tagged else {})}
        pair, services = self.pair(account), self._services_of(account)
        (instance_id,) = pair.ec2.launch(1, tags)
        sandbox = SandboxInstance(
            instance_id, self.workdir / instance_id, services.surroundings(), list(users)
        )
        if registered:
            pair.add_node(instance_id, tags=tags, executor=sandbox, ping_status=ping_status)
        instance = FleetInstance(
            name, instance_id, tagged, ping_status if registered else NOT_REGISTERED, sandbox, account
        )
        self.instances.append(instance)
        if launched_now:
            pair.entered_running(instance_id)
        return instance

    # --- the organization (``organization=True``)
    def pair(self, account: str = ACCOUNT) -> SimulatedAccount:
        """The account's EC2 and Run Command in the fleet's region."""
        if account == ACCOUNT:
            return self.account
        if self.organization is None or account not in self.member_services:
            raise ValueError(f"{account} is not a member account of this fleet (add_member_account)")
        return self.organization.pair(account, REGION)

    def _services_of(self, account: str) -> LocalServices:
        if account == ACCOUNT:
            return self.services
        services = self.member_services[account]
        if not services.moto_port:  # started with the account's first instance
            services.start()
        return services

    def add_member_account(self, account: str, *, role_trusts_runner: bool = True) -> None:
        """What the StackSet deploys in ``account`` and the fleet's region: its stack instance
        (CURRENT), the member role and the member document. ``role_trusts_runner=False``: the role's
        trust names another role than the runner's, so AssumeRole is refused (AccessDenied)."""
        if self.organization is None:
            raise RuntimeError("the local fleet was started without organization")
        trust = None
        if not role_trusts_runner:
            trust = self.organization.member_trust()
            trust["Statement"][0]["Condition"]["ArnEquals"]["aws:PrincipalArn"] = (
                f"arn:aws:iam::{ACCOUNT}:role/SomeoneElse"
            )
        self.organization.deploy_member(
            account,
            REGION,
            document=(self.member_document_name(), document_content(self.template)),
            trust_policy=trust,
            organizational_unit_id=ORGANIZATIONAL_UNIT_ID,
        )
        index = len(self.member_services) + 1
        self.member_services[account] = LocalServices(self.workdir / f"account-{account}", account, index)

    def member_document_name(self) -> str:
        """The member document's name by the stack's own rule (``content_named``: the content's hash)."""
        from ecr_fleet_auth_cdk.document.construct import content_named  # noqa: PLC0415 - the synth's naming rule

        name: str = content_named("EcrFleetAuth-Agent", document_content(self.template))
        return name

    def organization_env(self) -> dict[str, str]:
        """The runner's organization settings, as the stack writes them in organization mode with
        ``registries`` left empty (each pair's own registry). The fleet's template is synthesized
        without organization settings, to keep ``make demo`` short; the names follow the stack's
        rules (tests/infra/test_organization_stack.py checks what the stack writes, and
        tests/runner/run/test_organization.py runs the runner with it)."""
        from .in_process_state_machine import RUNS_BUCKET  # noqa: PLC0415 - moto's interpreter: organizations only

        return {
            "REGISTRIES": "",
            "STACK_SET_NAME": STACK_SET_NAME,
            "MEMBER_DOCUMENT_NAME": self.member_document_name(),
            "ORGANIZATIONAL_UNIT_IDS": ORGANIZATIONAL_UNIT_ID,
            "STACK_SET_CALL_AS": "DELEGATED_ADMIN",  # the fleet's account is the delegated administrator
            "RUNS_BUCKET_NAME": RUNS_BUCKET,  # the state machine's bucket (run_state_machine)
        }

    def target_tag(self) -> dict[str, str]:
        """The tag the stack's configuration selects (its first accepted value)."""
        settings = runner_environment(self.template)
        return {settings["TARGET_TAG_KEY"]: settings["TARGET_TAG_VALUES"].split(",")[0]}

    def register_agent(self, instance: FleetInstance) -> None:
        """The instance's SSM agent registers now: SSM lists it, Online."""
        self.pair(instance.account_id).register_agent(instance.instance_id, executor=instance.sandbox)
        instance.ping_status = "Online"

    def tag(self, instance: FleetInstance) -> None:
        """Someone gives the running instance the target tag (its tag-change event goes to the bus)."""
        self.pair(instance.account_id).tag(instance.instance_id, self.target_tag())
        instance.tagged = True

    def client_in(self, account: str, service: str) -> Any:
        """A client of the simulated ``service`` (EC2, SSM) in ``account``: the fleet's own, or a
        member account's through its member role (as the runner reaches it: STS AssumeRole)."""
        if account == ACCOUNT:
            return self.client(service)
        role = f"arn:aws:iam::{account}:role/{MEMBER_ROLE}"
        credentials = self.client("sts").assume_role(RoleArn=role, RoleSessionName="local-fleet")[
            "Credentials"
        ]
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        ).client(service, endpoint_url=self.endpoints[service])  # type: ignore[call-overload]

    # --- the runner
    def _lambda_environment(self) -> LambdaEnvironment:
        """The runner as Lambda starts it: its asset, the layer, the runtime, the stack's environment."""
        deploy_time = {
            "DOCUMENT_NAME": DOCUMENT_NAME,
            "REGISTRIES": REGISTRY,
            "OUTPUT_LOG_GROUP": OUTPUT_LOG_GROUP,
            "TOPIC_ARN": self.topic_arn,
            "CLAIM_TABLE_NAME": CLAIM_TABLE_NAME,
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
            **(
                {
                    "AWS_ENDPOINT_URL_STS": self.endpoints["sts"],
                    "AWS_ENDPOINT_URL_CLOUDFORMATION": self.endpoints["cloudformation"],
                }
                if "sts" in self.endpoints
                else {}
            ),
            "AWS_XRAY_DAEMON_ADDRESS": self.xray.address,
            **({"AWS_ENDPOINT_URL_SQS": self.endpoints["sqs"]} if "sqs" in self.endpoints else {}),
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

    def run_state_machine(
        self, event: dict[str, Any], name: str, *, extra_env: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """An execution of the organization's state machine (issue 23), as the schedule starts it:
        the organization template's definition, references resolved, run by moto's interpreter
        behind a loopback server (``localfleet.stepfunctions.StepFunctionsServer``) whose Lambda
        tasks start the runner as Lambda does (``invoke``, organization settings and ``extra_env``),
        its runs bucket that server's S3. DescribeExecution's answer, and the merged report (None
        when the execution did not succeed)."""
        from ..stepfunctions import (  # noqa: PLC0415
            LambdaTasks,
            StateMachines,
            StepFunctionsServer,
            resolved_definition,
        )
        from .in_process_state_machine import RUNS_BUCKET, definition_references  # noqa: PLC0415

        if not self.organization_templates:
            raise RuntimeError("the fleet was not given the organization's templates")
        central = self.organization_templates[0]
        function_arn = self.runner.function_arn(ACCOUNT)
        server: StepFunctionsServer | None = None

        def step(step_event: Any) -> Any:
            assert server is not None
            url = {"AWS_ENDPOINT_URL_SFN": server.url, "AWS_ENDPOINT_URL_S3": server.url}
            return self.invoke(step_event, extra_env={**self.organization_env(), **url, **(extra_env or {})})

        server = StepFunctionsServer(LambdaTasks({self.runner.variables["AWS_LAMBDA_FUNCTION_NAME"]: step}))
        server.start()
        try:
            session = boto3.session.Session(
                aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=REGION,
            )
            s3: Any = session.client("s3", endpoint_url=server.url)
            s3.create_bucket(Bucket=RUNS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
            machines = StateMachines(session.client("stepfunctions", endpoint_url=server.url), ACCOUNT)
            references = definition_references(central, REGION, ACCOUNT, RUNS_BUCKET, function_arn)
            arn = machines.create(*resolved_definition(central, references))
            described = machines.wait(machines.start(arn, event, name), timeout=900)
            if described["status"] != "SUCCEEDED":
                return described, None
            where = json.loads(described["output"])["report"]
            report: dict[str, Any] = json.loads(
                s3.get_object(Bucket=where["bucket"], Key=where["key"])["Body"].read()
            )
            return described, report
        finally:
            server.stop()

    def _invoke_from_queue(self, event: dict[str, Any], *, lineage: str) -> Any:
        """The event source mapping invokes the runner (a function error raises, as Lambda sees it);
        in organization mode when the organization's new-instance path is deployed."""
        organization = self.organization_env() if self.organization_templates else {}
        invocation = self.runner.invoke(
            event,
            function_arn=self.runner.function_arn(ACCOUNT),
            extra={**self.local_services_env(), **organization},
            lineage=lineage,
        )
        with self._invocations_lock:
            self.event_invocations.append(invocation)
        if invocation.error_type is not None:
            raise FunctionError(invocation)
        return invocation.payload

    def event_reports(self) -> list[dict[str, Any]]:
        """The reports of the runs of instance events so far, as the runner logged them (the report
        without the instances that succeeded, which are listed in ``instances_not_succeeded``)."""
        with self._invocations_lock:
            invocations = list(self.event_invocations)
        reports = []
        for invocation in invocations:
            for line in invocation.stdout.splitlines():
                record = json.loads(line) if line.startswith("{") else {}
                if record.get("message") == contract.RUN_REPORT_LOG_MESSAGE:
                    reports.append(record["report"])
        return reports

    def wait_for_new_instances(self, timeout: float) -> bool:
        """Wait (real time) until the queue is empty and no batch runs; whether that happened."""
        delivery = self.delivery
        if delivery is None:
            raise RuntimeError("the local fleet was started without new_instances")
        return delivery.wait_until(delivery.idle, timeout)
