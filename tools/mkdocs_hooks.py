"""The documentation site's generated parts, rendered from the code when MkDocs builds the site.

``mkdocs.yml`` loads this file as a hook. A page asks for a generated part with an HTML comment,
``<!-- reference: settings -->``, which ``on_page_markdown`` replaces with the part rendered from
the code that defines it (the settings table, the next steps, the contract's names and shapes), so
no copy of those tables is committed and none can drift. An unknown name fails the build.
``on_files`` shows ``localfleet/README.md`` as the page ``development/simulator.md``: the
simulator's own description stays beside its code.

MkDocs loads this file by its path, so it imports only installed packages (the virtualenv's): the
runner's, and of the constructs' (``ecr_fleet_auth_cdk``) only the props and the resource props,
which import nothing but the standard library; never ``tools`` or ``tests``, nor anything that
starts the CDK.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs.structure.files import File

from ecr_fleet_auth.aws import publishing
from ecr_fleet_auth.shared import contract, settings
from ecr_fleet_auth.shared.events import ACCEPTED_FORMS, RunRequest
from ecr_fleet_auth.shared.reasons import Reason
from ecr_fleet_auth.shared.report import InstanceResult, Report, TargetResult
from ecr_fleet_auth.shared.troubleshooting import DEFAULT_NEXT_STEP, NEXT_STEPS
from ecr_fleet_auth_cdk.props import EcrFleetAuthProps
from ecr_fleet_auth_cdk.resource_props import RESOURCE_PROPS

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

# A generated part, optionally followed by a note for readers of the unbuilt page (on GitHub, in an
# editor: an HTML comment shows nothing there) up to ``<!-- /reference -->``; the build replaces both.
MARKER = re.compile(
    r"<!-- reference: ([a-z-]+) -->(?:\n(?:(?!<!-- reference:).)*?<!-- /reference -->)?", re.DOTALL
)
SIMULATOR_README = "localfleet/README.md"
SIMULATOR_PAGE = "development/simulator.md"


# --- Markdown helpers ---


def _cell(text: str) -> str:
    """``text`` as one table cell. Outside code spans a bare ``|`` would end the cell (escaped) and
    a bare ``<name>`` would be taken for an HTML tag (written as text); inside them MkDocs' tables
    show a ``|`` as it is, and an escaped one with its backslash, so the escape is dropped."""
    parts = re.split(r"(`[^`]*`)", text)
    for index, part in enumerate(parts):
        if index % 2:
            parts[index] = part.replace("\\|", "|")
        else:
            escaped = part.replace("<", "&lt;").replace(">", "&gt;")
            parts[index] = re.sub(r"(?<!\\)\|", r"\\|", escaped)
    return "".join(parts)


def _code(value: str) -> str:
    return f"`{value}`"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _json_block(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2) + "\n```"


# --- the configuration reference ---


def settings_table() -> str:
    """One row per setting a user gives (cdk.json context), in the table's order."""
    rows = [(_code(s.key), _code(json.dumps(s.default)), s.form, s.doc) for s in settings.CONTEXT_SETTINGS]
    return _table(("key", "default", "accepted", "meaning"), rows)


def document_defaults_table() -> str:
    """The document's own defaults beside the settings that fill each parameter."""
    filled_by = {s.parameter: s for s in settings.SETTINGS if s.parameter is not None}
    rows = []
    for parameter in contract.DOCUMENT_PARAMETERS:
        setting = filled_by[parameter.name]
        default = _code(parameter.default) if parameter.default is not None else "none (required)"
        rows.append((_code(parameter.name), default, _code(setting.key), _code(json.dumps(setting.default))))
    return _table(("parameter", "document default", "setting", "setting default"), rows)


# --- the construct's props ---


def _prop_type(name: str) -> str:
    """A prop's type as ``EcrFleetAuthProps`` declares it, a closed set of the contract's spelt out
    (``contract.Action`` as ``Literal["refresh", ...]``, a union of literals as one)."""
    annotation: str = EcrFleetAuthProps.__annotations__[name].__forward_arg__.replace("'", '"')

    def spelt_out(match: re.Match[str]) -> str:
        values = typing.get_args(getattr(contract, match[1]))
        return "Literal[" + ", ".join(json.dumps(value) for value in values) + "]"

    parts = [re.sub(r"contract\.(\w+)", spelt_out, part) for part in annotation.split(" | ")]
    if len(parts) > 1 and all(part.startswith("Literal[") for part in parts):
        return "Literal[" + ", ".join(part[len("Literal[") : -1] for part in parts) + "]"
    return " | ".join(parts)


