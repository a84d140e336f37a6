"""The stack as the local fleet needs it: synthesized in-process from cdk.json's context."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SOURCE = PROJECT_ROOT / "lambda_src"
# Where npm ci puts the Node.js package.json pins (and the CDK CLI).
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"
Template = dict[str, Any]


def use_pinned_node() -> None:
    """Put ``node_modules/.bin`` first on PATH, as make does: jsii (which starts ``node`` from PATH)
    and the CDK CLI then run on the Node.js package.json pins, not whatever the machine has."""
    entries = os.environ.get("PATH", "").split(os.pathsep)
    if str(NODE_BIN) not in entries:
        os.environ["PATH"] = os.pathsep.join([str(NODE_BIN), *entries])


def default_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    return context


def synthesize(overrides: dict[str, Any] | None = None, outdir: str | None = None) -> dict[str, Template]:
    """Synthesize the app in-process, cdk-nag included; returns the templates by stack id."""
    use_pinned_node()
    import aws_cdk as cdk  # noqa: PLC0415 - jsii starts a node process: only when synthesizing

    from app import build_app  # noqa: PLC0415

    # The CLI turns asset metadata on; it tells where each asset was staged in `outdir`.
    context = {**default_context(), "aws:cdk:enable-asset-metadata": True, **(overrides or {})}
    app = cdk.App(context=context, outdir=outdir)
    stacks = build_app(app)
    assembly = app.synth()
    return {stack.node.id: assembly.get_stack_artifact(stack.artifact_id).template for stack in stacks}


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def only(template: Template, resource_type: str) -> dict[str, Any]:
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def document_content(template: Template) -> dict[str, Any]:
    content: dict[str, Any] = only(template, "AWS::SSM::Document")["Properties"]["Content"]
    return content


def table_definitions(template: Template) -> list[dict[str, Any]]:
    """Each DynamoDB table of the template as CreateTable's arguments (without ``TableName``)."""
    return [
        {
            "KeySchema": table["Properties"]["KeySchema"],
            "AttributeDefinitions": table["Properties"]["AttributeDefinitions"],
            "BillingMode": table["Properties"].get("BillingMode", "PROVISIONED"),
        }
        for table in resources(template, "AWS::DynamoDB::Table").values()
    ]


def runner_function(template: Template) -> dict[str, Any]:
    """The runner function's resource (the one whose handler is the runner's)."""
    (function,) = [
        resource
        for resource in resources(template, "AWS::Lambda::Function").values()
        if resource["Properties"].get("Handler") == "handler.handler"
    ]
    return function


def runner_environment(template: Template) -> dict[str, Any]:
    """The runner function's environment variables as the template sets them (tokens unresolved)."""
    variables: dict[str, Any] = runner_function(template)["Properties"]["Environment"]["Variables"]
    return variables


def resolved_runner_environment(template: Template, deploy_time: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment with each deploy-time value (a reference) taken from `deploy_time`.

    A value CloudFormation would compute that `deploy_time` lacks is an error, not a guess.
    """
    resolved = {}
    for name, value in runner_environment(template).items():
        if isinstance(value, str):
            resolved[name] = value
        elif name in deploy_time:
            resolved[name] = deploy_time[name]
        else:
            raise ValueError(f"the runner's {name} is a deploy-time value ({value}) with no local value")
    return resolved


def resolve(value: Any, references: Mapping[str, str]) -> Any:
    """A template value with ``Ref``, ``Fn::GetAtt`` and ``Fn::Join`` worked out as CloudFormation
    would, each reference's value taken from ``references`` (``AWS::Partition``, a logical id, or
    ``<logical id>.<attribute>``); a reference it lacks is an error, not a guess."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return references[value["Ref"]]
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return references[f"{logical_id}.{attribute}"]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(resolve(part, references)) for part in parts)
        return {key: resolve(item, references) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, references) for item in value]
    return value


def member_template(outdir: str | Path, stack_id: str = "EcrFleetAuth") -> Template:
    """The member template an organization's central stack synthesized beside itself in ``outdir``."""
    path = Path(outdir) / f"{stack_id}.members" / "Members.template.json"
    template: Template = json.loads(path.read_text())
    return template
