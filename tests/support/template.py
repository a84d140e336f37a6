"""Reading a synthesized CloudFormation template the way the tests need it."""

from __future__ import annotations

from localfleet.synthesized_stack import (
    PROJECT_ROOT,
    Template,
    default_context,
    document_content,
    only,
    resolved_runner_environment,
    resources,
    runner_environment,
    runner_function,
    synthesize,
)

__all__ = [
    "PROJECT_ROOT",
    "Template",
    "default_context",
    "document_content",
    "only",
    "resolved_runner_environment",
    "resources",
    "run_command_script",
    "runner_environment",
    "runner_function",
    "synthesize",
]


def run_command_script(template: Template) -> str:
    """The document's Linux step as the SSM agent writes it to _script.sh."""
    (step,) = [s for s in document_content(template)["mainSteps"] if s["action"] == "aws:runShellScript"]
    return "\n".join(step["inputs"]["runCommand"]) + "\n"