def construct_props_table() -> str:
    """``EcrFleetAuth``'s props: one per setting a construct takes (the settings table's rows, in
    snake_case), then the resources of the app it may be handed. For a page beside the
    configuration reference: a meaning's link to one of its sections points there."""

    def meaning(doc: str) -> str:
        return doc.replace("](#", "](configuration.md#")

    rows = [
        (
            _code(s.field),
            _code(_prop_type(s.field)),
            _code(repr(s.default)),
            s.form,
            meaning(s.doc),
            _code(s.key),
        )
        for s in settings.PROP_SETTINGS
    ]
    resources = [(_code(p.name), _code(p.type), p.doc) for p in RESOURCE_PROPS]
    return (
        _table(("prop", "type", "default", "accepted", "meaning", "`cdk.json` key"), rows)
        + "\n\nWhat the app already has (no `cdk.json` key):\n\n"
        + _table(("prop", "type", "meaning"), resources)
    )


# --- troubleshooting ---


def next_steps_table() -> str:
    """Every reason code with its next step, as the notification e-mail gives it."""
    rows = [(_code(reason), step) for reason, step in NEXT_STEPS.items()]
    return _table(("reason", "next step"), rows) + f"\n\nAny other reason: {_cell(DEFAULT_NEXT_STEP)}"


# --- the contract ---


def document_parameters_table() -> str:
    rows = [
        (
            _code(p.name),
            _code(f"$SSM_{p.name}"),
            _code(p.default) if p.default is not None else "none (required)",
            p.accepted_form,
            p.description,
        )
        for p in contract.DOCUMENT_PARAMETERS
    ]
    table = _table(("parameter", "on the instance", "default", "accepted", "description"), rows)
    checks = [
        f"- `{p.name}`: "
        + (
            "one of " + ", ".join(_code(v) for v in p.allowed_values)
            if p.allowed_values is not None
            else f"`allowedPattern` `{p.allowed_pattern}`"
        )
        for p in contract.DOCUMENT_PARAMETERS
    ]
    return table + "\n\nWhat SSM checks before the agent starts:\n\n" + "\n".join(checks)


def value_sets_table() -> str:
    """The closed sets of values (each a Literal type in ``contract``)."""
    runner_only = ", ".join(_code(s) for s in contract.INSTANCE_EVENT_SOURCES)
    rows = [
        ("action (event, report, result line)", ", ".join(map(_code, contract.ACTIONS))),
        ("instance `status` (report)", ", ".join(map(_code, contract.INSTANCE_STATUSES))),
        ("`outcome` (result line; report entries)", ", ".join(map(_code, contract.OUTCOMES))),
        ("per user and registry `state` (result line)", ", ".join(map(_code, contract.REGISTRY_STATES))),
        (
            "`source` (report; event)",
            ", ".join(map(_code, contract.SOURCES)) + f" (an event may not claim {runner_only})",
        ),
        ("target `status` (an organization's report)", ", ".join(map(_code, contract.TARGET_STATUSES))),
        ("`notifyPolicy`", ", ".join(map(_code, contract.NOTIFY_POLICIES))),
        ("reasons the runner gives", ", ".join(_code(r.value) for r in Reason)),
    ]
    return _table(("what", "values"), rows)


def event_json_schema() -> dict[str, Any]:
    """The event as JSON accepts it, from the pydantic model.

    The model's ``None`` stands for "omitted", and ``from_event`` refuses a ``null``, so each
    field's null alternative and null default are left out; the sources the runner sets itself
    are refused in an event, so they are left out of ``source``."""
    schema = RunRequest.model_json_schema()
    for name, field in schema["properties"].items():
        alternatives = [a for a in field.pop("anyOf", []) if a.get("type") != "null"]
        if alternatives:
            (alternative,) = alternatives
            field.update(alternative)
        if field.get("default", ...) is None:
            del field["default"]
        if name == "source":
            field["enum"] = [s for s in field["enum"] if s not in contract.INSTANCE_EVENT_SOURCES]
        field["description"] = ACCEPTED_FORMS[name]
    return schema


def event_fields_table() -> str:
    schema = event_json_schema()
    rows = []
    for name, field in schema["properties"].items():
        kind = field.get("type", "")
        if kind == "array":
            kind = f"array of {field['items']['type']}"
        rows.append((_code(name), kind, ACCEPTED_FORMS[name]))
    return _table(("field", "JSON type", "accepted"), rows)


def event_schema_block() -> str:
    return _json_block(event_json_schema())


def instance_event_patterns() -> str:
    """The stack's two rules' event patterns, with the default target tag."""
    key = settings.BY_KEY["targetTagKey"].default
    values = settings.BY_KEY["targetTagValues"].default
    return (
        "`InstanceRunning`:\n\n"
        + _json_block(contract.instance_running_pattern())
        + f"\n\n`TagGained` (with the default target tag `{key}` = {', '.join(map(_code, values))}):\n\n"
        + _json_block(contract.tag_gained_pattern(key, values))
    )


