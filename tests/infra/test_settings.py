"""The settings table (ecr_fleet_auth/shared/settings.py) against everything that repeats or shows it.

cdk.json's context, the configuration reference as the site renders it, ``DeploymentConfig``,
``RunnerSettings``, the runner's environment in the template, the event model and the console
events, and the document's own parameter defaults (shown in the configuration reference and the
contract).
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest

from ecr_fleet_auth.run.runner import RunOptions
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.events import RunRequest
from ecr_fleet_auth.shared.invocations import InvalidEvent
from ecr_fleet_auth.shared.settings import (
    BY_KEY,
    CONTEXT_SETTINGS,
    RUNNER_SETTINGS,
    SETTINGS,
    RunnerSettings,
    SettingsError,
)
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.console_events import console_events
from tests.support.docs import rendered_page, section, table_rows
from tests.support.template import Template, default_context, document_content

# Deployed stacks and users' cdk.json files depend on these names: never rename one.
RUNNER_VARIABLES = [
    "STACK_NAME",
    "TARGET_TAG_KEY",
    "TARGET_TAG_VALUES",
    "ACTION",
    "REGISTRIES",
    "USERS",
    "HELPER_VERSION",
    "RELEASE_BASE_URL",
    "KEEP_USER_DOCKER_LOGIN",
    "MAX_CONCURRENCY",
    "MAX_ERRORS",
    "DELIVERY_TIMEOUT_SECONDS",
    "EXECUTION_TIMEOUT_SECONDS",
    "WAIT_SECONDS",
    "NOTIFY_POLICY",
    "NEW_INSTANCE_ACTION",
    "NEW_INSTANCE_MAX_CONCURRENCY",
    "NEW_INSTANCE_READINESS_SECONDS",
    "ORGANIZATIONAL_UNIT_IDS",
    "MEMBER_ACCOUNTS",
    "MEMBER_REGIONS",
    "MEMBER_ROLE_NAME",
    "STACK_SET_CALL_AS",
    "DOCUMENT_NAME",
    "DOCUMENT_VERSION",
    "OUTPUT_LOG_GROUP",
    "TOPIC_ARN",
    "STACK_SET_NAME",
    "MEMBER_DOCUMENT_NAME",
    "CLAIM_TABLE_NAME",
    "RUNS_BUCKET_NAME",
]
# Event fields that override a setting (runner.RunOptions.resolve), by the setting's key.
EVENT_OVERRIDES = {
    "action": "action",
    "registries": "registries",
    "users": "users",
    "wait_seconds": "waitSeconds",
}
# The document's own defaults, as the documentation states them. They apply only to a hand-run of the
# document: the runner always sends every parameter.
DOCUMENT_DEFAULTS = {
    contract.ACTION: "check",
    contract.REGISTRIES: None,
    contract.USERS: contract.AUTO_USERS,
    contract.HELPER_VERSION: contract.DEFAULT_HELPER_VERSION,
    contract.RELEASE_BASE_URL: contract.DEFAULT_RELEASE_BASE_URL,
    contract.KEEP_USER_DOCKER_LOGIN: "false",
}


def _as_parameter(default: Any) -> Any:
    """A setting's default as a document parameter value (lists comma-separated, booleans true/false)."""
    if isinstance(default, bool):
        return contract.BOOLEAN_VALUES[default]
    return ",".join(default) if isinstance(default, list) else default


def _configuration_reference() -> str:
    return rendered_page("reference/configuration.md")


@pytest.mark.parametrize("key", [s.key for s in SETTINGS if s.form == "true or false"])
def test_a_boolean_is_true_or_false_as_the_table_says(key: str) -> None:
    parse = BY_KEY[key].parse
    # cdk.json holds JSON booleans; `cdk -c key=value` gives strings.
    assert [parse(True), parse(False), parse("true"), parse("false")] == [True, False, True, False]
    for raw in ("TRUE", "False", "yes", "1", 1, ""):
        with pytest.raises(ValueError, match="not a boolean"):
            parse(raw)
    with pytest.raises(
        SettingsError, match=rf"{key}='False': not a boolean \(lower case\); expected true or false"
    ):
        DeploymentConfig.from_context({key: "False"}.get)


