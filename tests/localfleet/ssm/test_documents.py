"""Documents: registration, DescribeDocument, and SendCommand's checks of name, version and parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.localfleet.ssm.ssm_calls import error_code
from tests.support.ssm_emulator import CHECKED_PARAMETERS, DOCUMENT, instance_id, shell_document
from tests.support.template import Template, document_content


@pytest.fixture
def target(emulator: SsmEmulator) -> str:
    emulator.register_instance(instance_id(1), CannedExecutor())
    return instance_id(1)


def test_create_document_then_describe_it(ssm: Any) -> None:
    content = shell_document(["echo hi"], CHECKED_PARAMETERS)

    created = ssm.create_document(Name="Created-Doc", Content=json.dumps(content), DocumentType="Command")
    described = ssm.describe_document(Name="Created-Doc")["Document"]

    assert created["DocumentDescription"]["Name"] == "Created-Doc"
    assert described["DocumentVersion"] == described["DefaultVersion"] == "1"
    assert described["SchemaVersion"] == "2.2"
    assert described["Status"] == "Active"
    assert {p["Name"] for p in described["Parameters"]} == set(CHECKED_PARAMETERS)
    assert "Linux" in described["PlatformTypes"]


def test_get_document_returns_the_content_as_created_and_refuses_an_unknown_one(ssm: Any) -> None:
    """SSM API reference, GetDocument: "Gets the contents of the specified Amazon Web Services Systems
    Manager document" — ``Content``, ``DocumentFormat``, ``Status``; an unknown name is InvalidDocument.
    The runner reads an earlier member document's allowedPattern/allowedValues from it."""
    content = shell_document(["echo hi"], CHECKED_PARAMETERS)
    ssm.create_document(Name="Read-Doc", Content=json.dumps(content), DocumentType="Command")

    got = ssm.get_document(Name="Read-Doc", DocumentFormat="JSON")

    assert json.loads(got["Content"]) == content
    assert (got["Name"], got["DocumentFormat"], got["Status"], got["DocumentVersion"]) == (
        "Read-Doc", "JSON", "Active", "1"
    )  # fmt: skip
    with pytest.raises(ClientError) as caught:
        ssm.get_document(Name="NoSuchDocument")
    assert error_code(caught) == "InvalidDocument"


