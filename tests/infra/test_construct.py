"""``EcrFleetAuth`` as a library construct: the app's stack is the construct, landing-zone props,
two side by side, validation at creation.

The landing zone is a stack that already holds resources of its own and imports what a platform
team has (a KMS-encrypted topic, an instance role, a permissions boundary); cdk-nag (the
AwsSolutions pack as a policy-validation plugin) checks the whole app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam, aws_kms, aws_sns, aws_ssm
from constructs import Construct

from ecr_fleet_auth.shared.settings import SettingsError
from ecr_fleet_auth_cdk import EcrFleetAuth, add_checks
from tests.support.template import Template, resources

ACCOUNT, REGION = "111122223333", "eu-west-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:platform-alerts"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
INSTANCE_ROLE = "platform-web-instances"
BOUNDARY = "platform-boundary"
TAGS = {"cost-center": "platform", "owner": "ops@example.com"}
# The id aws-cdk-lib gives the singleton provider of every AwsCustomResource in a stack.
PROVIDER_PREFIX = "AWS679f53fac002430cb0da5b7982bd2287"


def _bare_stack_template(outdir: Path) -> Template:
    """A stack holding nothing but the construct, every prop left at its default."""
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, "EcrFleetAuth")
    EcrFleetAuth(stack, "Default").add_outputs(export_prefix=stack.stack_name)
    return app.synth().get_stack_artifact(stack.artifact_id).template


def test_the_apps_stack_is_a_bare_stack_holding_the_construct_with_its_defaults(
    synthesized_template: Template, tmp_path: Path
) -> None:
    """app.py adds nothing of its own: cdk.json's context (the table's defaults) into the construct's
    props, and its outputs. With the id ``Default``, which CDK leaves out of logical ids, the resources
    keep the logical ids the stack gave them when it built them itself (checked once against the
    template of the app before the construct existed: equal but for the runner's code)."""
    assert _bare_stack_template(tmp_path) == synthesized_template


@pytest.fixture(scope="module")
def landing_zone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, dict[str, Any]]:
    """A platform stack with resources of its own, a fleet that gets what the platform has, and a
    second fleet beside it with its own topic; cdk-nag on."""
    outdir = tmp_path_factory.mktemp("landing-zone")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Platform", env=cdk.Environment(account=ACCOUNT, region=REGION))
    aws_ssm.StringParameter(stack, "PlatformVersion", string_value="2026.12")
    EcrFleetAuth(
        stack,
        "FleetAuth",
        topic=aws_sns.Topic.from_topic_arn(stack, "Alerts", TOPIC_ARN),
        topic_key=aws_kms.Key.from_key_arn(stack, "AlertsKey", KEY_ARN),
        instance_roles=[aws_iam.Role.from_role_name(stack, "WebInstances", INSTANCE_ROLE)],
        permissions_boundary=aws_iam.ManagedPolicy.from_managed_policy_name(stack, "Boundary", BOUNDARY),
        tags=TAGS,
        target_tag_values=["yes", "enabled"],
        notification_email="ops@example.com",
    )
    EcrFleetAuth(stack, "BuildFleet", target_tag_key="build-fleet", action="helper", new_instances=False)
    add_checks(app)
    template = app.synth().get_stack_artifact(stack.artifact_id).template
    report = json.loads((outdir / "validation-report.json").read_text())
    return template, report


def _under(template: Template, prefix: str) -> dict[str, dict[str, Any]]:
    """The resources of one construct: CDK starts their logical ids with its id."""
    return {k: v for k, v in template["Resources"].items() if k.startswith(prefix)}


def _runner_variables(template: Template, prefix: str) -> dict[str, Any]:
    (function,) = [
        r for r in _under(template, prefix).values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == "handler.handler"
    ]  # fmt: skip
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    tags = resource["Properties"].get("Tags", {})
    return dict(tags) if isinstance(tags, dict) else {tag["Key"]: tag["Value"] for tag in tags}


def test_cdk_nag_finds_nothing_in_a_stack_holding_two(landing_zone: tuple[Template, dict[str, Any]]) -> None:
    (nag,) = [r for r in landing_zone[1]["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"]) >= 20, suppressed