def _example_report(*, organization: bool) -> Report:
    """A report built by the runner's own classes: the shape is the code's, the values examples."""
    account, region = "123456789012", "eu-west-1"
    instances = (
        InstanceResult("i-0123456789abcdef0", "web-1", "succeeded", "changed", "ok",
                       account_id=account, region=region),
        InstanceResult("i-0fedcba9876543210", "web-2", "unreachable", None, Reason.SSM_CONNECTION_LOST.value,
                       account_id=account, region=region),
    )  # fmt: skip
    targets = None
    if organization:
        targets = (
            TargetResult(account, region, "reached"),
            TargetResult("222222222222", region, "unreachable", Reason.ROLE_NOT_ASSUMABLE.value,
                         {"error": "AccessDenied", "message": "..."}),
        )  # fmt: skip
    return Report(
        run_id="...",
        action="refresh",
        dry_run=False,
        source=contract.SOURCE_MANUAL,
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:02:00Z",
        instances=instances,
        command_ids=("...",),
        targets=targets,
    )


def report_example() -> str:
    return _json_block(_example_report(organization=False).to_dict())


def organization_report_example() -> str:
    return _json_block(_example_report(organization=True).to_dict())


def condensed_report_example() -> str:
    return (
        f"At most {publishing.LOGGED_INSTANCES:,} instances are listed in the log record, "
        f"{publishing.RETURNED_INSTANCES:,} in a return value.\n\n"
        + _json_block(publishing.condensed(_example_report(organization=False), publishing.LOGGED_INSTANCES))
    )


def claim_table() -> str:
    return (
        f"- partition key `{contract.CLAIM_KEY}` (one claim per instance);\n"
        f"- TTL attribute `{contract.CLAIM_TTL_ATTRIBUTE}`, in epoch seconds."
    )


def metrics_table() -> str:
    service, action = contract.METRIC_SERVICE_DIMENSION, contract.METRIC_ACTION_DIMENSION
    statuses = ", ".join(_code(contract.status_metric_name(s)) for s in contract.INSTANCE_STATUSES)
    rows = [
        (statuses, f"`{service}`, `{action}`", "instances that ended a run in each status"),
        (_code(contract.COMPLIANCE_NOT_WRITTEN_METRIC), f"`{service}`, `{action}`",
         "instances whose SSM Compliance the run could not write, else 0"),
        (_code(contract.RUN_DURATION_METRIC), f"`{service}`, `{action}`", "how long the run took"),
        (_code(contract.RUNS_FAILED_METRIC), f"`{service}`, `{action}`",
         "1 for a run that stopped before it could report per instance, else 0"),
        (_code(contract.TARGETS_UNREACHABLE_METRIC), f"`{service}`",
         "an organization's run: the (account, region) pairs it could not reach"),
        (_code(contract.EVENTS_REJECTED_METRIC), f"`{service}`", "events the runner rejected"),
    ]  # fmt: skip
    return (
        f"Namespace `{contract.METRIC_NAMESPACE}`; `{service}` is the stack's name (a construct's `name`)."
        "\n\n"
        + _table(("metric", "dimensions", "counts"), rows)
        + f"\n\nThe run's structured log record has the message `{contract.RUN_REPORT_LOG_MESSAGE}`."
    )


def runner_environment_table() -> str:
    rows = [
        (
            _code(s.env),
            f"the setting `{s.key}`" if s.context else "the stack, from a resource it creates",
            s.form,
            s.doc if not s.context else "see the configuration reference",
        )
        for s in settings.RUNNER_SETTINGS
    ]
    return _table(("variable", "set from", "accepted", "meaning"), rows)


def result_line_limits() -> str:
    return (
        f"- `schema` is `{contract.RESULT_SCHEMA}`.\n"
        f"- The line is at most {contract.RESULT_LINE_MAX_BYTES:,} bytes of compact JSON."
    )


PARTS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "construct-props": construct_props_table,
    "document-defaults": document_defaults_table,
    "next-steps": next_steps_table,
    "document-parameters": document_parameters_table,
    "value-sets": value_sets_table,
    "event-fields": event_fields_table,
    "event-schema": event_schema_block,
    "instance-event-patterns": instance_event_patterns,
    "report-example": report_example,
    "organization-report-example": organization_report_example,
    "condensed-report-example": condensed_report_example,
    "metrics": metrics_table,
    "runner-environment": runner_environment_table,
    "result-line-limits": result_line_limits,
    "claim-table": claim_table,
}


def expand(markdown: str) -> str:
    """``markdown`` with every ``<!-- reference: NAME -->`` replaced by its part."""

    def part(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PARTS:
            raise ValueError(f"unknown generated part {name!r}; known: {', '.join(PARTS)}")
        return PARTS[name]()

    return MARKER.sub(part, markdown)


# --- MkDocs' hook functions ---


def on_page_markdown(markdown: str, **_: Any) -> str:
    return expand(markdown)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    files.append(File.generated(config, SIMULATOR_PAGE, abs_src_path=str(root / SIMULATOR_README)))
    return files
