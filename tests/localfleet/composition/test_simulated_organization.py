"""Several accounts x regions behind one set of endpoints: requests reach the pair AWS would route them to.

Sources for the answers (quoted in the modules): STS AssumeRole refusals as AWS words them
(``localfleet/sts/responses.py``), each service's answer in a region the account has not enabled
(``localfleet/iam/models.py``), ListStackInstances' statuses, ``CallAs`` and pages
(``localfleet/cloudformation/models.py``, CloudFormation API reference).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_organization import SimulatedOrganization
from localfleet.iam import Principal
from localfleet.iam.models import trusts

STACK_SET = "EcrFleetAuth-Members"
HOME, A, B = "123456789012", "111111111111", "222222222222"
ONE_TRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedOrganization]:
    for service in ("EC2", "SSM", "STS", "CLOUDFORMATION"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", "http://127.0.0.1:9")  # never dialled
    with mock_aws():
        organization = SimulatedOrganization(SimulatedClock(), stack_set_name=STACK_SET)
        yield organization
        organization.close()


def as_member(org: SimulatedOrganization, account: str) -> dict[str, str]:
    credentials = (
        org.session()
        .client("sts")
        .assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{org.member_role}", RoleSessionName="ecr-fleet-auth"
        )["Credentials"]
    )
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def instance_ids(client: Any) -> list[str]:
    pages = client.describe_instances()["Reservations"]
    return sorted(i["InstanceId"] for r in pages for i in r["Instances"])


def error(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_requests_reach_the_pair_of_their_credentials_and_region(org: SimulatedOrganization) -> None:
    org.deploy_member(A, "eu-west-1")
    home_ids = org.home.launch(1, tags={"Name": "home"})
    member_ids = org.pair(A, "us-east-1").launch(2, tags={"Name": "member"})
    session, member = org.session(), as_member(org, A)

    assert instance_ids(session.client("ec2")) == home_ids
    assert instance_ids(session.client("ec2", region_name="us-east-1", **member)) == sorted(member_ids)
    assert instance_ids(session.client("ec2", region_name="eu-west-1", **member)) == []
    assert session.client("sts", **member).get_caller_identity()["Account"] == A
    # Each pair counts (and can fail) on its own.
    assert org.pair(A, "us-east-1").ec2_endpoint.calls["DescribeInstances"] == 1
    assert org.home.ec2_endpoint.calls["DescribeInstances"] == 1


def test_assume_role_is_refused_as_aws_refuses_it_when_the_role_is_missing_or_does_not_trust(
    org: SimulatedOrganization,
) -> None:
    # moto would hand out credentials for both (moto/sts/models.py: the role need not exist).
    org.deploy_member(A, "eu-west-1", trust_policy={
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HOME}:root"},
                       "Action": "sts:AssumeRole",
                       "Condition": {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{HOME}:role/Other"}}}]
    })  # fmt: skip
    sts = org.session().client("sts")
    caller = sts.get_caller_identity()["Arn"]
    for account in (A, B):  # A: trusts another role; B: no role (the StackSet never reached it)
        role = f"arn:aws:iam::{account}:role/{org.member_role}"
        assert error(sts.assume_role, RoleArn=role, RoleSessionName="ecr-fleet-auth") == (
            "AccessDenied",
            f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}",
            403,
        )
    org.deploy_member(A, "eu-west-1")  # the default trust: the runner's role
    assert as_member(org, A)["aws_access_key_id"].startswith("ASIA")


def test_a_region_the_account_has_not_enabled_refuses_each_service_in_its_own_words(
    org: SimulatedOrganization,
) -> None:
    org.deploy_member(A, "eu-west-1")
    session, member = org.session(), as_member(org, A)
    ap_east = {"region_name": "ap-east-1", "config": ONE_TRY, **member}
    invalid = "The security token included in the request is invalid."

    assert error(session.client("ec2", **ap_east).describe_instances) == (
        "AuthFailure", "AWS was not able to validate the provided access credentials", 401
    )  # fmt: skip
    assert error(session.client("ssm", **ap_east).describe_instance_information) == (
        "UnrecognizedClientException", invalid, 400
    )  # fmt: skip
    assert error(session.client("sts", **ap_east).get_caller_identity) == (
        "InvalidClientTokenId",
        invalid,
        403,
    )

    org.identities.enable_region(A, "ap-east-1")
    assert instance_ids(session.client("ec2", **ap_east)) == []


def test_unknown_credentials_are_refused(org: SimulatedOrganization) -> None:
    client = org.session().client(
        "ec2", aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="x", config=ONE_TRY
    )
    assert error(client.describe_instances)[0] == "AuthFailure"


def test_list_stack_instances_pages_statuses_and_call_as(org: SimulatedOrganization) -> None:
    org.deploy_member(A, "eu-west-1")
    org.deploy_member(A, "us-east-1")
    reason = "ResourceLogicalId:MemberRole, ResourceType:AWS::IAM::Role, ResourceStatusReason:already exists."
    org.deploy_member(B, "eu-west-1", status="OUTDATED", detailed_status="FAILED", status_reason=reason)
    cloudformation = org.session().client("cloudformation")

    pages = list(
        cloudformation.get_paginator("list_stack_instances").paginate(
            StackSetName=STACK_SET, CallAs="DELEGATED_ADMIN", PaginationConfig={"PageSize": 2}
        )
    )
    summaries = [summary for page in pages for summary in page["Summaries"]]
    assert len(pages) == 2
    assert [(s["Account"], s["Region"], s["Status"], s["StackInstanceStatus"]["DetailedStatus"])
            for s in summaries] == [
        (A, "eu-west-1", "CURRENT", "SUCCEEDED"), (A, "us-east-1", "CURRENT", "SUCCEEDED"),
        (B, "eu-west-1", "OUTDATED", "FAILED"),
    ]  # fmt: skip
    assert summaries[2]["StatusReason"] == reason
    assert "StackId" not in summaries[2]  # no stack was made
    # A delegated administrator asking as SELF finds no such stack set of its own.
    assert error(cloudformation.list_stack_instances, StackSetName=STACK_SET) == (
        "StackSetNotFoundException", f"StackSet {STACK_SET} not found", 404
    )  # fmt: skip
    # Stack sets are regional.
    elsewhere = org.session("us-east-1").client("cloudformation")
    assert error(elsewhere.list_stack_instances, StackSetName=STACK_SET, CallAs="DELEGATED_ADMIN")[0] == (
        "StackSetNotFoundException"
    )


def test_a_stack_instance_mid_update_keeps_its_stack_its_role_and_its_documents(
    org: SimulatedOrganization,
) -> None:
    """StackInstanceSummary: OUTDATED covers a stack during a StackSet operation and one whose update
    failed (the previous stack still stands: it has a StackId), unlike one never created (none)."""
    org.deploy_member(A, "eu-west-1", document=("Members-Agent-0badc0de", {"schemaVersion": "2.2",
                      "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                                     "inputs": {"runCommand": ["true"]}}]}))  # fmt: skip
    org.update_member(A, "eu-west-1", detailed_status="RUNNING", deleted_document="Members-Agent-0badc0de")
    org.deploy_member(B, "eu-west-1", status="OUTDATED", detailed_status="RUNNING")  # being created
    cloudformation = org.session().client("cloudformation")

    summaries = cloudformation.list_stack_instances(StackSetName=STACK_SET, CallAs="DELEGATED_ADMIN")[
        "Summaries"
    ]
    by_account = {s["Account"]: s for s in summaries}
    assert (by_account[A]["Status"], by_account[A]["StackInstanceStatus"]["DetailedStatus"]) == (
        "OUTDATED",
        "RUNNING",
    )
    assert by_account[A]["StackId"].startswith(f"arn:aws:cloudformation:eu-west-1:{A}:stack/")
    assert "StackId" not in by_account[B]
    assert org.pair(A, "eu-west-1").ssm.documents == {}  # deleted by the update
    assert org.identities.trust_policy(A, org.member_role) is not None
    assert org.identities.trust_policy(B, org.member_role) is None


def test_the_management_account_is_no_delegated_administrator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")
    with mock_aws():
        org = SimulatedOrganization(SimulatedClock(), stack_set_name=STACK_SET, management_account=HOME)
        listing = org.session().client("cloudformation").list_stack_instances
        try:
            assert listing(StackSetName=STACK_SET, CallAs="SELF")["Summaries"] == []
            assert error(listing, StackSetName=STACK_SET, CallAs="DELEGATED_ADMIN") == (
                "ValidationError", "Account used is not a delegated administrator", 400
            )  # fmt: skip
        finally:
            org.close()


def test_trust_policies_are_read_the_way_iam_reads_them() -> None:
    runner = Principal(HOME, f"arn:aws:iam::{HOME}:role/EcrFleetAuth-Runner", "arn:aws:sts::...")
    other = Principal(HOME, f"arn:aws:iam::{HOME}:role/Other", "arn:aws:sts::...")

    def statement(**parts: Any) -> dict[str, Any]:
        return {"Effect": "Allow", "Principal": {"AWS": HOME}, "Action": "sts:AssumeRole", **parts}

    like = statement(Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{HOME}:role/EcrFleet*"}})
    assert trusts({"Statement": [like]}, A, runner) and not trusts({"Statement": [like]}, A, other)
    deny = {**statement(), "Effect": "Deny", "Principal": {"AWS": runner.arn}}
    assert not trusts({"Statement": [statement(), deny]}, A, runner)  # an explicit Deny wins
    assert trusts({"Statement": [statement(), deny]}, A, other)
    assert not trusts({"Statement": [statement(Principal={"AWS": B})]}, A, runner)  # another account
    # A condition the simulator does not model never allows (HARSHER than AWS, never laxer).
    odd = statement(Condition={"StringEquals": {"aws:SourceIdentity": "x"}})
    assert not trusts({"Statement": [odd]}, A, runner)


def test_served_over_http_each_request_reaches_the_pair_of_its_signature(org: SimulatedOrganization) -> None:
    """The local fleet's way (``serve``): the same routing, STS gate and StackSets over loopback HTTP."""
    org.deploy_member(A, "eu-west-1")
    home_ids = org.home.launch(1, tags={"Name": "home"})
    member_ids = org.pair(A, "eu-west-1").launch(2, tags={"Name": "member"})
    urls = {service: org.serve(service) for service in ("ec2", "ssm", "sts", "cloudformation")}
    assert all(url.startswith("http://127.0.0.1:") for url in urls.values())
    session = boto3.Session(region_name="eu-west-1")  # not org.session(): nothing answered in-process

    def client(service: str, **credentials: str) -> Any:
        return session.client(service, endpoint_url=urls[service], config=ONE_TRY, **credentials)  # type: ignore[call-overload]

    answer = client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{A}:role/{org.member_role}", RoleSessionName="ecr-fleet-auth"
    )["Credentials"]
    member = {
        "aws_access_key_id": answer["AccessKeyId"],
        "aws_secret_access_key": answer["SecretAccessKey"],
        "aws_session_token": answer["SessionToken"],
    }
    assert instance_ids(client("ec2")) == home_ids
    assert instance_ids(client("ec2", **member)) == sorted(member_ids)
    assert client("sts", **member).get_caller_identity()["Account"] == A
    nodes = client("ssm", **member).describe_instance_information()["InstanceInformationList"]
    assert sorted(node["InstanceId"] for node in nodes) == sorted(member_ids)
    (summary,) = client("cloudformation").list_stack_instances(
        StackSetName=STACK_SET, CallAs="DELEGATED_ADMIN"
    )["Summaries"]
    assert (summary["Account"], summary["Status"]) == (A, "CURRENT")
    # Refusals come back over HTTP in each service's own words.
    role_b = f"arn:aws:iam::{B}:role/{org.member_role}"
    assert (
        error(client("sts").assume_role, RoleArn=role_b, RoleSessionName="ecr-fleet-auth")[0]
        == "AccessDenied"
    )
    unknown = {"aws_access_key_id": "AKIAUNKNOWN", "aws_secret_access_key": "x"}
    assert error(client("ec2", **unknown).describe_instances)[0] == "AuthFailure"
    assert error(client("ssm", **unknown).describe_instance_information)[0] == "UnrecognizedClientException"
