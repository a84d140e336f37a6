"""Reading a synthesized CloudFormation template the way the tests need it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from app import build_app

PROJECT_ROOT = Path(__file__).resolve().parents[2]
Template = dict[str, Any]


def default_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    return context


def synthesize(overrides: dict[str, Any] | None = None, outdir: str | None = None) -> dict[str, Template]:
    """Synthesize the app in-process, cdk-nag included; returns the templates by stack id."""
    app = cdk.App(context={**default_context(), **(overrides or {})}, outdir=outdir)
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


def run_command_script(template: Template) -> str:
    """The document's Linux step as the SSM agent writes it to _script.sh."""
    (step,) = [s for s in document_content(template)["mainSteps"] if s["action"] == "aws:runShellScript"]
    return "\n".join(step["inputs"]["runCommand"]) + "\n"