def test_a_topic_handed_in_is_used_and_none_is_created(landing_zone: tuple[Template, dict[str, Any]]) -> None:
    template, _ = landing_zone
    fleet = _under(template, "FleetAuth")
    assert not [r for r in fleet.values() if r["Type"] in ("AWS::SNS::Topic", "AWS::KMS::Key")]
    assert _runner_variables(template, "FleetAuth")["TOPIC_ARN"] == TOPIC_ARN
    statements = [
        statement
        for resource in fleet.values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    publish = [s for s in statements if "sns:Publish" in json.dumps(s["Action"])]
    assert publish == [
        {"Action": "sns:Publish", "Effect": "Allow", "Resource": TOPIC_ARN, "Sid": "PublishRunReports"}
    ]
    encrypt = [s for s in statements if "kms:" in json.dumps(s["Action"])]
    assert encrypt == [
        {
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Effect": "Allow",
            "Resource": KEY_ARN,
            "Sid": "EncryptRunReports",
        }
    ]
    alarms = [r["Properties"] for r in fleet.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    assert all(alarm["AlarmActions"] == [TOPIC_ARN] for alarm in alarms)
    (subscription,) = [r["Properties"] for r in fleet.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscription == {"Endpoint": "ops@example.com", "Protocol": "email", "TopicArn": TOPIC_ARN}


def test_the_instance_policy_is_attached_to_the_roles_handed_in(
    landing_zone: tuple[Template, dict[str, Any]],
) -> None:
    template, _ = landing_zone
    (fleet_policy,) = [
        r for r in _under(template, "FleetAuth").values() if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    assert fleet_policy["Properties"]["Roles"] == [INSTANCE_ROLE]
    (other_policy,) = [
        r for r in _under(template, "BuildFleet").values() if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    assert "Roles" not in other_policy["Properties"], "no roles handed in: none attached"


def test_the_boundary_is_on_every_role_the_construct_creates(
    landing_zone: tuple[Template, dict[str, Any]],
) -> None:
    template, _ = landing_zone
    boundary = f"arn:{{}}:iam::{ACCOUNT}:policy/{BOUNDARY}"
    roles = resources(template, "AWS::IAM::Role")
    fleet_roles = {k: r for k, r in roles.items() if k.startswith(("FleetAuth", PROVIDER_PREFIX))}
    assert len(fleet_roles) >= 3, "the runner's, the schedule's, the shared provider's"
    for logical_id, role in fleet_roles.items():
        given = json.dumps(role["Properties"]["PermissionsBoundary"])
        assert "policy/" + BOUNDARY in given, logical_id
        assert boundary.split("{}")[1] in given, logical_id
    for logical_id, role in roles.items():
        if logical_id.startswith("BuildFleet"):
            assert "PermissionsBoundary" not in role["Properties"], logical_id


def test_the_tags_are_on_every_taggable_resource_the_construct_creates(
    landing_zone: tuple[Template, dict[str, Any]],
) -> None:
    template, _ = landing_zone
    tagged_types = set()
    for logical_id, resource in _under(template, "FleetAuth").items():
        if "Tags" in resource["Properties"]:
            assert TAGS.items() <= _tags(resource).items(), logical_id
            tagged_types.add(resource["Type"])
    assert {
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Logs::LogGroup",
        "AWS::SSM::Document",
        "AWS::CloudWatch::Alarm",
    } <= tagged_types
    for logical_id, resource in _under(template, "BuildFleet").items():
        assert not TAGS.items() & _tags(resource).items(), logical_id
    assert "PlatformVersion" not in json.dumps(
        [_tags(r) for r in resources(template, "AWS::SSM::Parameter").values()]
    )


def test_two_in_one_stack_give_no_name_twice(landing_zone: tuple[Template, dict[str, Any]]) -> None:
    """Every physical name starts with the construct's name (the stack's and the construct's id);
    the runner's metric service is that name too, so each one's alarms read only its own runs."""
    template, _ = landing_zone
    dashboards = sorted(
        r["Properties"]["DashboardName"] for r in resources(template, "AWS::CloudWatch::Dashboard").values()
    )
    assert dashboards == [f"Platform-BuildFleet-{REGION}", f"Platform-FleetAuth-{REGION}"]
    assert _runner_variables(template, "FleetAuth")["STACK_NAME"] == "Platform-FleetAuth"
    assert _runner_variables(template, "BuildFleet")["STACK_NAME"] == "Platform-BuildFleet"
    assert _runner_variables(template, "BuildFleet")["TARGET_TAG_KEY"] == "build-fleet"
    services = {
        dimension["Value"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        for metric in alarm["Properties"].get("Metrics", [])
        if "MetricStat" in metric
        for dimension in metric["MetricStat"]["Metric"].get("Dimensions", [])
        if dimension["Name"] == "service"
    }
    assert services == {"Platform-FleetAuth", "Platform-BuildFleet"}
    named = [
        value
        for resource in template["Resources"].values()
        for key, value in resource["Properties"].items()
        if key.endswith("Name") and isinstance(value, str) and key not in ("RegistryName", "DashboardName")
    ]
    assert len(named) == len(set(named)), named


@pytest.fixture
def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Platform")


def test_bad_props_are_refused_when_the_construct_is_created_naming_each(stack: cdk.Stack) -> None:
    """The messages cdk.json's keys get at synth, with the props' names."""
    with pytest.raises(SettingsError) as error:
        EcrFleetAuth(
            stack, "FleetAuth", schedule_expression="every 6 hours", max_errors="lots", member_accounts=["1"]
        )
    message = str(error.value)
    assert message.startswith("invalid ecr-fleet-auth configuration:\n")
    assert (
        "  schedule_expression='every 6 hours': not accepted; expected rate(N minutes|hours|days)" in message
    )
    assert "  max_errors='lots': not accepted; expected a number of errors (0 or more)" in message
    assert "  member_accounts=['1']: '1' not accepted; expected a list of 12-digit account ids" in message
    assert stack.node.try_find_child("FleetAuth") is None, "nothing half-built"


def test_settings_that_need_each_other_are_named_as_props(stack: cdk.Stack) -> None:
    with pytest.raises(SettingsError, match=r"member_regions='eu-west-1': needs organizational_unit_ids"):
        EcrFleetAuth(stack, "FleetAuth", member_regions=["eu-west-1"])


def test_an_unknown_prop_is_a_type_error_naming_it(stack: cdk.Stack) -> None:
    with pytest.raises(TypeError, match=r"unknown props: shedule_expression \(its props: action, "):
        EcrFleetAuth(stack, "FleetAuth", shedule_expression="rate(1 hour)")  # type: ignore[call-arg]


def test_resources_handed_in_are_checked_with_the_settings(stack: cdk.Stack) -> None:
    """Every problem at once, the settings' and the resources'."""
    key = aws_kms.Key.from_key_arn(stack, "Key", KEY_ARN)
    role = aws_iam.Role.from_role_name(stack, "Role", INSTANCE_ROLE)
    with pytest.raises(SettingsError) as error:
        EcrFleetAuth(
            stack,
            "FleetAuth",
            wait_seconds=9999,
            topic_key=key,
            instance_roles=role,  # type: ignore[typeddict-item]
            tags={"aws:owner": "x", "team": "a,b"},
        )
    lines = str(error.value).splitlines()
    assert lines[0] == "invalid ecr-fleet-auth configuration:"
    assert lines[1:] == [
        "  wait_seconds=9999: out of range; expected a whole number from 0 to 840",
        "  topic_key: given without topic (it is the key of the topic handed in)",
        "  instance_roles: not a sequence of roles (a list, even of one)",
        "  tags: key 'aws:owner' not accepted; expected a tag key (1-128 characters, not aws:...)",
        "  tags: team='a,b' not accepted; expected a tag value (up to 256 characters)",
    ]
    assert stack.node.try_find_child("FleetAuth") is None


def test_a_name_is_given_once_per_stack(stack: cdk.Stack) -> None:
    EcrFleetAuth(stack, "FleetAuth", new_instances=False)
    with pytest.raises(
        SettingsError, match=r"name='Platform-FleetAuth': already the name of Platform/FleetAuth"
    ):
        EcrFleetAuth(stack, "Second", name="Platform-FleetAuth", new_instances=False)
    EcrFleetAuth(stack, "Third", name="Builds", new_instances=False)


def test_a_name_not_given_is_the_stacks_and_the_ids(stack: cdk.Stack) -> None:
    derived = r"name \(by default the stack's name and the construct's id\)='Platform-Fleet Auth'"
    with pytest.raises(SettingsError, match=derived + ": not accepted; expected a CloudFormation stack name"):
        EcrFleetAuth(stack, "Fleet Auth")
    group = cdk.Stack(cdk.App(), "Base")
    assert (
        EcrFleetAuth(Construct(group, "Platform"), "Fleet", new_instances=False).name == "Base-Platform-Fleet"
    )
    assert EcrFleetAuth(Construct(group, "Default"), "Default", new_instances=False).name == "Base"


def test_two_organization_deployments_need_their_own_member_role(stack: cdk.Stack) -> None:
    """The member role is the one name an organization deployment gives in every member account."""
    units = ["ou-abcd-12345678"]
    EcrFleetAuth(stack, "Web", organizational_unit_ids=units, new_instances=False)
    taken = "member_role_name='EcrFleetAuthMember': already the member role of Platform/Web; give each"
    organization = "o-a1b2c3d4e5"  # with new instances (the default), member accounts forward to the bus
    with pytest.raises(SettingsError, match=taken):
        EcrFleetAuth(
            cdk.Stack(stack.node.root, "Other"),
            "Builds",
            organizational_unit_ids=units,
            organization_id=organization,
        )
    EcrFleetAuth(
        stack,
        "Builds",
        organizational_unit_ids=units,
        member_role_name="EcrFleetAuthBuilds",
        organization_id=organization,
    )


def _statements(template: Template, prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in _under(template, prefix).values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_a_topic_handed_in_publishes_with_the_key_it_names(tmp_path: Path) -> None:
    """Without topic_key, the key is the topic's own (ITopic.master_key): an encrypted topic of the same
    app, or one imported with its key's ARN (Topic.from_topic_attributes). SNS needs the publisher to
    be allowed kms:GenerateDataKey* and kms:Decrypt on the topic's key, and CloudWatch as well
    ("Enable compatibility between event sources from AWS services and encrypted topics", SNS
    Developer Guide, sns-key-management): the runner's policy says so, and a key of the app lets
    cloudwatch.amazonaws.com use it."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Platform", env=cdk.Environment(account=ACCOUNT, region=REGION))
    key = aws_kms.Key(stack, "AlertsKey", enable_key_rotation=True)
    EcrFleetAuth(stack, "Own", topic=aws_sns.Topic(stack, "Alerts", master_key=key), new_instances=False)
    imported = aws_sns.Topic.from_topic_attributes(
        stack, "AlertsImported", topic_arn=TOPIC_ARN, key_arn=KEY_ARN
    )
    EcrFleetAuth(stack, "Imported", topic=imported, new_instances=False)
    add_checks(app)
    template = app.synth().get_stack_artifact(stack.artifact_id).template
    key_id = stack.get_logical_id(key.node.default_child)  # type: ignore[arg-type]
    encrypt = {
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Effect": "Allow",
        "Sid": "EncryptRunReports",
    }
    assert [s for s in _statements(template, "Own") if "kms:" in json.dumps(s)] == [
        {**encrypt, "Resource": {"Fn::GetAtt": [key_id, "Arn"]}}
    ]
    assert [s for s in _statements(template, "Imported") if "kms:" in json.dumps(s)] == [
        {**encrypt, "Resource": KEY_ARN}
    ]
    key_policy = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    (alarms,) = [s for s in key_policy if s.get("Sid") == "AllowCloudWatchAlarmsToPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    (nag,) = [
        r for r in json.loads((tmp_path / "validation-report.json").read_text())["pluginReports"]
        if r["pluginName"] == "AwsSolutions"
    ]  # fmt: skip
    assert nag["violations"] == []


def test_a_resource_given_as_an_arn_is_refused_naming_what_to_pass(stack: cdk.Stack) -> None:
    with pytest.raises(SettingsError) as error:
        EcrFleetAuth(
            stack,
            "FleetAuth",
            topic=TOPIC_ARN,  # type: ignore[typeddict-item]
            topic_key=KEY_ARN,  # type: ignore[typeddict-item]
            instance_roles=[INSTANCE_ROLE],  # type: ignore[list-item]
            permissions_boundary=BOUNDARY,  # type: ignore[typeddict-item]
        )
    lines = str(error.value).splitlines()
    assert lines[1:] == [
        f"  topic: {TOPIC_ARN!r} is not a topic; pass an aws_sns.ITopic "
        "(aws_sns.Topic.from_topic_arn(scope, id, arn) for an existing one)",
        f"  topic_key: {KEY_ARN!r} is not a KMS key; pass an aws_kms.IKey "
        "(aws_kms.Key.from_key_arn(scope, id, arn) for an existing one)",
        f"  permissions_boundary: {BOUNDARY!r} is not a managed policy; pass an aws_iam.IManagedPolicy "
        "(aws_iam.ManagedPolicy.from_managed_policy_name(scope, id, name) for an existing one)",
        f"  instance_roles: {INSTANCE_ROLE!r} is not a role; pass an aws_iam.IRole "
        "(aws_iam.Role.from_role_name(scope, id, name) for an existing one)",
    ]
    assert stack.node.try_find_child("FleetAuth") is None


def test_two_in_a_stack_may_not_want_different_boundaries_or_tags_on_the_shared_provider(
    stack: cdk.Stack,
) -> None:
    """aws-cdk-lib gives every AwsCustomResource of a stack one provider function and role: it takes the
    boundary of any construct that gives one and the tags of all, and a conflict is refused rather
    than the last construct's silently winning."""
    boundary = aws_iam.ManagedPolicy.from_managed_policy_name(stack, "Boundary", BOUNDARY)
    EcrFleetAuth(stack, "Web", permissions_boundary=boundary, tags={"team": "web"}, new_instances=False)
    same = aws_iam.ManagedPolicy.from_managed_policy_name(stack, "SameBoundary", BOUNDARY)
    EcrFleetAuth(
        stack, "Api", permissions_boundary=same, tags={"team": "web", "app": "api"}, new_instances=False
    )
    EcrFleetAuth(stack, "Plain", new_instances=False)
    other = aws_iam.ManagedPolicy.from_managed_policy_name(stack, "Other", "builds-boundary")
    with pytest.raises(
        SettingsError, match=r"permissions_boundary: Platform/Web sets another boundary on the"
    ):
        EcrFleetAuth(stack, "Builds", permissions_boundary=other, new_instances=False)
    with pytest.raises(SettingsError, match=r"tags: team='builds', but Platform/Web tags the stack's shared"):
        EcrFleetAuth(stack, "Builds", tags={"team": "builds"}, new_instances=False)
    elsewhere = cdk.Stack(stack.node.root, "Builds")
    EcrFleetAuth(
        elsewhere, "Builds", permissions_boundary=other, tags={"team": "builds"}, new_instances=False
    )


def test_an_export_prefix_is_used_once_per_account_and_region() -> None:
    app = cdk.App()
    here = cdk.Environment(account=ACCOUNT, region=REGION)
    stack = cdk.Stack(app, "Platform", env=here)
    EcrFleetAuth(stack, "Web", new_instances=False).add_outputs(export_prefix="Fleet")
    taken = r"export_prefix='Fleet': already the prefix of Platform/Web's exports"
    with pytest.raises(SettingsError, match=taken):
        EcrFleetAuth(stack, "Api", new_instances=False).add_outputs(export_prefix="Fleet")
    with pytest.raises(SettingsError, match=taken):
        EcrFleetAuth(cdk.Stack(app, "Same", env=here), "Api", new_instances=False).add_outputs(
            export_prefix="Fleet"
        )
    away = cdk.Stack(app, "Away", env=cdk.Environment(account=ACCOUNT, region="us-east-1"))
    EcrFleetAuth(away, "Web", new_instances=False).add_outputs(export_prefix="Fleet")
    EcrFleetAuth(stack, "Builds", new_instances=False).add_outputs(export_prefix="Builds")


def test_a_name_is_given_once_per_account_and_region() -> None:
    """The names a construct gives (its dashboard, document, ...) are per account and region: the same
    name in two stacks deployed to the same place is refused; in two regions (app.py's regions) not."""
    app = cdk.App()
    here = cdk.Environment(account=ACCOUNT, region=REGION)
    EcrFleetAuth(cdk.Stack(app, "One", env=here), "Fleet", name="Fleet", new_instances=False)
    with pytest.raises(
        SettingsError, match=r"name='Fleet': already the name of One/Fleet; give each EcrFleetAuth in one"
    ):
        EcrFleetAuth(cdk.Stack(app, "Two", env=here), "Fleet", name="Fleet", new_instances=False)
    away = cdk.Stack(app, "Three", env=cdk.Environment(account=ACCOUNT, region="us-east-1"))
    EcrFleetAuth(away, "Fleet", name="Fleet", new_instances=False)
    # Two stacks left to the CLI's environment deploy to the same place.
    EcrFleetAuth(cdk.Stack(app, "Four"), "Fleet", name="Agnostic", new_instances=False)
    with pytest.raises(SettingsError, match=r"name='Agnostic': already the name of Four/Fleet"):
        EcrFleetAuth(cdk.Stack(app, "Five"), "Fleet", name="Agnostic", new_instances=False)
