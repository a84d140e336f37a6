"""Configuration from cdk.json context: defaults, overrides as -c strings, and clear failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_fleet_auth.shared.settings import CONTEXT_SETTINGS, SettingsError
from ecr_fleet_auth_cdk.config import DeploymentConfig
from tests.support.docs import rendered_page
from tests.support.template import default_context, only, resources, synthesize


def _config(**overrides: Any) -> DeploymentConfig:
    context = {**default_context(), **overrides}
    return DeploymentConfig.from_context(context.get)


def test_cdk_json_holds_every_setting_at_its_default() -> None:
    context = default_context()
    for setting in CONTEXT_SETTINGS:
        assert setting.key in context, f"cdk.json lacks {setting.key}"
        assert context[setting.key] == setting.default, setting.key
    # The CDK's own keys aside, cdk.json holds nothing the table does not know.
    assert set(context) - {"cli-telemetry"} == {setting.key for setting in CONTEXT_SETTINGS}


def test_the_configuration_reference_documents_every_setting() -> None:
    reference = rendered_page("reference/configuration.md")
    for setting in CONTEXT_SETTINGS:
        assert f"| `{setting.key}` |" in reference, f"the configuration reference lacks {setting.key}"


def test_defaults_without_any_context() -> None:
    config = DeploymentConfig.from_context(lambda key: None)
    assert config.target_tag_key == "ecr-fleet-auth"
    assert config.target_tag_values == ("enabled",)
    assert config.registries == ()
    assert config.users == ("auto",)
    assert config.notify_policy == "failures"
    assert config.reserved_concurrency == 0, "deployable on an account with little concurrency"


def test_command_line_strings_are_parsed() -> None:
    config = _config(
        registries="123456789012.dkr.ecr.eu-west-1.amazonaws.com,public.ecr.aws",
        targetTagValues="prod,staging",
        users="ec2-user,jenkins",
        maxConcurrency="25",
        deliveryTimeoutSeconds="120",
        scheduleEnabled="false",
        regions="eu-west-1,us-east-1",
    )
    assert config.registries == ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "public.ecr.aws")
    assert config.target_tag_values == ("prod", "staging")
    assert config.users == ("ec2-user", "jenkins")
    assert config.max_concurrency == "25"
    assert config.delivery_timeout_seconds == 120
    assert config.schedule_enabled is False
    assert config.regions == ("eu-west-1", "us-east-1")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("scheduleExpression", "every 6 hours", "rate(N minutes|hours|days)"),
        ("scheduleExpression", "rate(1 hours)", "rate(N minutes|hours|days)"),
        ("scheduleExpression", "cron(0 * * * *)", "cron(<6 fields>)"),
        ("scheduleTimeZone", "Mars/Olympus", "IANA time zone"),
        (
            "registries",
            ["docker.io"],
            "123456789012.dkr-ecr.eu-west-1.on.aws), public.ecr.aws or ecr-public.aws.com",
        ),
        ("registries", "123456789012.dkr.ecr.eu-west-1.amazonaws.com;id", "public.ecr.aws"),
        ("targetTagKey", "aws:secret", "a tag key"),
        ("targetTagKey", "", "a tag key"),
        ("targetTagValues", "a,b,c,d,e,f", "1-5 tag values"),
        ("targetTagValues", [], "1-5 tag values"),
        ("maxConcurrency", "0", "a number of instances or a percentage"),
        ("maxConcurrency", "150%", "a number of instances or a percentage"),
        ("maxErrors", "-1", "a number of errors"),
        ("notificationEmail", "ops-at-example", "an e-mail address"),
        ("notifyPolicy", "sometimes", "one of failures, always, never"),
        ("action", "reboot", "one of refresh, helper, check"),
        ("users", "root;id", "POSIX user names"),
        ("users", "auto,jenkins", "cannot be combined"),
        ("waitSeconds", 10_000, "a whole number from 0 to 840"),
        ("deliveryTimeoutSeconds", "ten", "a whole number from 30"),
        ("logRetentionDays", 29, "one of 1, 3, 5"),
        ("scheduleEnabled", "yes", "true or false"),
        ("regions", "mars-1", "region names"),
        ("releaseBaseUrl", "http://mirror.example.com", "an https:// URL"),
        ("helperVersion", "latest", "a release version X.Y.Z such as 0.12.0"),
        ("reservedConcurrency", "-1", "a whole number from 0 (none) to 1000"),
        ("reservedConcurrency", "one", "a whole number from 0 (none) to 1000"),
        ("reservedConcurrency", True, "a whole number from 0 (none) to 1000"),
    ],
)
def test_bad_value_names_the_setting_and_the_accepted_form(key: str, value: Any, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        _config(**{key: value})
    message = str(error.value)
    assert f"{key}=" in message
    assert expected in message
    assert len(message.splitlines()) == 2, "only the bad setting is reported"


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(SettingsError) as error:
        _config(action="x", notifyPolicy="y")
    assert "action=" in str(error.value) and "notifyPolicy=" in str(error.value)


def test_one_stack_per_region_with_the_same_stack_name() -> None:
    templates = synthesize({"regions": ["eu-west-1", "us-east-1"]})
    assert set(templates) == {"EcrFleetAuth-eu-west-1", "EcrFleetAuth-us-east-1"}


def test_explicit_registries_reach_the_runner_and_the_instance_policy() -> None:
    registries = ["210987654321.dkr.ecr.eu-central-1.amazonaws.com", "public.ecr.aws"]
    template = synthesize(
        {"registries": registries, "notificationEmail": "ops@example.com", "scheduleEnabled": False}
    )["EcrFleetAuth"]
    (function,) = [
        r["Properties"] for r in resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "handler.handler"
    ]  # fmt: skip
    assert function["Environment"]["Variables"]["REGISTRIES"] == ",".join(registries)
    policy = json.dumps(only(template, "AWS::IAM::ManagedPolicy")["Properties"]["PolicyDocument"])
    assert ":ecr:eu-central-1:210987654321:repository/*" in policy
    assert "ecr-public:GetAuthorizationToken" in policy
    subscription = only(template, "AWS::SNS::Subscription")["Properties"]
    assert subscription["Protocol"] == "email" and subscription["Endpoint"] == "ops@example.com"
    assert only(template, "AWS::Scheduler::Schedule")["Properties"]["State"] == "DISABLED"
