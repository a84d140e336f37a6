"""The boto3 calls the command tests make again and again."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.ssm_emulator import DOCUMENT


def send(ssm: Any, **request: Any) -> str:
    command_id: str = ssm.send_command(DocumentName=request.pop("DocumentName", DOCUMENT), **request)[
        "Command"
    ]["CommandId"]
    return command_id


def command(ssm: Any, command_id: str) -> dict[str, Any]:
    (found,) = ssm.list_commands(CommandId=command_id)["Commands"]
    return dict(found)


def invocations(ssm: Any, command_id: str) -> dict[str, dict[str, Any]]:
    pages = ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=True)
    return {item["InstanceId"]: item for page in pages for item in page["CommandInvocations"]}


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = caught.value.response["Error"]["Code"]
    return code


def wait_for_details(ssm: Any, command_id: str, instance: str, details: str, timeout: float = 5) -> bool:
    """Poll until an invocation shows ``details`` (the service offers nothing better to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if invocations(ssm, command_id)[instance]["StatusDetails"] == details:
            return True
        time.sleep(0.02)
    return False
