"""Several accounts x regions, each pair a ``SimulatedAccount``, reached the way AWS routes requests.

One ``SimulatedOrganization`` is the AWS side of an organization-wide deployment for the runner's
tests and benchmarks (in this process, on a ``SimulatedClock`` shared by every pair):

* every (account, region) pair is a ``SimulatedAccount`` (EC2 inventory + Run Command),
  created when first reached: an account has every region, empty until something is launched;
* a request reaches the pair of its signature: the region of its SigV4 credential scope, the
  account whose credentials signed it (``transport.routing``, ``iam.Identities``); unknown
  credentials and regions the account has not enabled get each service's refusal;
* STS is moto's, behind ``iam.StsGate``: AssumeRole into a role that does not exist, or
  whose trust does not name the runner's role, is ``AccessDenied`` as AWS words it; role
  sessions moto issues are registered so that their requests reach the role's account;
* CloudFormation's ``ListStackInstances`` answers from ``cloudformation.StackSets``: the
  organization's StackSet, owned by the management account and listed by the runner's
  account as its delegated administrator (``CallAs``), each stack instance with its status;
* ``deploy_member`` plays what the StackSet does in a member account and region: its stack
  instance, and when a stack exists there (``CURRENT``, or ``stack=True``) the member role
  (trusting the runner's role) and the member document; ``update_member`` a StackSet operation
  reaching it (``OUTDATED`` while it runs or after it failed, the previous stack still standing,
  perhaps a new document created beside the old, or the old one deleted); faults are injected per
  pair (``pair(...).ssm_endpoint.fault``) or on STS and CloudFormation (``sts_endpoint``,
  ``cloudformation_endpoint``).

The local fleet serves the same endpoints over HTTP on loopback (``serve``, on a ``RealClock``):
the runner started as Lambda starts it reaches them through ``AWS_ENDPOINT_URL_<SERVICE>``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import boto3

from ..clocks import Clock
from ..cloudformation import StackInstance, StackSets, StackSetsWire
from ..ec2 import Ec2Inventory, Ec2Wire
from ..iam import Identities, Principal
from ..identity import ACCOUNT, REGION
from ..ssm import SsmWire
from ..sts import StsGate
from ..synthesized_stack import Template
from ..transport import InProcessTransport, LoopbackServer, Reply, ServiceEndpoint, ServiceError
from ..transport.endpoint import Answering
from ..transport.routing import RoutedEndpoint, Signature
from .member_forwarding import MemberForwarding
from .new_instance_delivery import NewInstanceDelivery
from .simulated_account import SimulatedAccount

MANAGEMENT_ACCOUNT = "999999999999"
ORGANIZATION_ID = "o-a1b2c3d4e5"  # every account here is in it (aws:PrincipalOrgID)
RUNNER_ROLE = "EcrFleetAuth-Runner"
FUNCTION_NAME = "ecr-fleet-auth-runner"  # the session name Lambda gives its role (InProcessContext's)
MEMBER_ROLE = "EcrFleetAuthMember"
PAIR_INSTANCE_NUMBERS = 10_000_000  # instance numbers each pair may use


class SimulatedOrganization:
    def __init__(
        self,
        clock: Clock,
        *,
        stack_set_name: str,
        home_account: str = ACCOUNT,
        home_region: str = REGION,
        management_account: str = MANAGEMENT_ACCOUNT,
        runner_key: str | None = None,
        member_role: str = MEMBER_ROLE,
        tags_from_ec2: bool = False,
    ) -> None:
        """``runner_key``: the access key of the runner's own credentials, its Lambda role's session
        (default: AWS_ACCESS_KEY_ID now, which ``mock_aws`` sets to its own fake key).
        The runner's account is the StackSets delegated administrator unless it is the management
        account. ``tags_from_ec2``: every pair's tag targets resolve against its EC2
        (``SimulatedAccount``)."""
        self.clock = clock
        self.tags_from_ec2 = tags_from_ec2
        self._servers: list[LoopbackServer] = []
        self.home_account, self.home_region = home_account, home_region
        self.member_role = member_role
        self.runner_role_arn = f"arn:aws:iam::{home_account}:role/{RUNNER_ROLE}"
        self.identities = Identities()
        self.identities.add_key(
            runner_key or os.environ["AWS_ACCESS_KEY_ID"],
            Principal(
                home_account,
                self.runner_role_arn,
                f"arn:aws:sts::{home_account}:assumed-role/{RUNNER_ROLE}/{FUNCTION_NAME}",
            ),
        )
        self.organization_id = ORGANIZATION_ID
        self.pairs: dict[tuple[str, str], SimulatedAccount] = {}
        self.forwarding: MemberForwarding | None = None  # member pairs' new-instance events, to the home pair
        self.home = self.pair(home_account, home_region)
        admins = () if home_account == management_account else (home_account,)
        self.stack_sets = StackSets(management_account, admins)
        self.stack_set = self.stack_sets.create(stack_set_name, home_region)
        self.ec2 = RoutedEndpoint(Ec2Wire(Ec2Inventory()), lambda signed: self._reach(signed, "ec2"))
        self.ssm = RoutedEndpoint(SsmWire(_no_operations), lambda signed: self._reach(signed, "ssm"))
        self.sts_endpoint = ServiceEndpoint(StsGate(self.identities, moto_sts))
        self.cloudformation_endpoint = ServiceEndpoint(StackSetsWire(self.stack_sets, self._account_of))

    # --- reaching it ---------------------------------------------------------------------
    def session(self, region: str | None = None) -> boto3.Session:
        """A boto3 session whose EC2, SSM, STS and CloudFormation clients this organization answers,
        whatever credentials and region each client is made with."""
        session = boto3.Session(region_name=region or self.home_region)
        InProcessTransport(
            self.ec2,
            self.ssm,
            self.sts_endpoint,
            self.cloudformation_endpoint,
            # The runner's own queue (put-backs) and claim table are the home pair's.
            self.home.sqs_endpoint,
            self.home.dynamodb_endpoint,
        ).attach(session)
        return session

    def pair(self, account: str, region: str) -> SimulatedAccount:
        """The (account, region) pair's EC2 and Run Command (created empty when first asked for)."""
        key = (account, region)
        if key not in self.pairs:
            # Instance ids are unique across accounts and regions, as AWS's are.
            first = len(self.pairs) * PAIR_INSTANCE_NUMBERS
            self.pairs[key] = SimulatedAccount(
                self.clock,
                account_id=account,
                region=region,
                first_instance_number=first,
                tags_from_ec2=self.tags_from_ec2,
            )
            if self.forwarding is not None:
                self.forwarding.attach(self.pairs[key].event_bus, account, self.organization_id)
        return self.pairs[key]

    def forward_new_instances(
        self, member_template: Template, central: NewInstanceDelivery
    ) -> MemberForwarding:
        """Every member pair's stack forwards its new instances' events to the home pair's stack, as the
        member template's rules do (``member_forwarding``); the home pair's own rules see its own."""
        self.forwarding = MemberForwarding.from_template(member_template, central)
        for (account, region), pair in self.pairs.items():
            if (account, region) != (self.home_account, self.home_region):
                self.forwarding.attach(pair.event_bus, account, self.organization_id)
        return self.forwarding

    def serve(self, service: str) -> str:
        """Serve ``service`` (ec2, ssm: routed to each request's pair; sts; cloudformation) over
        loopback HTTP; its endpoint URL."""
        routed: dict[str, Answering] = {
            "ec2": self.ec2,
            "ssm": self.ssm,
            "sts": self.sts_endpoint,
            "cloudformation": self.cloudformation_endpoint,
        }
        server = LoopbackServer(routed[service]).start()
        self._servers.append(server)
        return server.url

    def close(self) -> None:
        for server in self._servers:
            server.stop()
        self._servers.clear()
        for pair in self.pairs.values():
            pair.close(clock=False)
        self.clock.close()

    def _reach(self, signed: Signature, service: str) -> Answering:
        caller = self.identities.caller(signed.access_key, signed.region, service)
        return self.pair(caller.account, signed.region).endpoint(service)

    def _account_of(self, signed: Signature) -> str:
        return self.identities.caller(signed.access_key, signed.region, "cloudformation").account

    # --- the StackSet ----------------------------------------------------------------------
    def deploy_member(
        self,
        account: str,
        region: str,
        *,
        status: str = "CURRENT",
        detailed_status: str = "SUCCEEDED",
        status_reason: str = "",
        document: tuple[str, Mapping[str, Any]] | None = None,
        trust_policy: Mapping[str, Any] | None = None,
        organizational_unit_id: str = "ou-ab12-cdef3456",
        stack: bool | None = None,
    ) -> SimulatedAccount:
        """The StackSet's stack instance in (account, region); when a stack exists there (``stack``;
        by default when ``CURRENT``), what it created: the member role (``trust_policy``, by default
        trusting only the runner's role, as the member template does) and ``document`` (name,
        content) in the pair's SSM."""
        instance = self.stack_set.put(
            StackInstance(
                account,
                region,
                status=status,
                detailed_status=detailed_status,
                status_reason=status_reason,
                organizational_unit_id=organizational_unit_id,
                stack_exists=stack,
            )
        )
        pair = self.pair(account, region)
        if instance.stack_id:
            self.identities.add_role(account, self.member_role, trust_policy or self.member_trust())
            if document is not None:
                pair.register_document(*document)
        return pair

    def update_member(
        self,
        account: str,
        region: str,
        *,
        status: str = "OUTDATED",
        detailed_status: str = "RUNNING",
        status_reason: str = "",
        new_document: tuple[str, Mapping[str, Any]] | None = None,
        deleted_document: str | None = None,
    ) -> SimulatedAccount:
        """A StackSet operation on the member stack there: its instance ``OUTDATED`` (``RUNNING``
        while it runs; ``FAILED`` / ``CANCELLED`` after, the update rolled back) or ``INOPERABLE``,
        its previous stack still standing; ``new_document``: created by the update so far;
        ``deleted_document``: removed by it (or by a failed delete)."""
        self.stack_set.operate(account, region, status, detailed_status, status_reason)
        pair = self.pair(account, region)
        if new_document is not None:
            pair.register_document(*new_document)
        if deleted_document is not None:
            pair.ssm.delete_document(deleted_document)
        return pair

    def member_trust(self) -> dict[str, Any]:
        """The member role's trust: the runner's account, on condition that the caller is its role."""
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{self.home_account}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": self.runner_role_arn}},
                }
            ],
        }


def _no_operations(name: str) -> Any:
    raise ServiceError("UnknownOperationException", f"Unknown operation {name}")


@functools.cache
def _moto_application() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415
    from werkzeug.test import Client  # noqa: PLC0415

    return Client(DomainDispatcherApplication(create_backend_app))


def moto_sts(headers: Mapping[str, str], body: bytes) -> Reply:
    """moto's STS in this process (its server application, the same backends as ``mock_aws``)."""
    signed = {name.lower(): value for name, value in headers.items()}
    region = "us-east-1"
    authorization = signed.get("authorization", "")
    if "/sts/aws4_request" in authorization:
        region = authorization.split("/sts/aws4_request")[0].rsplit("/", 1)[-1]
    forwarded = {**signed, "host": f"sts.{region}.amazonaws.com"}
    forwarded.pop("content-length", None)
    answer = _moto_application().post("/", data=body, headers=forwarded)
    return Reply(
        answer.status_code, {"Content-Type": answer.headers.get("Content-Type", "text/xml")}, answer.data
    )