def test_create_document_twice_is_document_already_exists(ssm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.create_document(Name=DOCUMENT, Content=json.dumps(shell_document(["true"])))

    assert error_code(caught) == "DocumentAlreadyExists"


def test_create_document_with_broken_json_is_invalid_content(ssm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.create_document(Name="Broken-Doc", Content="{not json")

    assert error_code(caught) == "InvalidDocumentContent"


def test_describe_unknown_document_is_invalid_document(ssm: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.describe_document(Name="NoSuchDocument")

    assert error_code(caught) == "InvalidDocument"


def test_send_to_unknown_document_is_invalid_document(ssm: Any, target: str) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.send_command(InstanceIds=[target], DocumentName="NoSuchDocument")

    assert error_code(caught) == "InvalidDocument"


@pytest.mark.parametrize("version", ["1", "$DEFAULT", "$LATEST"])
def test_send_accepts_the_registered_version(ssm: Any, target: str, version: str) -> None:
    command = ssm.send_command(InstanceIds=[target], DocumentName=DOCUMENT, DocumentVersion=version)

    assert command["Command"]["DocumentVersion"] == version


def test_send_with_unknown_version_is_invalid_document_version(ssm: Any, target: str) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.send_command(InstanceIds=[target], DocumentName=DOCUMENT, DocumentVersion="2")

    assert error_code(caught) == "InvalidDocumentVersion"


@pytest.fixture
def parameter_document(emulator: SsmEmulator) -> str:
    emulator.register_document("Parameter-Doc", shell_document(["true"], CHECKED_PARAMETERS))
    return "Parameter-Doc"


def test_valid_parameters_are_accepted(ssm: Any, target: str, parameter_document: str) -> None:
    parameters = {"Action": ["refresh"], "Hosts": ["a.example,b.example"]}

    command = ssm.send_command(InstanceIds=[target], DocumentName=parameter_document, Parameters=parameters)

    assert command["Command"]["Parameters"] == parameters


@pytest.mark.parametrize(
    ("parameters", "complaint"),
    [
        ({"Hosts": ["a.example"], "Nope": ["x"]}, "Nope"),  # unknown parameter
        ({"Action": ["refresh"]}, "Hosts"),  # required (no default) parameter missing
        ({"Hosts": ["a.example"], "Action": ["delete"]}, "allowed values"),
        ({"Hosts": ["a.example; rm -rf /"]}, "allowed pattern"),
        ({"Hosts": ["a.example", "b.example"]}, "exactly one value"),  # String takes one value
    ],
)
@pytest.mark.usefixtures("emulator")
def test_invalid_parameters_are_rejected_before_anything_runs(
    ssm: Any, target: str, parameter_document: str, parameters: Any, complaint: str
) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.send_command(InstanceIds=[target], DocumentName=parameter_document, Parameters=parameters)

    assert error_code(caught) == "InvalidParameters"
    assert complaint in caught.value.response["Error"]["Message"]
    assert ssm.list_commands()["Commands"] == []


def test_the_stacks_document_accepts_its_own_parameters(
    ssm: Any, emulator: SsmEmulator, synthesized_template: Template
) -> None:
    executor = CannedExecutor(stdout="{}")
    # An agent that exports ENV_VAR parameters (3.3.2746.0 on; older ones: test_parameter_interpolation).
    emulator.register_instance(instance_id(7), executor, agent_version="3.3.2746.0")
    emulator.register_document("EcrFleetAuth-Document", document_content(synthesized_template))
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

    ssm.send_command(
        InstanceIds=[instance_id(7)],
        DocumentName="EcrFleetAuth-Document",
        Parameters={"Action": ["refresh"], "Registries": [registry]},
    )
    assert emulator.wait_idle(10)

    assert executor.last_env["SSM_Action"] == "refresh"
    assert executor.last_env["SSM_Registries"] == registry
    assert executor.last_env["SSM_Users"] == "auto"  # the document's default
    assert set(executor.last_env) == {
        "SSM_Action",
        "SSM_Registries",
        "SSM_Users",
        "SSM_HelperVersion",
        "SSM_ReleaseBaseUrl",
        "SSM_KeepUserDockerLogin",
    }
    with pytest.raises(ClientError) as caught:
        ssm.send_command(
            InstanceIds=[instance_id(7)],
            DocumentName="EcrFleetAuth-Document",
            Parameters={"Registries": [registry + ";id"]},
        )
    assert error_code(caught) == "InvalidParameters"


def test_only_schema_2_2_documents_are_accepted(ssm: Any) -> None:
    old = {**shell_document(["true"]), "schemaVersion": "1.2"}

    with pytest.raises(ClientError) as caught:
        ssm.create_document(Name="Old-Doc", Content=json.dumps(old))

    assert error_code(caught) == "InvalidDocumentSchemaVersion"


def test_list_documents_by_owner_and_name_prefix_pages(ssm: Any, emulator: SsmEmulator) -> None:
    """ListDocuments' Filters (DocumentKeyValuesFilter, SSM API reference): "If you use Name as a key, you
    can use a name prefix to return a list of documents"; ``Owner`` ``Self`` gives the account's own."""
    for suffix in ("0badc0de", "1badc0de", "2badc0de"):
        emulator.register_document(f"Stack-Agent-{suffix}", shell_document(["true"]))
    emulator.register_document("Other-Agent-0badc0de", shell_document(["true"]))
    pages = ssm.get_paginator("list_documents").paginate(
        Filters=[{"Key": "Owner", "Values": ["Self"]}, {"Key": "Name", "Values": ["Stack-Agent-"]}],
        PaginationConfig={"PageSize": 2},
    )
    found = [identifier for page in pages for identifier in page["DocumentIdentifiers"]]
    assert [d["Name"] for d in found] == [
        "Stack-Agent-0badc0de",
        "Stack-Agent-1badc0de",
        "Stack-Agent-2badc0de",
    ]
    assert all(d["DocumentType"] == "Command" and "CreatedDate" in d for d in found)
    amazon = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])
    assert amazon["DocumentIdentifiers"] == []
