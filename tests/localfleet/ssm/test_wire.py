"""The wire: JSON 1.1 over loopback, model validation, error shapes, call counting."""

from __future__ import annotations

import http.client
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.support.ssm_emulator import DOCUMENT, REGION, instance_id


def post(emulator: SsmEmulator, target: str, body: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    host, port = emulator.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(
        "POST",
        "/",
        body=json.dumps(body),
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, response.getheader("Content-Type") or "", payload


def test_listens_on_loopback_only(emulator: SsmEmulator) -> None:
    assert emulator.endpoint_url.startswith("http://127.0.0.1:")


def test_aws_endpoint_url_ssm_reaches_the_emulator(
    emulator: SsmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", emulator.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("ssm", region_name=REGION)

    client.describe_document(Name=DOCUMENT)

    assert emulator.calls["DescribeDocument"] == 1


def test_request_missing_a_required_member_is_a_validation_exception(emulator: SsmEmulator) -> None:
    status, content_type, payload = post(emulator, "AmazonSSM.SendCommand", {"InstanceIds": [instance_id(1)]})

    assert status == 400
    assert content_type == "application/x-amz-json-1.1"
    assert payload["__type"] == "ValidationException"
    assert "DocumentName" in payload["message"]


def test_request_with_a_wrong_type_is_a_validation_exception(emulator: SsmEmulator) -> None:
    status, _, payload = post(emulator, "AmazonSSM.DescribeInstanceInformation", {"MaxResults": "ten"})

    assert (status, payload["__type"]) == (400, "ValidationException")


def test_server_side_minimum_is_enforced_even_when_the_sdk_would_catch_it(emulator: SsmEmulator) -> None:
    status, _, payload = post(emulator, "AmazonSSM.DescribeInstanceInformation", {"MaxResults": 4})

    assert (status, payload["__type"]) == (400, "ValidationException")


def test_valid_raw_request_is_answered_in_the_output_shape(emulator: SsmEmulator) -> None:
    status, _, payload = post(emulator, "AmazonSSM.DescribeDocument", {"Name": DOCUMENT})

    assert status == 200
    assert isinstance(payload["Document"]["CreatedDate"], float)  # epoch seconds, as JSON 1.1 sends them


def test_unknown_and_unemulated_operations_are_rejected(emulator: SsmEmulator) -> None:
    assert post(emulator, "AmazonSSM.NoSuchThing", {})[2]["__type"] == "UnknownOperationException"
    assert post(emulator, "AmazonSSM.GetParameter", {"Name": "x"})[2]["__type"] == "UnknownOperationException"


def test_model_maximum_is_a_validation_exception_through_boto3(ssm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.list_command_invocations(MaxResults=51)

    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 50" in caught.value.response["Error"]["Message"]


def test_boto3_still_validates_on_its_side(ssm: Any, emulator: SsmEmulator) -> None:
    with pytest.raises(ParamValidationError):
        ssm.describe_instance_information(MaxResults=4)
    assert emulator.calls["DescribeInstanceInformation"] == 0


def test_calls_count_every_request_by_operation(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(instance_id(1), CannedExecutor())
    ssm.describe_instance_information()
    ssm.describe_instance_information()
    with pytest.raises(ClientError):
        ssm.describe_document(Name="NoSuchDocument")

    assert emulator.calls == {"DescribeInstanceInformation": 2, "DescribeDocument": 1}


def test_endpoint_is_unavailable_after_stop() -> None:
    emulator = SsmEmulator().start()
    emulator.stop()

    with pytest.raises(RuntimeError):
        _ = emulator.endpoint_url


def test_an_emulator_bug_is_an_internal_server_error_not_a_dropped_connection(
    emulator: SsmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(operation: str) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(emulator.endpoint.wire, "handlers", broken)

    status, _, payload = post(emulator, "AmazonSSM.DescribeDocument", {"Name": DOCUMENT})

    assert (status, payload["__type"]) == (500, "InternalServerError")