def test_names_are_one_name_in_three_spellings() -> None:
    for setting in SETTINGS:
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", setting.key), setting.key
        assert setting.field == re.sub(r"([A-Z])", r"_\1", setting.key).lower()
        assert setting.env == setting.field.upper()
    assert len(BY_KEY) == len(SETTINGS), "keys are unique"
    assert [setting.env for setting in RUNNER_SETTINGS] == RUNNER_VARIABLES


def test_deployment_config_and_runner_settings_are_views_of_the_table() -> None:
    assert [f.name for f in fields(DeploymentConfig)] == [s.field for s in CONTEXT_SETTINGS]
    assert [f.name for f in fields(RunnerSettings)] == [s.field for s in RUNNER_SETTINGS]


def test_every_default_is_accepted_and_has_the_declared_type() -> None:
    config = DeploymentConfig.from_context(lambda key: None)
    for setting in CONTEXT_SETTINGS:
        value = getattr(config, setting.field)
        expected = tuple(setting.default) if isinstance(setting.default, list) else setting.default
        assert value == expected, setting.key


def test_the_runner_reads_back_what_the_stack_writes() -> None:
    config = DeploymentConfig.from_context(default_context().get)
    stack_values = {
        "registries": ("123456789012.dkr.ecr.eu-west-1.amazonaws.com",),
        "document_name": "EcrFleetAuth-AgentDocument-abc",
        "document_version": "1",
        "stack_set_name": "EcrFleetAuth-Members",
        "member_document_name": "EcrFleetAuth-Agent-0123abcd",
        "output_log_group": "group",
        "topic_arn": "arn:aws:sns:eu-west-1:123456789012:t",
        "claim_table_name": "EcrFleetAuth-NewInstanceClaimsTable-abc",
        "runs_bucket_name": "ecrfleetauth-organizationrunruns-abc",
    }
    environment = config.runner_environment(**stack_values)
    assert list(environment) == RUNNER_VARIABLES
    read = RunnerSettings.from_environment(environment)
    for setting in RUNNER_SETTINGS:
        expected = stack_values.get(setting.field, getattr(config, setting.field, None))
        assert getattr(read, setting.field) == expected, setting.key
    with pytest.raises(ValueError, match="not runner settings: regions"):
        config.runner_environment(**stack_values, regions=("eu-west-1",))


def test_a_variable_left_out_takes_the_tables_default() -> None:
    read = RunnerSettings.from_environment({"DOCUMENT_NAME": "doc", "REGISTRIES": "public.ecr.aws"})
    for setting in RUNNER_SETTINGS:
        if setting.key not in ("documentName", "registries"):
            expected = tuple(setting.default) if isinstance(setting.default, list) else setting.default
            assert getattr(read, setting.field) == expected, setting.key


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"ACTION": "reboot"}, "ACTION='reboot': not one of the choices; expected one of refresh, helper"),
        ({"WAIT_SECONDS": "900"}, "WAIT_SECONDS='900': out of range; expected a whole number from 0 to 840"),
        ({"DOCUMENT_NAME": None}, "DOCUMENT_NAME=None: not set"),
        ({"REGISTRIES": ""}, "REGISTRIES='': names no registry"),
    ],
)
def test_a_bad_runner_environment_names_the_variable(environment: dict[str, Any], expected: str) -> None:
    base = {"DOCUMENT_NAME": "doc", "REGISTRIES": "public.ecr.aws"}
    given = {k: v for k, v in {**base, **environment}.items() if v is not None}
    with pytest.raises(SettingsError) as error:
        RunnerSettings.from_environment(given)
    assert expected in str(error.value)


def test_the_configuration_reference_has_every_setting() -> None:
    """The reference as the site renders it: one row per setting, in the table's order, each with
    its default, accepted form and meaning (a missing or differing row names the setting)."""
    settings_section = _configuration_reference().split("\n## ")[0]
    rows = {row[0]: row for row in table_rows(settings_section)}
    for setting in CONTEXT_SETTINGS:
        expected = [f"`{setting.key}`", f"`{json.dumps(setting.default)}`", setting.form, setting.doc]
        expected = [cell.replace("\\|", "|") for cell in expected]
        assert rows.get(f"`{setting.key}`") == expected, f"the configuration reference lacks {setting.key}"
    assert list(rows) == [f"`{setting.key}`" for setting in CONTEXT_SETTINGS], "one row per setting, in order"


