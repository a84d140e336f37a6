"""Shareable test events for the runner in the Lambda console.

The console keeps shareable events as an OpenAPI schema named
``_<function name>-schema`` in the EventBridge Schemas registry
``lambda-testevent-schemas``; each example is one event a user can pick. The
events are the JSON files in ``infra/console_events/`` (tests validate them
against the runner's event model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Stack, aws_eventschemas, aws_iam, aws_lambda
from aws_cdk import custom_resources as cr
from constructs import Construct

from .nag import acknowledge

EVENTS_DIR = Path(__file__).parent / "console_events"
REGISTRY_NAME = "lambda-testevent-schemas"
# The construct id aws-cdk-lib gives the singleton provider of every AwsCustomResource.
AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


def console_events() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(EVENTS_DIR.glob("*.json"))}


def schema_content(events: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "openapi": "3.0.0",
        "info": {"version": "1.0.0", "title": "Event"},
        "paths": {},
        "components": {
            "schemas": {"Event": {"type": "object"}},
            "examples": {name: {"value": event} for name, event in events.items()},
        },
    }


class ConsoleTestEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, function: aws_lambda.IFunction) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # The console creates this registry the first time anyone saves a shareable event;
        # create it if missing and leave it (other functions' events live there) on delete.
        registry = cr.AwsCustomResource(
            self,
            "Registry",
            on_create=cr.AwsSdkCall(
                service="schemas",
                action="CreateRegistry",
                parameters={"RegistryName": REGISTRY_NAME},
                physical_resource_id=cr.PhysicalResourceId.of(REGISTRY_NAME),
                ignore_error_codes_matching="ConflictException",
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    aws_iam.PolicyStatement(
                        actions=["schemas:CreateRegistry"],
                        resources=[
                            stack.format_arn(
                                service="schemas", resource="registry", resource_name=REGISTRY_NAME
                            )
                        ],
                    )
                ]
            ),
            install_latest_aws_sdk=False,
        )
        self.schema = aws_eventschemas.CfnSchema(
            self,
            "Schema",
            registry_name=REGISTRY_NAME,
            schema_name=f"_{function.function_name}-schema",
            type="OpenApi3",
            description="ecr-fleet-auth: shareable test events for the runner",
            content=json.dumps(schema_content(console_events())),
        )
        self.schema.node.add_dependency(registry)
        # AwsCustomResource runs in one provider function shared by the whole stack.
        provider = stack.node.try_find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
        assert provider is not None
        acknowledge(
            provider,
            "AwsSolutions-IAM4",
            applies_to=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ],
            reason="The CDK's AwsCustomResource provider logs with the basic execution role; it only creates "
            "the test-event registry at deploy time.",
        )
