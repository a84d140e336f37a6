"""The SSM Command document that runs the on-instance agent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack, aws_ssm
from constructs import Construct

from ecr_fleet_auth.shared import contract

from .script import run_command_lines

SCHEMA_VERSION = "2.2"
MAX_CONTENT_BYTES = 64 * 1024
# The runner pins this version: a replaced document (new content) always starts at 1,
# so the pin is the content this stack deployed, whatever is edited by hand later.
DEPLOYED_VERSION = "1"


@dataclass(frozen=True)
class ShellStep:
    """One platform's step; Windows would add a PowerShell step beside the Linux one."""

    name: str
    action: str
    platform: str
    lines: list[str]

    def render(self, timeout_seconds: int) -> dict[str, Any]:
        return {
            "action": self.action,
            "name": self.name,
            "precondition": {"StringEquals": ["platformType", self.platform]},
            "inputs": {"runCommand": self.lines, "timeoutSeconds": timeout_seconds},
        }


def document_parameters() -> dict[str, dict[str, Any]]:
    parameters: dict[str, dict[str, Any]] = {}
    for parameter in contract.DOCUMENT_PARAMETERS:
        spec: dict[str, Any] = {
            "type": "String",
            "description": parameter.description,
            "interpolationType": "ENV_VAR",
        }
        if parameter.default is not None:
            spec["default"] = parameter.default
        if parameter.allowed_values is not None:
            spec["allowedValues"] = list(parameter.allowed_values)
        else:
            spec["allowedPattern"] = parameter.allowed_pattern
        parameters[parameter.name] = spec
    return parameters


def document_content(steps: list[ShellStep], execution_timeout_seconds: int) -> dict[str, Any]:
    content = {
        "schemaVersion": SCHEMA_VERSION,
        "description": (
            "ecr-fleet-auth: keep docker's ECR login working (refresh, helper, check). "
            "Prints one JSON result line; logs go to stderr."
        ),
        "parameters": document_parameters(),
        "mainSteps": [step.render(execution_timeout_seconds) for step in steps],
    }
    size = len(json.dumps(content).encode())
    if size > MAX_CONTENT_BYTES:
        raise ValueError(f"document content is {size} bytes; SSM accepts at most {MAX_CONTENT_BYTES}")
    return content


def agent_document_content(execution_timeout_seconds: int) -> dict[str, Any]:
    """The document's content: one Linux step assembled from agent/ (the top-level folder)."""
    steps = [
        ShellStep(
            name="ecrFleetAuthLinux",
            action="aws:runShellScript",
            platform="Linux",
            lines=run_command_lines(execution_timeout_seconds),
        )
    ]
    return document_content(steps, execution_timeout_seconds)


def content_named(prefix: str, content: dict[str, Any]) -> str:
    """``<prefix>-<first 8 hex of the content's SHA-256>``: a name that changes with the content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return contract.content_version_name(prefix, hashlib.sha256(canonical).hexdigest())


class AgentDocument(Construct):
    """Command document whose shell step is assembled from agent/ (the top-level folder).

    ``name_prefix`` gives it a fixed name, ``<prefix>-<sha8 of its content>``: where the runner
    cannot read the name from the stack (member accounts), it computes it at synth.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        execution_timeout_seconds: int,
        name_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        content = agent_document_content(execution_timeout_seconds)
        # No fixed Name by default: a content change replaces the document under a new generated
        # name, which a fixed name would make fail. A prefixed name carries the content's hash, so a
        # content change is a new name too and the replacement works the same way.
        self.document = aws_ssm.CfnDocument(
            self,
            "Document",
            document_type="Command",
            document_format="JSON",
            content=content,
            name=None if name_prefix is None else content_named(name_prefix, content),
            update_method="Replace",
        )
        self.document_name: str = self.document.name or self.document.ref
        self.document_version = DEPLOYED_VERSION
        stack = Stack.of(self)
        self.document_arn: str = stack.format_arn(
            service="ssm", resource="document", resource_name=self.document_name
        )
