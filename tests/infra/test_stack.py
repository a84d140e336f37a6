"""Fine-grained assertions on the synthesized stack: runner, IAM scoping, schedule, alarm."""

from __future__ import annotations

import json
import re
from importlib import metadata
from typing import Any

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.settings import RUNNER_SETTINGS, RunnerSettings, SettingsError
from ecr_fleet_auth_cdk.notifications import chat_configuration_name
from ecr_fleet_auth_cdk.runner_function import POWERTOOLS_LAYER_PARAMETER
from tests.support.lint import cfn_lint_findings
from tests.support.template import PROJECT_ROOT, Template, only, resources, synthesize


def _statements(template: Template, logical_id_prefix: str) -> list[dict[str, Any]]:
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and logical_id.startswith(
            logical_id_prefix
        ):
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _function(template: Template) -> dict[str, Any]:
    (function,) = [
        r["Properties"]
        for r in resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "handler.handler"
    ]
    return function


def test_runner_function_settings(synthesized_template: Template) -> None:
    function = _function(synthesized_template)
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["Timeout"] == 900
    assert function["TracingConfig"] == {"Mode": "Active"}
    log_group_ref = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert synthesized_template["Resources"][log_group_ref]["Properties"]["RetentionInDays"] == 30


def test_default_stack_reserves_no_concurrency(synthesized_template: Template) -> None:
    # Lambda refuses a reservation that leaves the account under its minimum unreserved
    # concurrency; accounts with a quota of 10 cannot reserve even 1.
    for function in resources(synthesized_template, "AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in function["Properties"]


def test_reserved_concurrency_is_a_setting() -> None:
    template = synthesize({"reservedConcurrency": "1"})["EcrFleetAuth"]
    assert _function(template)["ReservedConcurrentExecutions"] == 1


def _pin(text: str, name: str) -> str:
    (version,) = re.findall(rf"^{name}(?:\[[a-z,]+\])?==([0-9.]+)$", text, flags=re.MULTILINE | re.IGNORECASE)
    return version


def test_the_deployed_powertools_layer_is_the_release_the_tests_ran(synthesized_template: Template) -> None:
    pinned = _pin((PROJECT_ROOT / "constraints.txt").read_text(), "aws[-_]lambda[-_]powertools")
    assert _pin((PROJECT_ROOT / "requirements-dev.txt").read_text(), "aws-lambda-powertools") == pinned
    assert metadata.version("aws-lambda-powertools") == pinned, "the tests ran this release"
    (layer,) = _function(synthesized_template)["Layers"]
    parameter = synthesized_template["Parameters"][layer["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == POWERTOOLS_LAYER_PARAMETER
    assert parameter["Default"] == f"/aws/service/powertools/python/arm64/python3.14/{pinned}"
    assert "latest" not in json.dumps(synthesized_template["Parameters"])


def test_asynchronous_invocations_are_configured_on_purpose(synthesized_template: Template) -> None:
    invoke_config = only(synthesized_template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    # Function errors are not retried (a run reports its own failure); a throttled event
    # is kept for an hour, not the default six: a scheduled run starts at most 1 h late.
    assert invoke_config["MaximumRetryAttempts"] == 0
    assert invoke_config["MaximumEventAgeInSeconds"] == 3600


def test_runner_environment_is_a_valid_settings_set(synthesized_template: Template) -> None:
    variables = _function(synthesized_template)["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == contract.METRIC_SERVICE
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == contract.METRIC_NAMESPACE
    setting_names = {setting.env for setting in RUNNER_SETTINGS}
    assert setting_names <= set(variables), "every runner setting is set by the stack"
    assert variables["DOCUMENT_NAME"] == {
        "Ref": next(iter(resources(synthesized_template, "AWS::SSM::Document")))
    }
    assert variables["DOCUMENT_VERSION"] == "1"
    # Deploy-time values (tokens) replaced by examples, the rest must parse as the runner will.
    concrete = {k: v for k, v in variables.items() if isinstance(v, str)}
    concrete.update(
        DOCUMENT_NAME="EcrFleetAuth-AgentDocument-abc",
        REGISTRIES="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        OUTPUT_LOG_GROUP="group",
        TOPIC_ARN="arn:aws:sns:eu-west-1:123456789012:t",
    )
    settings = RunnerSettings.from_environment(concrete)
    assert settings.target_tag_key == "ecr-fleet-auth"
    assert settings.target_tag_values == ("enabled",)
    assert settings.max_concurrency == "10%"
    registries = json.dumps(variables["REGISTRIES"])
    assert "AWS::AccountId" in registries and "AWS::Region" in registries and "AWS::URLSuffix" in registries


def test_send_command_only_on_this_document_and_tagged_instances(synthesized_template: Template) -> None:
    statements = _statements(synthesized_template, "Runner")
    send = [s for s in statements if "ssm:SendCommand" in _actions(s)]
    assert len(send) == 2
    for statement in send:
        assert _actions(statement) == ["ssm:SendCommand"]
        assert statement["Resource"] != "*"
    (on_document,) = [s for s in send if "document" in json.dumps(s["Resource"])]
    document_id = next(iter(resources(synthesized_template, "AWS::SSM::Document")))
    assert {"Ref": document_id} in on_document["Resource"]["Fn::Join"][1]
    assert "Condition" not in on_document
    (on_instances,) = [s for s in send if s is not on_document]
    assert ":instance/*" in json.dumps(on_instances["Resource"])
    assert on_instances["Condition"] == {"StringEquals": {"ssm:resourceTag/ecr-fleet-auth": ["enabled"]}}


def test_runner_writes_compliance_only_on_its_accounts_instances(synthesized_template: Template) -> None:
    """SSM Compliance is written by the runner (docs/operating/compliance.md): PutComplianceItems on
    the account's instances and managed instances (ManagedInstance is "currently the only supported
    resource type", PutComplianceItems API reference), in no other statement, never on ``*``."""
    statements = _statements(synthesized_template, "Runner")
    (compliance,) = [s for s in statements if "ssm:PutComplianceItems" in _actions(s)]
    assert _actions(compliance) == ["ssm:PutComplianceItems"]
    arns = [json.dumps(resource) for resource in compliance["Resource"]]
    assert len(arns) == 2
    assert any('":ec2:"' in arn and ":instance/*" in arn for arn in arns)
    assert any('":ssm:"' in arn and ":managed-instance/*" in arn for arn in arns)
    for arn in arns:
        assert '{"Ref": "AWS::AccountId"}' in arn and '{"Ref": "AWS::Region"}' in arn, arn
    assert "Condition" not in compliance


def test_runner_reads_with_read_only_calls_and_publishes_to_its_topic(synthesized_template: Template) -> None:
    statements = _statements(synthesized_template, "Runner")
    wildcard_actions = {a for s in statements if s["Resource"] == "*" for a in _actions(s)}
    assert wildcard_actions == {
        "ec2:DescribeInstances",
        "ssm:DescribeInstanceInformation",
        "ssm:ListCommands",
        "ssm:ListCommandInvocations",
        "ssm:GetCommandInvocation",
        "ssm:ListResourceComplianceSummaries",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    (publish,) = [s for s in statements if "sns:Publish" in _actions(s)]
    topic_id = next(iter(resources(synthesized_template, "AWS::SNS::Topic")))
    assert publish["Resource"] == {"Ref": topic_id}
    all_actions = {a for s in statements for a in _actions(s)}
    assert not any(a.endswith(":*") or a == "*" for a in all_actions)
    assert not {a for a in all_actions if a.startswith("sns:")} - {"sns:Publish"}


def test_schedule_invokes_the_runner_marked_as_scheduled(synthesized_template: Template) -> None:
    schedule = only(synthesized_template, "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "rate(6 hours)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert json.loads(target["Input"]) == contract.SCHEDULED_EVENT
    function_id = next(
        k for k, r in resources(synthesized_template, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "handler.handler"
    )  # fmt: skip
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    # Retries of the delivery to Lambda only, within the same hour as the function's event age.
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}


def test_topic_is_encrypted_and_ssl_only(synthesized_template: Template) -> None:
    topic_id, topic = next(iter(resources(synthesized_template, "AWS::SNS::Topic").items()))
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized_template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    principals = json.dumps(key["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in principals, "alarms must be able to publish to the encrypted topic"
    policy = only(synthesized_template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources(synthesized_template, "AWS::SNS::Subscription") == {}, "no e-mail configured by default"
    assert topic_id


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id[:-8]: resource["Properties"]  # CDK appends an 8-character hash
        for logical_id, resource in resources(template, "AWS::CloudWatch::Alarm").items()
    }


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: one metric given inline, or the stats of a metric math alarm."""
    if "Metrics" not in alarm:
        return [{key: alarm[key] for key in ("Namespace", "MetricName", "Dimensions") if key in alarm}]
    return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]


@pytest.mark.parametrize("name", ["InstancesLeftBroken", "RunsFailed", "RunnerErrors"])
def test_every_alarm_publishes_to_the_topic(synthesized_template: Template, name: str) -> None:
    alarm = _alarms(synthesized_template)[name]
    topic_id = next(iter(resources(synthesized_template, "AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert "OKActions" not in alarm, "no OK mail: the next run's report says what recovered"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


def test_alarm_on_failed_or_unreachable_instances(synthesized_template: Template) -> None:
    alarm = _alarms(synthesized_template)["InstancesLeftBroken"]
    stats = _metric_stats(alarm)
    seen = {
        (m["MetricName"], next(d["Value"] for d in m["Dimensions"] if d["Name"] == "action")) for m in stats
    }
    expected_names = {contract.status_metric_name("failed"), contract.status_metric_name("unreachable")}
    assert seen == {(name, action) for name in expected_names for action in contract.ACTIONS}
    for metric in stats:
        assert metric["Namespace"] == contract.METRIC_NAMESPACE
        assert {"Name": "service", "Value": "EcrFleetAuth"} in metric["Dimensions"], "the stack's name"
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"].count("FILL(") == len(stats)


def test_alarm_on_failed_runs_reads_the_runners_metric_for_every_action(
    synthesized_template: Template,
) -> None:
    stats = _metric_stats(_alarms(synthesized_template)["RunsFailed"])
    assert {m["MetricName"] for m in stats} == {contract.RUNS_FAILED_METRIC}
    assert {d["Value"] for m in stats for d in m["Dimensions"] if d["Name"] == "action"} == set(
        contract.ACTIONS
    )
    assert all(m["Namespace"] == contract.METRIC_NAMESPACE for m in stats)


def test_alarm_on_the_functions_own_errors(synthesized_template: Template) -> None:
    alarm = _alarms(synthesized_template)["RunnerErrors"]
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    function_id = next(
        k for k, r in resources(synthesized_template, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "handler.handler"
    )  # fmt: skip
    for metric_id, name in (("errors", "Errors"), ("dropped", "AsyncEventsDropped")):
        metric = by_id[metric_id]["MetricStat"]["Metric"]
        assert (metric["Namespace"], metric["MetricName"]) == ("AWS/Lambda", name)
        assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    rejected = by_id["rejected"]["MetricStat"]["Metric"]
    assert (rejected["Namespace"], rejected["MetricName"]) == (
        contract.METRIC_NAMESPACE,
        contract.EVENTS_REJECTED_METRIC,
    )
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "FILL(errors, 0) - FILL(rejected, 0) + FILL(dropped, 0)"


def test_instance_policy_grants_token_pull_and_output_logs(synthesized_template: Template) -> None:
    policy = only(synthesized_template, "AWS::IAM::ManagedPolicy")["Properties"]
    statements = policy["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert _actions(by_sid["GetEcrToken"]) == ["ecr:GetAuthorizationToken"]
    assert set(_actions(by_sid["PullImages"])) == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    }
    assert ":repository/*" in json.dumps(by_sid["PullImages"]["Resource"])
    assert "GetEcrPublicToken" not in by_sid
    output = synthesized_template["Outputs"]["InstancePolicyArn"]
    assert output["Export"]["Name"] == "EcrFleetAuth-InstancePolicyArn"


def test_two_stacks_in_one_region_read_only_their_own_runners_metrics() -> None:
    # Metrics carry service = the stack's name (the runner's STACK_NAME), and so do the alarms'
    # and the dashboard's: a second stack named apart never feeds this one's alarms.
    template = synthesize({"stackName": "EcrFleetAuthBlue"})["EcrFleetAuthBlue"]
    assert _function(template)["Environment"]["Variables"]["STACK_NAME"] == "EcrFleetAuthBlue"
    runner_metrics = [
        metric
        for alarm in _alarms(template).values()
        for metric in _metric_stats(alarm)
        if metric["Namespace"] == contract.METRIC_NAMESPACE
    ]
    names = {metric["MetricName"] for metric in runner_metrics}
    assert {contract.EVENTS_REJECTED_METRIC, contract.RUNS_FAILED_METRIC} <= names
    for metric in runner_metrics:
        services = [d["Value"] for d in metric["Dimensions"] if d["Name"] == "service"]
        assert services == ["EcrFleetAuthBlue"], metric["MetricName"]
    dashboard = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    assert dashboard.count('\\"service\\",\\"EcrFleetAuthBlue\\"') > 0
    assert '\\"service\\",\\"EcrFleetAuth\\"' not in dashboard


def test_the_instance_policy_covers_dual_stack_registry_names() -> None:
    """A dual-stack name (<account>.dkr-ecr.<region>.on.aws) is the same registry as its IPv4 name: its
    repositories are arn:...:ecr:<region>:<account>:repository/*; ecr-public.aws.com is ECR Public's
    dual-stack name and needs ECR Public's token calls (ECR User Guide, "Making requests to Amazon ECR
    registries"; ECR Public, "Making requests to Amazon ECR Public registries")."""
    registries = "210987654321.dkr-ecr.eu-central-1.on.aws,ecr-public.aws.com"
    template = synthesize({"registries": registries})["EcrFleetAuth"]
    statements = only(template, "AWS::IAM::ManagedPolicy")["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert ":ecr:eu-central-1:210987654321:repository/*" in json.dumps(by_sid["PullImages"]["Resource"])
    assert set(_actions(by_sid["GetEcrPublicToken"])) == {
        "ecr-public:GetAuthorizationToken",
        "sts:GetServiceBearerToken",
    }


SLACK = "slack:T07ABCDE12/C07ABCDEF34"
TEAMS = (
    "teams:8f0b9c3e-2a1d-4c5b-9e7f-1a2b3c4d5e6f/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d/"
    "19%3ab2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1%40thread.tacv2"
)


def test_no_chat_channel_unless_one_is_set(synthesized_template: Template) -> None:
    chat = [r for r in synthesized_template["Resources"].values() if r["Type"].startswith("AWS::Chatbot::")]
    assert chat == []


@pytest.mark.parametrize(
    ("channel", "kind"),
    [
        (SLACK, "AWS::Chatbot::SlackChannelConfiguration"),
        (TEAMS, "AWS::Chatbot::MicrosoftTeamsChannelConfiguration"),
    ],
)
def test_a_chat_channel_gets_the_topic_and_no_permissions(channel: str, kind: str, tmp_path: Any) -> None:
    """chatChannel: the topic's messages in Slack or Teams through AWS Chatbot; the role has no policy and
    the guardrail is AWSDenyAll, so the channel can run nothing. cdk-nag ran in the synth; cfn-lint too."""
    template = synthesize({"chatChannel": channel})["EcrFleetAuth"]
    (configuration,) = resources(template, kind).values()
    properties = configuration["Properties"]
    topic_id = next(iter(resources(template, "AWS::SNS::Topic")))
    assert properties["SnsTopicArns"] == [{"Ref": topic_id}]
    assert properties["GuardrailPolicies"] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AWSDenyAll"]]}
    ]
    ids = channel.split(":", 1)[1].split("/")
    if kind.endswith("SlackChannelConfiguration"):
        assert [properties["SlackWorkspaceId"], properties["SlackChannelId"]] == ids
    else:
        assert [properties["TeamsTenantId"], properties["TeamId"], properties["TeamsChannelId"]] == ids
    role_id = properties["IamRoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    assert "chatbot.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    attached = [
        r for r in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in r["Properties"].get("Roles", [])
    ]  # fmt: skip
    assert attached == []
    path = tmp_path / "chat.template.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    assert cfn_lint_findings(path) == []


@pytest.mark.parametrize("bad", ["slack:lowercase/C1", "teams:not-a-guid/x/y", "discord:1/2", "slack:T1"])
def test_a_chat_channel_in_another_form_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(SettingsError, match="chatChannel"):
        synthesize({"chatChannel": bad})


def test_chat_configuration_names_are_unique_per_stack_and_region() -> None:
    """Chatbot channel configurations are the account's, not a Region's (its API is served from four
    Regions and "your configuration data ... is stored in each of the relevant available Regions",
    Amazon Q Developer in chat applications API Reference): one stack per Region needs a name per Region.
    ConfigurationName: 1-128 of [A-Za-z0-9-_] (AWS::Chatbot::SlackChannelConfiguration)."""
    names = {
        chat_configuration_name(stack, region)
        for stack in ("EcrFleetAuth", "x" * 120, "x" * 119 + "y", "x" * 128)
        for region in ("eu-west-1", "us-east-1", "ap-southeast-5")
    }
    assert len(names) == 12, "two long names with one start stay apart, each Region its own"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name) for name in names), names
    assert chat_configuration_name("EcrFleetAuth", "eu-west-1") == "EcrFleetAuth-eu-west-1-notifications"


def test_the_chat_configuration_name_carries_the_stacks_region() -> None:
    template = synthesize({"chatChannel": SLACK, "regions": ["eu-west-1", "us-east-1"]})
    names = {
        only(stack, "AWS::Chatbot::SlackChannelConfiguration")["Properties"]["ConfigurationName"]
        for stack in template.values()
    }
    assert names == {"EcrFleetAuth-eu-west-1-notifications", "EcrFleetAuth-us-east-1-notifications"}


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1"])
def test_a_chat_channel_where_chatbot_is_not_offered_is_refused_at_synth(region: str) -> None:
    """Amazon Q Developer in chat applications (AWS Chatbot) lists commercial Regions only ("Regions and
    quotas for Amazon Q Developer in chat applications"); CloudFormation has no AWS::Chatbot types in
    China (cfn-lint: "Resource type 'AWS::Chatbot::SlackChannelConfiguration' does not exist in
    'cn-north-1'"). The setting is refused with the Region named, not deployed to fail."""
    with pytest.raises(SettingsError, match=f"chatChannel: AWS Chatbot is not available in {region}"):
        synthesize({"chatChannel": SLACK, "regions": [region]})


def test_a_teams_channel_id_not_url_encoded_is_refused_saying_how_to_write_it() -> None:
    tenant = "00000000-0000-0000-0000-000000000001"
    with pytest.raises(SettingsError, match="URL-encoded"):
        synthesize({"chatChannel": f"teams:{tenant}/{tenant}/19:abc@thread.tacv2"})
