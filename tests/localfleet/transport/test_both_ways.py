"""One endpoint, two transports: a client sees the same answers, errors and faults either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from localfleet.clocks import SimulatedClock
from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import RunCommandService, SsmWire
from localfleet.transport import ServiceEndpoint
from tests.localfleet.both_ways import WAYS, client
from tests.support.ssm_emulator import DOCUMENT, instance_id, shell_document


@pytest.fixture
def endpoint() -> ServiceEndpoint:
    service = RunCommandService(SimulatedClock())
    service.register_document(DOCUMENT, shell_document(["true"]))
    service.register_instance(instance_id(1), CannedExecutor())
    return ServiceEndpoint(SsmWire(service.handler))


@pytest.fixture(params=WAYS)
def ssm(request: pytest.FixtureRequest, endpoint: ServiceEndpoint) -> Iterator[Any]:
    # Standard retries: botocore tries throttling, 5xx and dropped connections three more times.
    config = Config(retries={"total_max_attempts": 4, "mode": "standard"})
    with client(endpoint, request.param, config) as answered:
        yield answered


def test_the_model_checks_requests_the_same_way(ssm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.list_command_invocations(MaxResults=51)

    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 50" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_throttling_is_retried_by_the_client(ssm: Any, endpoint: ServiceEndpoint) -> None:
    endpoint.fault = lambda operation, number, params: "ThrottlingException" if number < 3 else None

    ssm.describe_instance_information()

    assert endpoint.calls["DescribeInstanceInformation"] == 3


def test_a_lost_answer_was_carried_out(ssm: Any, endpoint: ServiceEndpoint) -> None:
    endpoint.lost_answer = lambda operation, number, params: (
        "InternalServerError" if operation == "SendCommand" else None
    )

    with pytest.raises(ClientError) as caught:
        ssm.send_command(DocumentName=DOCUMENT, InstanceIds=[instance_id(1)])

    assert caught.value.response["Error"]["Code"] == "InternalServerError"
    assert endpoint.calls["SendCommand"] == 4, "botocore retried the 5xx"
    assert len(ssm.list_commands()["Commands"]) == 4, "each attempt was carried out"


def test_a_dropped_connection_reaches_the_client_as_one(ssm: Any, endpoint: ServiceEndpoint) -> None:
    endpoint.fault = lambda operation, number, params: "ConnectionClosedError"

    with pytest.raises(ConnectionClosedError):
        ssm.describe_instance_information()

    assert endpoint.calls["DescribeInstanceInformation"] == 4


def test_the_world_moves_on_before_a_request(ssm: Any, endpoint: ServiceEndpoint) -> None:
    seen: list[str] = []
    endpoint.before = lambda operation, params: seen.append(operation)

    ssm.describe_instance_information()

    assert seen == ["DescribeInstanceInformation"]
    assert endpoint.sent("DescribeInstanceInformation") == [{}]