def test_template_environment_is_the_runner_settings(synthesized_template: Template) -> None:
    (function,) = [
        r["Properties"]
        for r in synthesized_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == "handler.handler"
    ]
    variables = function["Environment"]["Variables"]
    own = [name for name in variables if not name.startswith("POWERTOOLS_") and name != "LOG_LEVEL"]
    assert own == RUNNER_VARIABLES


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("action", [*contract.ACTIONS, "reboot", "Check"]),
        ("wait_seconds", [-1, 0, 600, 840, 841]),
        ("registries", [["public.ecr.aws"], ["docker.io"], ["123456789012.dkr.ecr.eu-west-1.amazonaws.com"]]),
        ("users", [["auto"], ["ec2-user", "jenkins"], ["auto", "jenkins"], ["root;id"]]),
    ],
)
def test_an_event_accepts_what_the_setting_it_overrides_accepts(field: str, values: list[Any]) -> None:
    setting = BY_KEY[EVENT_OVERRIDES[field]]
    for value in values:
        try:
            setting.parse(value)
            by_setting = True
        except ValueError:
            by_setting = False
        try:
            RunRequest.from_event({field: value})
            by_event = True
        except InvalidEvent:
            by_event = False
        assert by_event == by_setting, (field, value)


@pytest.mark.parametrize(("name", "event"), sorted(console_events().items()))
def test_console_events_override_settings_with_accepted_values(name: str, event: dict[str, Any]) -> None:
    for field, value in event.items():
        if field in EVENT_OVERRIDES:
            BY_KEY[EVENT_OVERRIDES[field]].parse(value)  # raises if the setting would refuse it
    assert set(event) <= {*EVENT_OVERRIDES, "dry_run", "instance_ids", "source"}, name


def test_the_runner_sends_every_document_parameter_from_a_setting() -> None:
    parameters = {setting.parameter: setting.key for setting in SETTINGS if setting.parameter}
    assert set(parameters) == set(contract.PARAMETERS_BY_NAME)
    read = RunnerSettings.from_environment({"DOCUMENT_NAME": "doc", "REGISTRIES": "public.ecr.aws"})
    spec = RunOptions.resolve(RunRequest.from_event({}), read).command_spec(read, "run-1", None)
    assert set(spec.parameters) == set(contract.PARAMETERS_BY_NAME), "document defaults never apply to a run"
    for name, key in parameters.items():
        if name != contract.REGISTRIES:  # empty there means the account's own registry
            assert spec.parameters[name] == _as_parameter(BY_KEY[key].default), name


def test_the_document_defaults_are_the_stated_ones(synthesized_template: Template) -> None:
    assert {p.name: p.default for p in contract.DOCUMENT_PARAMETERS} == DOCUMENT_DEFAULTS
    deployed = document_content(synthesized_template)["parameters"]
    assert {name: spec.get("default") for name, spec in deployed.items()} == DOCUMENT_DEFAULTS
    # Equal to the settings' defaults, except Action on purpose (a hand-run that names no action
    # only checks) and Registries (the stack's default is a deploy-time value).
    for setting in SETTINGS:
        if setting.parameter in (
            contract.USERS,
            contract.HELPER_VERSION,
            contract.RELEASE_BASE_URL,
            contract.KEEP_USER_DOCKER_LOGIN,
        ):
            assert DOCUMENT_DEFAULTS[setting.parameter] == _as_parameter(setting.default)
    assert DOCUMENT_DEFAULTS[contract.ACTION] == "check" != BY_KEY["action"].default == "refresh"


def test_the_configuration_reference_states_the_document_defaults() -> None:
    text = section(_configuration_reference(), "## The document's own defaults")
    rows = table_rows(text)
    for setting in SETTINGS:
        if setting.parameter is None:
            continue
        default = DOCUMENT_DEFAULTS[setting.parameter]
        stated = f"`{default}`" if default is not None else "none (required)"
        row = [f"`{setting.parameter}`", stated, f"`{setting.key}`", f"`{json.dumps(setting.default)}`"]
        assert row in rows, setting.parameter
    assert len(rows) == len(contract.DOCUMENT_PARAMETERS)
    assert "`check`" in text and "`refresh`" in text
