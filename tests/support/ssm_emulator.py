"""The SSM emulator's tests' helpers: real boto3 clients against an emulator, and small documents to send."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from localfleet.ssm import SsmEmulator

REGION = "eu-west-1"
DOCUMENT = "LocalFleetTest"


def client_for(emulator: SsmEmulator) -> Any:
    return boto3.client(
        "ssm",
        endpoint_url=emulator.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def shell_document(
    run_command: list[str],
    parameters: dict[str, Any] | None = None,
    timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """A schemaVersion 2.2 document with one Linux shell step, like the stack's."""
    inputs: dict[str, Any] = {"runCommand": run_command}
    if timeout_seconds is not None:
        inputs["timeoutSeconds"] = timeout_seconds
    return {
        "schemaVersion": "2.2",
        "description": "test document",
        "parameters": parameters if parameters is not None else {"Action": ACTION},
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "linuxStep",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": inputs,
            }
        ],
    }


ACTION: dict[str, Any] = {
    "type": "String",
    "default": "check",
    "allowedValues": ["refresh", "helper", "check"],
    "interpolationType": "ENV_VAR",
}
# One parameter of each kind SendCommand checks: allowedValues, a required allowedPattern,
# and one without interpolationType.
CHECKED_PARAMETERS: dict[str, Any] = {
    "Action": ACTION,
    "Hosts": {
        "type": "String",
        "allowedPattern": "^[a-z0-9.]+(,[a-z0-9.]+)*$",
        "interpolationType": "ENV_VAR",
    },
    "Plain": {"type": "String", "default": "p"},
}


def instance_id(number: int) -> str:
    return f"i-{number:017x}"
