"""SSM Command documents: registration, parameter checks and what a step runs.

Only what the stack's document needs is modelled: schemaVersion 2.2 JSON
documents whose steps are ``aws:runShellScript`` with an optional
``platformType`` precondition.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...transport.endpoint import ServiceError

SUPPORTED_SCHEMA_VERSION = "2.2"
SHELL_ACTION = "aws:runShellScript"
# aws:runShellScript input "timeoutSeconds": "If not specified, the default is 3600 seconds".
DEFAULT_STEP_TIMEOUT_SECONDS = 3600
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True)
class DocumentParameter:
    name: str
    type: str
    description: str | None
    default: Any
    allowed_values: tuple[str, ...] | None
    allowed_pattern: str | None
    env_var: bool

    @classmethod
    def parse(cls, name: str, spec: Mapping[str, Any]) -> DocumentParameter:
        allowed = spec.get("allowedValues")
        return cls(
            name=name,
            type=spec.get("type", "String"),
            description=spec.get("description"),
            default=spec.get("default"),
            allowed_values=tuple(str(v) for v in allowed) if allowed is not None else None,
            allowed_pattern=spec.get("allowedPattern"),
            env_var=spec.get("interpolationType") == "ENV_VAR",
        )

    @property
    def required(self) -> bool:
        return self.default is None

    def default_values(self) -> list[str]:
        if isinstance(self.default, list):
            return [str(v) for v in self.default]
        return [self.default if isinstance(self.default, str) else json.dumps(self.default)]


@dataclass
class Document:
    name: str
    content: dict[str, Any]
    content_text: str
    version: str = "1"
    created: float = field(default_factory=time.time)

    @classmethod
    def from_content(cls, name: str, content: str | Mapping[str, Any]) -> Document:
        """Parse and check a document the way CreateDocument would (InvalidDocumentContent etc.)."""
        if isinstance(content, str):
            text = content
            try:
                parsed = json.loads(content)
            except ValueError as error:
                raise ServiceError("InvalidDocumentContent", f"JSON not well-formed: {error}") from None
        else:
            parsed = json.loads(json.dumps(content))
            text = json.dumps(parsed)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("mainSteps"), list):
            raise ServiceError("InvalidDocumentContent", "document content needs a mainSteps list")
        if parsed.get("schemaVersion") != SUPPORTED_SCHEMA_VERSION:
            # The service also accepts 1.2 and 2.0 Command documents; the emulator only runs 2.2.
            raise ServiceError(
                "InvalidDocumentSchemaVersion",
                f"schemaVersion {parsed.get('schemaVersion')!r}: "
                f"the emulator supports {SUPPORTED_SCHEMA_VERSION}",
            )
        document = cls(name=name, content=parsed, content_text=text)
        document.parameters()  # fail now on a malformed parameters block
        return document

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.content_text.encode()).hexdigest()

    def parameters(self) -> dict[str, DocumentParameter]:
        specs = self.content.get("parameters") or {}
        if not isinstance(specs, dict):
            raise ServiceError("InvalidDocumentContent", "parameters must be an object")
        return {name: DocumentParameter.parse(name, spec) for name, spec in specs.items()}

    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.content["mainSteps"]
        return steps

    def platform_types(self) -> list[str]:
        types: list[str] = []
        for step in self.steps():
            if step.get("action") == SHELL_ACTION:
                types += ["Linux", "MacOS"]
        return sorted(set(types))

    def accepts_version(self, version: str | None) -> bool:
        return version in (None, "$DEFAULT", "$LATEST", self.version)

    def resolve_parameters(self, given: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """Every document parameter's values: ``given`` checked like SendCommand, defaults filled in.

        Raises InvalidParameters for an unknown name, a missing required
        parameter, several values for a String, a value outside allowedValues
        or not matching allowedPattern — the checks the service makes before
        it accepts a command.
        """
        declared = self.parameters()
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ServiceError(
                "InvalidParameters",
                f"document {self.name} does not support parameters: {', '.join(unknown)}",
            )
        resolved: dict[str, list[str]] = {}
        for name, parameter in declared.items():
            if name in given:
                resolved[name] = list(given[name])
                _check_values(parameter, resolved[name])
            elif parameter.required:
                raise ServiceError("InvalidParameters", f"Parameter {name} is required")
            else:
                resolved[name] = parameter.default_values()  # CHOICE: defaults are not re-checked
        return resolved


def _check_values(parameter: DocumentParameter, values: list[str]) -> None:
    if parameter.type == "String" and len(values) != 1:
        raise ServiceError("InvalidParameters", f"Parameter {parameter.name} takes exactly one value")
    for value in values:
        if parameter.allowed_values is not None and value not in parameter.allowed_values:
            raise ServiceError(
                "InvalidParameters",
                f"Parameter {parameter.name} value {value!r} is not one of the allowed values "
                f"[{', '.join(parameter.allowed_values)}]",
            )
        # CHOICE: an unanchored search; the stack's patterns carry their own ^...$.
        if parameter.allowed_pattern is not None and not re.search(parameter.allowed_pattern, value):
            raise ServiceError(
                "InvalidParameters",
                f"Parameter {parameter.name} value {value!r} does not match the allowed pattern "
                f"{parameter.allowed_pattern}",
            )


@dataclass(frozen=True)
class StepPlan:
    """One step as the agent would run it on one instance."""

    name: str
    script: str
    env: dict[str, str]
    timeout_seconds: float
    skip_message: str | None = None  # precondition not met: the agent skips the step
    fail_message: str | None = None  # the agent cannot run the step at all


def plan_steps(
    document: Document, values: Mapping[str, list[str]], platform_type: str, agent_version: str
) -> list[StepPlan]:
    """The document's steps as an agent of ``agent_version`` on ``platform_type`` runs them.

    ``interpolationType: ENV_VAR`` gives the step ``SSM_<name>`` only from agent 3.3.2746.0 on
    (SSM User Guide, "Troubleshooting parameter handling issues": "Verify SSM Agent version is
    3.3.2746.0 or later ... Add fallback logic for older agent versions"); an older agent sets no
    variable. Every agent still replaces ``{{ name }}`` in the step ("Data elements and
    parameters": the ENV_VAR example's ``echo {{Message}}``, and allowedPattern "technically
    unnecessary" only where no ``{{ }}`` is used), so a ``{{ }}`` fallback runs on old agents.
    """
    parameters = document.parameters()
    env = {
        f"SSM_{name}": ",".join(values[name])
        for name, parameter in parameters.items()
        if parameter.env_var and sets_parameter_variables(agent_version)
    }
    return [_plan_step(step, values, env, platform_type) for step in document.steps()]


# The first SSM agent that sets SSM_<name> for ENV_VAR parameters.
ENV_VAR_INTERPOLATION_SINCE = (3, 3, 2746, 0)


def sets_parameter_variables(agent_version: str) -> bool:
    """Whether an agent of this version exports ``SSM_<name>`` (HARSHER: an unreadable version does not)."""
    try:
        version = tuple(int(part) for part in agent_version.split("."))
    except ValueError:
        return False
    return version >= ENV_VAR_INTERPOLATION_SINCE


def _plan_step(
    step: Mapping[str, Any], values: Mapping[str, list[str]], env: dict[str, str], platform_type: str
) -> StepPlan:
    name = str(step.get("name", step.get("action", "step")))
    precondition = step.get("precondition")
    if precondition is not None:
        condition = precondition.get("StringEquals")
        if (
            set(precondition) != {"StringEquals"}
            or not isinstance(condition, list)
            or condition[0] != "platformType"
        ):
            message = f"Unrecognized precondition(s): '{precondition}'. Step name: {name}"
            return StepPlan(name, "", {}, 0, fail_message=message)
        if condition[1] != platform_type:
            # amazon-ssm-agent skips the step with this output; when it aggregates the
            # document's status, "Skipped is a form of success".
            shown = f'"StringEquals": [{", ".join(condition)}]'
            message = f"Step execution skipped due to unsatisfied preconditions: '{shown}'. Step name: {name}"
            return StepPlan(name, "", {}, 0, skip_message=message)
    if step.get("action") != SHELL_ACTION:
        message = f"Plugin {step.get('action')} is not emulated. Step name: {name}"
        return StepPlan(name, "", {}, 0, fail_message=message)
    inputs = step.get("inputs", {})
    script = "\n".join(_substitute_lines(inputs.get("runCommand", []), values))
    timeout = substitute(str(inputs.get("timeoutSeconds", DEFAULT_STEP_TIMEOUT_SECONDS)), values)
    return StepPlan(name, script, dict(env), float(timeout))


def execution_timeout_seconds(document: Document, values: Mapping[str, list[str]]) -> float:
    """The document's execution timeout: its steps' ``timeoutSeconds`` added up (parameters filled in)."""
    total = 0.0
    for step in document.steps():
        timeout = step.get("inputs", {}).get("timeoutSeconds", DEFAULT_STEP_TIMEOUT_SECONDS)
        try:
            total += float(substitute(str(timeout), values))
        except ValueError:
            total += DEFAULT_STEP_TIMEOUT_SECONDS
    return total


def substitute(text: str, values: Mapping[str, list[str]]) -> str:
    """What the SSM agent does with `{{ Name }}`: the value (a list joined by commas)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return ",".join(values[name]) if name in values else match.group(0)

    return PLACEHOLDER.sub(replace, text)


def _substitute_lines(run_command: str | list[str], values: Mapping[str, list[str]]) -> list[str]:
    # A line that is exactly one StringList placeholder expands to the list's
    # lines, as AWS-RunShellScript's "runCommand": "{{ commands }}" relies on.
    lines = [run_command] if isinstance(run_command, str) else run_command
    out: list[str] = []
    for line in lines:
        whole = PLACEHOLDER.fullmatch(line.strip())
        if whole and whole.group(1) in values:
            out.extend(values[whole.group(1)])
        else:
            out.append(substitute(line, values))
    return out
