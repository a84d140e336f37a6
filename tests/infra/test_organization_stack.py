"""Organization mode (issue 14): the central stack's StackSet and grants, the member template, synth errors.

AWS references for what is asserted here:
- AWS::CloudFormation::StackSet (CloudFormation template reference):
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-stackset.html
- DeploymentTargets: "For create and delete operations, specify OrganizationalUnitIds"; AccountFilterType
  INTERSECTION deploys to the listed accounts of the units; StackSets never deploy to the management account:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeploymentTargets.html
- AutoDeployment (new accounts of the units get stack instances; RetainStacksOnAccountRemoval=false deletes
  them when an account leaves):
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-cloudformation-stackset-autodeployment.html
- CreateStackSet: TemplateBody at most 51,200 bytes, TemplateURL (S3) up to 1 MB; CallAs DELEGATED_ADMIN, and
  "StackSets with service-managed permissions are created in the management account, including StackSets that
  are created by delegated administrators":
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStackSet.html
- IAM global condition keys aws:PrincipalArn, aws:ResourceOrgID (compared with ${aws:PrincipalOrgID}):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
- CloudWatch search expression syntax, SEARCH('{Namespace,Dim1,Dim2} terms', 'Stat', period):
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.partitions import registries_for
from ecr_fleet_auth.shared.settings import ACCOUNT_ID_PATTERN, RunnerSettings, SettingsError
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.dashboard import SHOWN_STATUSES
from ecr_fleet_auth_cdk.document.construct import MAX_CONTENT_BYTES, content_named
from ecr_fleet_auth_cdk.member_stack import MEMBER_STACK_ID, TEMPLATE_BODY_LIMIT
from ecr_fleet_auth_cdk.runner_function import FLEET_READ_ACTIONS
from tests.infra.test_cli_synth import cdk_synth
from tests.support.lint import cfn_lint_findings
from tests.support.prerequisites import require
from tests.support.template import (
    PROJECT_ROOT,
    Template,
    default_context,
    document_content,
    only,
    resolved_runner_environment,
    resources,
    runner_environment,
    synthesize,
)

UNITS = ["ou-abcd-11111111", "ou-abcd-22222222"]
MEMBER_REGIONS = ["eu-west-1", "us-east-1"]
ORGANIZATION_ID = "o-a1b2c3d4e5"
ORGANIZATION = {
    "organizationalUnitIds": ",".join(UNITS),
    "memberRegions": ",".join(MEMBER_REGIONS),
    "organizationId": ORGANIZATION_ID,
}
# The other shape: narrowed to accounts, deployed from the management account, member regions = the stack's.
NARROWED = {
    "organizationalUnitIds": UNITS[0],
    "organizationId": ORGANIZATION_ID,
    "memberAccounts": "111111111111,222222222222",
    "memberRoleName": "FleetAuthMember",
    "stackSetCallAs": "SELF",
    "registries": "444444444444.dkr.ecr.eu-west-1.amazonaws.com,public.ecr.aws",
}
STACK_SET = "EcrFleetAuth-Members"


class Synth:
    """One in-process synth (cdk-nag on): the central template, and the member template the StackSet gets."""

    def __init__(self, outdir: Path, overrides: dict[str, Any]) -> None:
        self.outdir = outdir
        self.central = synthesize(overrides, outdir=str(outdir))["EcrFleetAuth"]
        self.member_dir = outdir / "EcrFleetAuth.members"
        self.member_file = self.member_dir / f"{MEMBER_STACK_ID}.template.json"
        self.member: Template = json.loads(self.member_file.read_text())

    @property
    def stack_set(self) -> dict[str, Any]:
        properties: dict[str, Any] = only(self.central, "AWS::CloudFormation::StackSet")["Properties"]
        return properties

    def parameters(self) -> dict[str, Any]:
        return {p["ParameterKey"]: p["ParameterValue"] for p in self.stack_set["Parameters"]}


@pytest.fixture(scope="module")
def organization(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("organization"), ORGANIZATION)


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("narrowed"), NARROWED)


def _statements(template: Template, resource_type: str = "AWS::IAM::Policy") -> list[dict[str, Any]]:
    return [
        statement
        for resource in resources(template, resource_type).values()
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _join(value: Any) -> str:
    """A Fn::Join / Ref / GetAtt rendered as text, references as <Name> (for reading ARNs)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_join(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    raise AssertionError(f"unexpected value {value}")


def _runner_role_id(template: Template) -> str:
    (role_id,) = [
        logical_id
        for logical_id, role in resources(template, "AWS::IAM::Role").items()
        if "lambda.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        and logical_id.startswith("Runner")
    ]
    return role_id


# --- the central stack ---


def test_the_stack_set_is_service_managed_and_deploys_itself_to_new_accounts(organization: Synth) -> None:
    stack_set = organization.stack_set
    assert stack_set["StackSetName"] == STACK_SET
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    # Accounts that join a target OU get the member stack without anyone acting; one that leaves loses it.
    assert stack_set["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert stack_set["CallAs"] == "DELEGATED_ADMIN", "the default: deployed from a delegated administrator"
    assert stack_set["ManagedExecution"] == {"Active": True}
    assert stack_set["Capabilities"] == ["CAPABILITY_NAMED_IAM"], "the member role has a fixed name"
    assert "AdministrationRoleARN" not in stack_set and "ExecutionRoleName" not in stack_set


def test_the_stack_set_targets_the_units_in_the_member_regions(organization: Synth) -> None:
    (group,) = organization.stack_set["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": UNITS}
    assert group["Regions"] == MEMBER_REGIONS


def test_member_accounts_narrow_the_units_and_regions_default_to_the_stacks(narrowed: Synth) -> None:
    (group,) = narrowed.stack_set["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {
        "OrganizationalUnitIds": [UNITS[0]],
        "Accounts": ["111111111111", "222222222222"],
        "AccountFilterType": "INTERSECTION",
    }
    assert group["Regions"] == [{"Ref": "AWS::Region"}]
    assert narrowed.stack_set["CallAs"] == "SELF"


def test_one_failing_account_does_not_stop_the_others(organization: Synth) -> None:
    preferences = organization.stack_set["OperationPreferences"]
    assert preferences["RegionConcurrencyType"] == "PARALLEL"
    assert preferences["FailureTolerancePercentage"] == 100
    assert preferences["MaxConcurrentPercentage"] == 100


def test_the_member_template_goes_by_url_as_a_file_asset(organization: Synth) -> None:
    """TemplateBody takes at most 51,200 bytes (CreateStackSet); the member template carries the agent
    document, which SSM lets grow to 64 kB, so the StackSet reads it from S3 (TemplateURL, up to 1 MB)."""
    assert MAX_CONTENT_BYTES > TEMPLATE_BODY_LIMIT
    assert "TemplateBody" not in organization.stack_set
    url = organization.stack_set["TemplateURL"]["Fn::Sub"]
    assert url.startswith(
        "https://s3.${AWS::Region}.${AWS::URLSuffix}/cdk-hnb659fds-assets-${AWS::AccountId}-"
    )
    asset_hash = re.fullmatch(r".*/([0-9a-f]{64})\.json", url)
    assert asset_hash is not None
    staged = organization.outdir / f"asset.{asset_hash[1]}.json"
    assert json.loads(staged.read_text()) == organization.member, "the asset is the member template"
    size = len(json.dumps(organization.member, separators=(",", ":")).encode())
    assert size > TEMPLATE_BODY_LIMIT // 2, f"{size} bytes: the document alone nears TemplateBody's limit"


def test_the_stack_set_passes_the_member_template_its_parameters(
    organization: Synth, narrowed: Synth
) -> None:
    parameters = organization.parameters()
    assert set(parameters) == set(organization.member["Parameters"]), "every parameter given, none unknown"
    assert parameters["CentralAccountId"] == {"Ref": "AWS::AccountId"}
    assert parameters["CentralRegion"] == {"Ref": "AWS::Region"}
    assert parameters["RunnerRoleArn"] == {"Fn::GetAtt": [_runner_role_id(organization.central), "Arn"]}
    (output_group,) = [
        logical_id
        for logical_id in resources(organization.central, "AWS::Logs::LogGroup")
        if logical_id.startswith("RunCommandOutput")
    ]
    assert parameters["RunCommandOutputLogGroup"] == {"Ref": output_group}
    assert parameters["IamRegion"] == MEMBER_REGIONS[0], (
        "IAM is global: one region of each account creates it"
    )
    assert narrowed.parameters()["IamRegion"] == {"Ref": "AWS::Region"}


def test_member_instances_may_write_the_output_group_the_runner_names(organization: Synth) -> None:
    """The runner sends OUTPUT_LOG_GROUP to every pair: the member stack's group has that name, and
    its instance policy allows writing to a group of that name in every region of the account."""
    parameters = organization.parameters()
    assert (
        runner_environment(organization.central)["OUTPUT_LOG_GROUP"] == parameters["RunCommandOutputLogGroup"]
    )
    group = only(organization.member, "AWS::Logs::LogGroup")
    assert group["Properties"]["LogGroupName"] == {"Ref": "RunCommandOutputLogGroup"}
    policy = only(organization.member, "AWS::IAM::ManagedPolicy")["Properties"]["PolicyDocument"]
    (write,) = [s for s in policy["Statement"] if s["Sid"] == "WriteRunCommandOutput"]
    assert set(_actions(write)) >= {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert _join(write["Resource"]).endswith(":log-group:<RunCommandOutputLogGroup>:*")
    assert ":logs:*:<AWS::AccountId>:" in _join(write["Resource"]), "every region of the member account"


def test_the_runner_learns_the_stack_set_and_the_member_document(organization: Synth) -> None:
    variables = runner_environment(organization.central)
    assert variables["STACK_SET_NAME"] == STACK_SET
    member_document = only(organization.member, "AWS::SSM::Document")["Properties"]
    assert variables["MEMBER_DOCUMENT_NAME"] == member_document["Name"]
    assert re.fullmatch(r"EcrFleetAuth-Agent-[0-9a-f]{8}", variables["MEMBER_DOCUMENT_NAME"])
    assert variables["ORGANIZATIONAL_UNIT_IDS"] == ",".join(UNITS)
    assert variables["MEMBER_REGIONS"] == ",".join(MEMBER_REGIONS)
    assert variables["STACK_SET_CALL_AS"] == "DELEGATED_ADMIN"
    deploy_time = {
        "DOCUMENT_NAME": "EcrFleetAuth-AgentDocument-abc",
        "REGISTRIES": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "OUTPUT_LOG_GROUP": "group",
        "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
        "CLAIM_TABLE_NAME": "EcrFleetAuth-NewInstanceClaimsTable-abc",
        "RUNS_BUCKET_NAME": "ecrfleetauth-organizationrunruns-abc",
    }
    settings = RunnerSettings.from_environment(resolved_runner_environment(organization.central, deploy_time))
    assert settings.stack_set_name == STACK_SET
    # `registries` left empty: the stack says so (REGISTRIES empty) and each pair logs into its own
    # account's registry in its region, with the partition's suffix; never a guess from a host name.
    assert variables["REGISTRIES"] == ""
    assert settings.registries == ()
    assert registries_for(settings, "111111111111", "us-east-1") == (
        "111111111111.dkr.ecr.us-east-1.amazonaws.com",
    )
    assert registries_for(settings, "111111111111", "cn-north-1") == (
        "111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn",
    )
    assert registries_for(settings, "111111111111", "us-gov-west-1") == (
        "111111111111.dkr.ecr.us-gov-west-1.amazonaws.com",
    )
    assert settings.organizational_unit_ids == tuple(UNITS)
    assert settings.member_role_name == "EcrFleetAuthMember"


def test_named_registries_reach_the_runner_as_they_are_and_empty_ones_only_in_an_organization(
    narrowed: Synth,
) -> None:
    named = NARROWED["registries"]
    assert runner_environment(narrowed.central)["REGISTRIES"] == named
    settings = RunnerSettings.from_environment(
        {"DOCUMENT_NAME": "d", "REGISTRIES": named, "STACK_SET_NAME": "s"}
    )
    assert registries_for(settings, "111111111111", "us-east-1") == tuple(named.split(","))
    with pytest.raises(SettingsError, match="REGISTRIES='': names no registry"):
        RunnerSettings.from_environment({"DOCUMENT_NAME": "d", "REGISTRIES": ""})


def test_the_runner_may_assume_only_the_member_role_inside_its_organization(organization: Synth) -> None:
    (assume,) = [s for s in _statements(organization.central) if "sts:AssumeRole" in _actions(s)]
    assert _actions(assume) == ["sts:AssumeRole"]
    assert _join(assume["Resource"]) == "arn:<AWS::Partition>:iam::*:role/EcrFleetAuthMember"
    # No organization id is hard-coded: the role's account must be in the runner's own organization.
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}


def test_the_runner_may_list_only_its_stack_sets_instances(organization: Synth, narrowed: Synth) -> None:
    (listing,) = [
        s for s in _statements(organization.central) if "cloudformation:ListStackInstances" in _actions(s)
    ]
    assert _actions(listing) == ["cloudformation:ListStackInstances"]
    # A delegated administrator's service-managed StackSet lives in the management account.
    assert _join(listing["Resource"]) == (
        f"arn:<AWS::Partition>:cloudformation:<AWS::Region>:*:stackset/{STACK_SET}:*"
    )
    (own,) = [s for s in _statements(narrowed.central) if "cloudformation:ListStackInstances" in _actions(s)]
    assert _join(own["Resource"]) == (
        f"arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stackset/{STACK_SET}:*"
    )
    (check,) = [s for s in _statements(organization.central) if s.get("Sid") == "CheckDelegatedAdministrator"]
    assert _actions(check) == ["organizations:ListDelegatedAdministrators"]
    assert not [s for s in _statements(narrowed.central) if s.get("Sid") == "CheckDelegatedAdministrator"]
    assert _join(
        next(s for s in _statements(narrowed.central) if "sts:AssumeRole" in _actions(s))["Resource"]
    ).endswith(":role/FleetAuthMember")


def test_the_dashboard_breaks_outcomes_down_by_account_from_the_log_record(organization: Synth) -> None:
    """Per-account views are Logs Insights widgets over the runner's per-account records, not metrics
    (no custom metric per account: their cost grows with the organization)."""
    dashboard = only(organization.central, "AWS::CloudWatch::Dashboard")["Properties"]
    body = json.loads(_join(dashboard["DashboardBody"]))
    queries = {
        widget["properties"]["title"]: widget["properties"]
        for widget in body["widgets"]
        if widget["type"] == "log" and "by account" in widget["properties"]["query"]
    }
    assert set(queries) == {
        "Instances by account, latest run",
        "Accounts with failed or unreachable instances in the period",
    }
    runner_logs = next(
        logical_id
        for logical_id, resource in resources(organization.central, "AWS::Logs::LogGroup").items()
        if logical_id.startswith("RunnerLogs")
    )
    for widget in queries.values():
        query = widget["query"]
        assert query.startswith(f"SOURCE '<{runner_logs}>'"), query
        assert f'filter message = "{contract.ACCOUNT_REPORT_LOG_MESSAGE}"' in query
        assert f"{contract.ACCOUNT_REPORT_FIELD}.account_id as account" in query
        assert widget["view"] == "table"
    latest = queries["Instances by account, latest run"]["query"]
    for status in SHOWN_STATUSES:
        assert f"latest({contract.ACCOUNT_REPORT_FIELD}.{status}) as {status}" in latest
    assert "SEARCH(" not in json.dumps(body), "no per-account metric is read"


def test_unreachable_pairs_raise_an_alarm_like_the_others(organization: Synth) -> None:
    alarms = {
        logical_id[:-8]: resource["Properties"]
        for logical_id, resource in resources(organization.central, "AWS::CloudWatch::Alarm").items()
    }
    alarm = alarms["TargetsUnreachable"]
    (stat,) = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert stat["Metric"] == {
        "Namespace": contract.METRIC_NAMESPACE,
        "MetricName": contract.TARGETS_UNREACHABLE_METRIC,
        "Dimensions": [{"Name": contract.METRIC_SERVICE_DIMENSION, "Value": "EcrFleetAuth"}],
    }
    assert (stat["Stat"], stat["Period"]) == ("Sum", 3600)
    topic = {"Ref": next(iter(resources(organization.central, "AWS::SNS::Topic")))}
    assert alarm["AlarmActions"] == [topic] and "OKActions" not in alarm
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        1, "GreaterThanOrEqualToThreshold", "notBreaching"
    )  # fmt: skip


# --- beyond one invocation: the organization's state machine (issue 23) ---


def _definition(template: Template) -> dict[str, Any]:
    """The state machine's definition, references shown as <Name> (``_join``)."""
    properties = only(template, "AWS::StepFunctions::StateMachine")["Properties"]
    definition: dict[str, Any] = json.loads(_join(properties["DefinitionString"]))
    return definition


def _policies_of(template: Template, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_state_machine_plans_runs_a_child_per_batch_and_merges(organization: Synth) -> None:
    """Step Functions Developer Guide, "Distributed Map state": ItemReader (s3:getObject, JSON),
    ItemSelector with $$.Map.Item, MaxConcurrency, ProcessorConfig Mode DISTRIBUTED; "Handling errors":
    Catch, Retry. What moto's interpreter rejects stays out (ItemBatcher, an integer
    ToleratedFailurePercentage); ResultWriter too (the children write their own reports)."""
    properties = only(organization.central, "AWS::StepFunctions::StateMachine")["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["StateMachineName"] == contract.state_machine_name("EcrFleetAuth")
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    definition = _definition(organization.central)
    states = definition["States"]
    assert definition["StartAt"] == "Start" and definition["TimeoutSeconds"] == 12 * 3600
    assert [states["Start"]["Next"], states["Plan"]["Next"], states["Children"]["Next"]] == [
        "Plan", "Children", "Merge"
    ]  # fmt: skip
    runner = "<RunnerFunction51B573FD.Arn>"
    step = {"execution.$": "$$.Execution.Id", "bucket": "<OrganizationRunRunsF89813FB>"}
    assert states["Plan"]["Parameters"] == {contract.STEP_FIELD: "plan", **step, "run.$": "$.run"}
    assert states["Merge"]["Parameters"] == {contract.STEP_FIELD: "merge", **step, "state.$": "$"}
    # A refused input ends the execution (Rejected); any other failure of the plan or the Map still
    # reaches the merge, which reports the run failed.
    assert states["Plan"]["Catch"] == [
        {"ErrorEquals": ["InvalidEvent"], "ResultPath": "$.failure", "Next": "Rejected"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Merge"},
    ]
    assert states["Rejected"]["Type"] == "Fail" and states["Rejected"]["Error"] == "InvalidEvent"
    children = states["Children"]
    assert children["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Merge"}]
    assert children["MaxConcurrency"] == 50
    assert children["ItemReader"] == {
        "Resource": "arn:<AWS::Partition>:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "<OrganizationRunRunsF89813FB>", "Key.$": "$.plan.items"},
    }
    assert children["ItemSelector"] == {
        contract.STEP_FIELD: "child", **step, "batch.$": "$$.Map.Item.Value.batch"
    }  # fmt: skip
    assert not {"ItemBatcher", "ResultWriter", "ToleratedFailurePercentage", "ToleratedFailureCount"} & set(
        children
    )
    processor = children["ItemProcessor"]
    assert processor["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    child = processor["States"]["RunBatch"]
    assert "Parameters" not in child, "the child's event is its item, as selected"
    assert child["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "BatchFailed"}
    ]
    assert processor["States"]["BatchFailed"]["Parameters"] == {
        "batch.$": "$.batch", "failed": True, "error.$": "$.failure.Error", "execution.$": "$$.Execution.Id"
    }  # fmt: skip
    # Every task is the runner, retried on Lambda's transient service errors as Step Functions
    # Developer Guide, "Handle Lambda service exceptions" recommends (these four errors, 2 s, 6
    # attempts, back-off 2) and on a refused start (it never ran), never on the runner's own error;
    # the merge too (it has no Catch: "Handling errors", States.ALL cannot catch
    # States.DataLimitExceeded nor States.Runtime, so a Catch could not promise a report anyway).
    service = {
        "ErrorEquals": [
            "Lambda.ClientExecutionTimeoutException",
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
        ],
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2,
    }
    for task in (states["Plan"], states["Merge"], child):
        assert task["Resource"] == runner
        assert task["TimeoutSeconds"] == 960
        assert task["Retry"][0] == service
        assert [retry["ErrorEquals"] for retry in task["Retry"][1:]] == [["Lambda.TooManyRequestsException"]]
        assert not {"Lambda.Unknown", "States.ALL", "States.TaskFailed"} & {
            error for retry in task["Retry"] for error in retry["ErrorEquals"]
        }, "the runner's own error is not retried"


def test_the_state_machine_may_invoke_only_the_runner_and_read_only_runs(organization: Synth) -> None:
    """IAM User Guide, "The confused deputy problem" (aws:SourceArn, aws:SourceAccount in a service's
    trust); Step Functions Developer Guide, "IAM policies for using Distributed Map states"."""
    (role_id,) = [
        logical_id
        for logical_id, role in resources(organization.central, "AWS::IAM::Role").items()
        if "states.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    (trust,) = resources(organization.central, "AWS::IAM::Role")[role_id]["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"]
    assert _join(trust["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:EcrFleetAuth-OrganizationRun"
    )
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    granted = {
        action: [_join(_own_name(resource)) for resource in _resources(statement)]
        for statement in _policies_of(organization.central, role_id)
        for action in _actions(statement)
    }
    machine = "<OrganizationRunStateMachine56605A91>"
    assert granted.pop("lambda:InvokeFunction") == [
        "<RunnerFunction51B573FD.Arn>",
        "<RunnerFunction51B573FD.Arn>:*",
    ]
    assert granted.pop("s3:GetObject") == ["<OrganizationRunRunsF89813FB.Arn>/runs/*"]
    assert granted.pop("states:StartExecution") == [machine]
    # The Map's children are executions of the state machine itself (its name: the last part of its ARN).
    executions = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{_NAME_OF_MACHINE}"
    assert (
        granted.pop("states:DescribeExecution") == granted.pop("states:StopExecution") == [f"{executions}:*"]
    )
    assert granted.pop("states:RedriveExecution") == [f"{executions}/*:*"]
    # What is left has no resource-level permissions: log delivery and X-Ray.
    assert all(
        action.startswith(("logs:", "xray:")) and resources == ["*"] for action, resources in granted.items()
    )


_NAME_OF_MACHINE = "<name of OrganizationRunStateMachine56605A91>"


def _own_name(value: Any) -> Any:
    """``value`` with the state machine's name taken from its ARN (Fn::Select 6 of its Ref split at ':')
    written as ``_NAME_OF_MACHINE``, so that ``_join`` can show it."""
    if isinstance(value, dict):
        if value.get("Fn::Select", [None])[0] == 6:
            return _NAME_OF_MACHINE
        return {key: _own_name(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_own_name(item) for item in value]
    return value


def _resources(statement: dict[str, Any]) -> list[Any]:
    found = statement["Resource"]
    return found if isinstance(found, list) else [found]


def test_the_runner_may_use_only_the_runs_and_its_own_executions(organization: Synth) -> None:
    """S3 API Reference, GetObject, "Permissions": a key that does not exist is answered 404 NoSuchKey
    to a caller with s3:ListBucket on the bucket, 403 AccessDenied to any other; the steps look for
    objects that may not exist (a retried plan's plan.json, a failed child's report), so the runner
    may list the bucket, unconditioned: s3:prefix is a key of ListObjects requests only (Service
    Authorization Reference, "Actions, resources, and condition keys for Amazon S3")."""
    role = _runner_role_id(organization.central)
    statements = {s.get("Sid"): s for s in _policies_of(organization.central, role)}
    runs, executions = statements["ReadAndWriteRuns"], statements["CheckTheStepsExecution"]
    assert _actions(runs) == ["s3:GetObject", "s3:PutObject"]
    assert [_join(r) for r in _resources(runs)] == ["<OrganizationRunRunsF89813FB.Arn>/runs/*"]
    # The one bucket a step may name (the runner refuses any other): the definition's.
    variables = runner_environment(organization.central)
    assert variables["RUNS_BUCKET_NAME"] == {"Ref": "OrganizationRunRunsF89813FB"}
    listing = statements["TellMissingRunsApart"]
    assert _actions(listing) == ["s3:ListBucket"] and "Condition" not in listing
    assert [_join(r) for r in _resources(listing)] == ["<OrganizationRunRunsF89813FB.Arn>"]
    assert _actions(executions) == ["states:DescribeExecution"]
    assert _join(executions["Resource"]) == (
        "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:EcrFleetAuth-OrganizationRun:*"
    )
    # The runner never starts executions nor reads anything else of S3.
    every = {a for s in _policies_of(organization.central, role) for a in _actions(s)}
    assert {a for a in every if a.startswith(("s3:", "states:"))} == {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "states:DescribeExecution"
    }  # fmt: skip


def test_the_runs_bucket_is_encrypted_tls_only_private_and_forgets(organization: Synth) -> None:
    """S3 User Guide: default encryption (SSE-S3), "Enforce encryption in transit" (aws:SecureTransport,
    s3:TlsVersion), Block Public Access, Object Ownership, lifecycle expiration."""
    bucket = only(organization.central, "AWS::S3::Bucket")["Properties"]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    retention = default_context()["logRetentionDays"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == ("runs/", retention, "Enabled")
    denies = only(organization.central, "AWS::S3::BucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert {json.dumps(s["Condition"], sort_keys=True) for s in denies if s["Effect"] == "Deny"} == {
        json.dumps({"Bool": {"aws:SecureTransport": "false"}}),
        json.dumps({"NumericLessThan": {"s3:TlsVersion": 1.2}}),
    }
    logs = [g for g in resources(organization.central, "AWS::Logs::LogGroup").values()
            if "vendedlogs/states" in g["Properties"].get("LogGroupName", "")]  # fmt: skip
    assert [g["Properties"]["RetentionInDays"] for g in logs] == [retention]


def test_the_schedule_starts_the_state_machine_and_failed_executions_raise_runs_failed(
    organization: Synth,
) -> None:
    """EventBridge Scheduler User Guide, templated targets (Step Functions StartExecution); Step
    Functions' CloudWatch metrics ExecutionsFailed, ExecutionsTimedOut, ExecutionsAborted (dimension
    StateMachineArn)."""
    target = only(organization.central, "AWS::Scheduler::Schedule")["Properties"]["Target"]
    assert target["Arn"] == {"Ref": "OrganizationRunStateMachine56605A91"}
    assert json.loads(target["Input"]) == contract.SCHEDULED_EVENT
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    assert [(s["Action"], s["Resource"]) for s in _policies_of(organization.central, role_id)] == [
        ("states:StartExecution", {"Ref": "OrganizationRunStateMachine56605A91"})
    ]
    alarm = next(
        resource["Properties"]
        for logical_id, resource in resources(organization.central, "AWS::CloudWatch::Alarm").items()
        if logical_id.startswith("RunsFailed")
    )
    states = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]
        for m in alarm["Metrics"]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["Namespace"] == "AWS/States"
    }
    assert set(states) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    assert all(
        m["Dimensions"]
        == [{"Name": "StateMachineArn", "Value": {"Ref": "OrganizationRunStateMachine56605A91"}}]
        for m in states.values()
    )
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    assert "FILL(executions_failed, 0)" in expression and "FILL(executions_timed_out, 0)" in expression
    assert organization.central["Outputs"]["OrganizationRunStateMachineArn"]["Value"] == {
        "Ref": "OrganizationRunStateMachine56605A91"
    }


def test_a_single_account_stack_has_none_of_the_state_machine(synthesized_template: Template) -> None:
    """Issue 23: with organization mode off the template is the one before it. Nothing of the state
    machine is there (no Step Functions, no bucket, no grant on either), the schedule invokes the runner
    as before, RunsFailed reads the runner's metric only, and the runner's environment is the settings
    table's, as before: the state machine's name and bucket reach the runner by other ways (the stack's
    name, the step's event), so no variable was added for them."""
    types = {resource["Type"] for resource in synthesized_template["Resources"].values()}
    assert not {t for t in types if t.startswith(("AWS::StepFunctions::", "AWS::S3::"))}
    actions = {a for statement in _statements(synthesized_template) for a in _actions(statement)}
    assert not {a for a in actions if a.startswith(("states:", "s3:"))}
    target = only(synthesized_template, "AWS::Scheduler::Schedule")["Properties"]["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["RunnerFunction51B573FD", "Arn"]}
    assert "AWS/States" not in json.dumps(resources(synthesized_template, "AWS::CloudWatch::Alarm"))
    assert "OrganizationRunStateMachineArn" not in synthesized_template.get("Outputs", {})
    from ecr_fleet_auth.shared.settings import RUNNER_SETTINGS  # noqa: PLC0415 - the table, beside its use

    variables = set(runner_environment(synthesized_template))
    assert variables == {setting.env for setting in RUNNER_SETTINGS} | {
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"
    }  # fmt: skip


def test_a_single_account_stack_has_nothing_of_the_organization(synthesized_template: Template) -> None:
    assert not resources(synthesized_template, "AWS::CloudFormation::StackSet")
    variables = runner_environment(synthesized_template)
    assert variables["STACK_SET_NAME"] == "" and variables["MEMBER_DOCUMENT_NAME"] == ""
    actions = {action for statement in _statements(synthesized_template) for action in _actions(statement)}
    assert not {a for a in actions if a.startswith(("sts:", "cloudformation:", "organizations:"))}
    dashboard = only(synthesized_template, "AWS::CloudWatch::Dashboard")
    assert contract.ACCOUNT_REPORT_LOG_MESSAGE not in json.dumps(dashboard) and "SEARCH(" not in json.dumps(
        dashboard
    )
    assert contract.TARGETS_UNREACHABLE_METRIC not in json.dumps(synthesized_template)


def _without(resource: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``resource`` with the values at ``paths`` (key paths) left out."""
    copied: dict[str, Any] = json.loads(json.dumps(resource))
    for path in paths:
        *parents, last = path
        holder = copied
        for key in parents:
            holder = holder.get(key, {})
        holder.pop(last, None)
    return copied


def test_organization_mode_only_adds_to_the_single_account_stack(
    synthesized_template: Template, organization: Synth
) -> None:
    """Issue 14: "when none are set, the stack behaves exactly as today". Organization mode adds the
    StackSet and the runner's policy for the organization (assume the member role, list the stack
    instances), the event bus member stacks forward their new instances' events to, with its policy and
    its two rules (issue 18), the state machine that runs the organization beyond one invocation with
    its bucket, role, policies and log group (issue 23), and changes at most these things of the
    single-account stack: the runner's grants (the policy gains statements), its environment (the
    organization's values), the dashboard (per-account graphs), the queues' policies (the member rules
    may send too), the RunsFailed alarm (it also counts the state machine's failed, timed-out and
    stopped executions) and the schedule, which starts the state machine instead of invoking the
    runner (issue 23: its role's description and its one grant change with it). Every other resource
    is identical in both, so the single-account template holds nothing that organization mode would
    change, and the tests of the single-account stack (tests/infra/test_stack.py and the others)
    keep describing it."""
    single = synthesized_template["Resources"]
    central = organization.central["Resources"]
    assert set(single) <= set(central)
    added = {name: central[name] for name in set(central) - set(single)}
    assert sorted(resource["Type"] for resource in added.values()) == [
        "AWS::CloudFormation::StackSet",
        "AWS::CloudWatch::Alarm",  # TargetsUnreachable
        "AWS::Events::EventBus",  # MemberEvents, holding its policy
        "AWS::Events::Rule",  # InstanceRunningInMembers
        "AWS::Events::Rule",  # TagGainedInMembers
        "AWS::IAM::Policy",  # the runner's, for the organization
        "AWS::IAM::Policy",  # the runner's, for the state machine's runs (its bucket, its executions)
        "AWS::IAM::Policy",  # the state machine's role's
        "AWS::IAM::Policy",  # the state machine's Distributed Map's (its own child executions)
        "AWS::IAM::Role",  # the state machine's
        "AWS::Logs::LogGroup",  # the state machine's
        "AWS::S3::Bucket",  # the runs
        "AWS::S3::BucketPolicy",  # TLS only
        "AWS::StepFunctions::StateMachine",
    ]
    runner_role = {"Ref": _runner_role_id(organization.central)}
    runner_grants = [
        resource
        for resource in added.values()
        if resource["Type"] == "AWS::IAM::Policy" and resource["Properties"]["Roles"] == [runner_role]
    ]
    granted = {
        action
        for grants in runner_grants
        for statement in grants["Properties"]["PolicyDocument"]["Statement"]
        for action in _actions(statement)
    }
    assert (
        len(runner_grants) == 2
        and granted
        and all(
            action.startswith(("sts:", "cloudformation:", "organizations:"))
            or action in ("s3:GetObject", "s3:ListBucket", "s3:PutObject", "states:DescribeExecution")
            for action in granted
        )
    ), granted
    changed = {name for name in single if single[name] != central[name]}
    changed_types = {single[name]["Type"] for name in changed}
    assert changed_types <= {
        "AWS::IAM::Policy", "AWS::Lambda::Function", "AWS::CloudWatch::Dashboard", "AWS::SQS::QueuePolicy",
        "AWS::CloudWatch::Alarm", "AWS::Scheduler::Schedule", "AWS::IAM::Role",
    }, changed  # fmt: skip
    schedule_role = next(name for name in single if name.startswith("ScheduleRole") and name in changed)
    for name in changed:
        before, after = single[name], central[name]
        if name.startswith("ScheduleRole"):  # Scheduler's role: what it may start changes with its target
            assert before["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy"), name
            continue
        if before["Type"] in ("AWS::IAM::Policy", "AWS::SQS::QueuePolicy"):
            old = before["Properties"]["PolicyDocument"]["Statement"]
            new = after["Properties"]["PolicyDocument"]["Statement"]
            assert all(statement in new for statement in old), "organization mode took a grant away"
            assert _without(before, ("Properties", "PolicyDocument")) == _without(
                after, ("Properties", "PolicyDocument")
            )
        elif before["Type"] == "AWS::Lambda::Function":
            old_env = before["Properties"]["Environment"]["Variables"]
            new_env = after["Properties"]["Environment"]["Variables"]
            assert set(old_env) == set(new_env)
            differing = {key for key in old_env if old_env[key] != new_env[key]}
            # REGISTRIES: empty (each pair's own registry) where the single-account stack writes its own;
            # RUNS_BUCKET_NAME: the state machine's bucket, empty without one.
            assert differing <= {
                "ORGANIZATIONAL_UNIT_IDS", "MEMBER_ACCOUNTS", "MEMBER_REGIONS", "MEMBER_ROLE_NAME",
                "STACK_SET_CALL_AS", "STACK_SET_NAME", "MEMBER_DOCUMENT_NAME", "REGISTRIES",
                "RUNS_BUCKET_NAME",
            }, differing  # fmt: skip
            env = ("Properties", "Environment")
            assert _without(before, env) == _without(after, env)
        elif before["Type"] == "AWS::CloudWatch::Alarm":
            # RunsFailed: the same alarm, its expression also summing the state machine's executions.
            assert name.startswith("RunsFailed")
            metrics = ("Properties", "Metrics")
            assert _without(before, metrics) == _without(after, metrics)
            assert all(
                metric in after["Properties"]["Metrics"] for metric in before["Properties"]["Metrics"][1:]
            )
        elif before["Type"] == "AWS::Scheduler::Schedule":
            target = ("Properties", "Target")
            assert _without(before, target) == _without(after, target)
            assert before["Properties"]["Target"]["Input"] == after["Properties"]["Target"]["Input"]
    assert schedule_role


# --- the member template ---


def _named_roles(template: Template) -> list[dict[str, Any]]:
    """The member template's roles with a fixed name: the execution role (once per account)."""
    return [r for r in resources(template, "AWS::IAM::Role").values() if "RoleName" in r["Properties"]]


def test_the_member_role_trusts_only_the_central_runner(organization: Synth) -> None:
    (role,) = _named_roles(organization.member)
    assert role["Properties"]["RoleName"] == "EcrFleetAuthMember"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow" and trust["Action"] == "sts:AssumeRole"
    # The central account, and within it only the principal whose ARN is the runner's role.
    assert _join(trust["Principal"]["AWS"]) == "arn:<AWS::Partition>:iam::<CentralAccountId>:root"
    assert trust["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {"Ref": "RunnerRoleArn"}}}
    parameters = organization.member["Parameters"]
    assert parameters["CentralAccountId"]["AllowedPattern"] == ACCOUNT_ID_PATTERN
    assert re.match(parameters["RunnerRoleArn"]["AllowedPattern"], "arn:aws:iam::123456789012:role/Runner-x")
    assert not re.match(parameters["RunnerRoleArn"]["AllowedPattern"], "arn:aws:iam::123456789012:root")
    assert role["Properties"]["MaxSessionDuration"] == 3600


def test_the_member_role_is_scoped_like_the_runners_own(organization: Synth, narrowed: Synth) -> None:
    statements = {s["Sid"]: s for s in _statements(organization.member)}
    lookups = {"FindTheAgentDocument", "ListTheAgentDocuments"}
    assert set(statements) == {
        "RunTheAgentDocument", "OnlyOnTaggedInstances", "ReadFleetAndCommandState",
        "WriteInstanceCompliance", *lookups
    }  # fmt: skip
    document_name = only(organization.member, "AWS::SSM::Document")["Properties"]["Name"]
    # Every content version of the agent document (issue 18: a region mid-update may still have an
    # earlier one, which the runner sends), and nothing else: <stackName>-Agent-<sha8>.
    versions = f"arn:<AWS::Partition>:ssm:*:<AWS::AccountId>:document/{document_name[:-8]}*"
    assert document_name[:-8] == "EcrFleetAuth-Agent-"
    document = statements["RunTheAgentDocument"]
    assert _actions(document) == ["ssm:SendCommand"]
    assert _join(document["Resource"]) == versions
    # GetDocument: an earlier version's allowedPattern/allowedValues are checked against today's values.
    assert _actions(statements["FindTheAgentDocument"]) == ["ssm:DescribeDocument", "ssm:GetDocument"]
    assert _join(statements["FindTheAgentDocument"]["Resource"]) == versions
    assert _actions(statements["ListTheAgentDocuments"]) == ["ssm:ListDocuments"]
    assert statements["ListTheAgentDocuments"]["Resource"] == "*"  # no resource-level permissions
    tagged = statements["OnlyOnTaggedInstances"]
    assert _actions(tagged) == ["ssm:SendCommand"]
    assert _join(tagged["Resource"]) == "arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:instance/*"
    assert tagged["Condition"] == {"StringEquals": {"ssm:resourceTag/ecr-fleet-auth": ["enabled"]}}
    reads = statements["ReadFleetAndCommandState"]
    assert _actions(reads) == list(FLEET_READ_ACTIONS) and reads["Resource"] == "*"
    # SSM Compliance (docs/operating/compliance.md): the account's instances and managed instances only.
    compliance = statements["WriteInstanceCompliance"]
    assert _actions(compliance) == ["ssm:PutComplianceItems"]
    assert sorted(_join(arn) for arn in compliance["Resource"]) == [
        "arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:instance/*",
        "arn:<AWS::Partition>:ssm:*:<AWS::AccountId>:managed-instance/*",
    ]
    # The same four statements as the runner's own role, but for the member's document and every region.
    central = {s["Sid"]: s for s in _statements(organization.central) if s.get("Sid") in statements}
    assert {sid: _actions(s) for sid, s in central.items()} == {
        sid: _actions(s) for sid, s in statements.items() if sid not in lookups
    }
    assert central["OnlyOnTaggedInstances"]["Condition"] == tagged["Condition"]
    assert not [s for s in _statements(narrowed.member) if s["Effect"] != "Allow"]
    (narrowed_role,) = _named_roles(narrowed.member)
    assert narrowed_role["Properties"]["RoleName"] == "FleetAuthMember"


def test_the_member_document_is_the_central_one_under_its_content_name(organization: Synth) -> None:
    member = only(organization.member, "AWS::SSM::Document")["Properties"]
    assert member["Content"] == document_content(organization.central), "one source: the same agent"
    assert member["Name"] == content_named("EcrFleetAuth-Agent", member["Content"])
    assert member["UpdateMethod"] == "Replace" and member["DocumentType"] == "Command"
    central = only(organization.central, "AWS::SSM::Document")["Properties"]
    assert "Name" not in central, "the central document keeps its generated name"


def test_the_member_instance_policy_is_the_central_one_for_every_region(organization: Synth) -> None:
    member = only(organization.member, "AWS::IAM::ManagedPolicy")["Properties"]
    central = only(organization.central, "AWS::IAM::ManagedPolicy")["Properties"]
    assert member["ManagedPolicyName"] == "EcrFleetAuth-InstanceAccess", "attachable by a known name"
    member_statements = {s["Sid"]: s for s in member["PolicyDocument"]["Statement"]}
    central_statements = {s["Sid"]: s for s in central["PolicyDocument"]["Statement"]}
    assert {sid: _actions(s) for sid, s in member_statements.items()} == {
        sid: _actions(s) for sid, s in central_statements.items()
    }
    assert _join(member_statements["PullImages"]["Resource"]) == (
        "arn:<AWS::Partition>:ecr:*:<AWS::AccountId>:repository/*"
    )
    assert _join(member_statements["WriteRunCommandOutput"]["Resource"]) == (
        "arn:<AWS::Partition>:logs:*:<AWS::AccountId>:log-group:<RunCommandOutputLogGroup>:*"
    )


def test_global_resources_once_per_account_regional_ones_per_region(organization: Synth) -> None:
    """A StackSet places one stack per account and region; IAM names are per account."""
    member = organization.member
    assert member["Conditions"]["CreatesIam"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "IamRegion"}]
    }
    # Named IAM resources once per account; the event forwarder's role (issue 18) has a generated name
    # and belongs to its region's rules, so each region's stack has its own.
    for resource_type in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, resource in resources(member, resource_type).items():
            expected = "OutsideTheCentralStack" if logical_id.startswith("EventForwarder") else "CreatesIam"
            assert resource["Condition"] == expected, logical_id
    assert "Condition" not in only(member, "AWS::SSM::Document")
    # The output group under the central group's name, except where the central stack has it already;
    # deleted with the stack instance, so an account that leaves and comes back can create it again.
    group = only(member, "AWS::Logs::LogGroup")
    assert group["Properties"]["LogGroupName"] == {"Ref": "RunCommandOutputLogGroup"}
    assert group["Condition"] == "OutsideTheCentralStack"
    assert group["DeletionPolicy"] == "Delete"
    assert group["Properties"]["RetentionInDays"] == 30
    assert "Fn::Not" in member["Conditions"]["OutsideTheCentralStack"]


def test_the_member_template_needs_no_bootstrap(organization: Synth) -> None:
    member = organization.member
    assert "BootstrapVersion" not in member.get("Parameters", {})
    assert "Rules" not in member
    assert not resources(member, "AWS::CDK::Metadata")
    assert "aws:cdk:path" not in json.dumps(member)


# --- cdk-nag and cfn-lint on both templates ---


def _nag_report(outdir: Path) -> dict[str, Any]:
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    return dict(nag)


@pytest.mark.parametrize("shape", ["organization", "narrowed"])
def test_cdk_nag_is_clean_on_both_templates(shape: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(shape)
    for outdir in (synth.outdir, synth.member_dir):
        nag = _nag_report(outdir)
        assert nag["conclusion"] == "success", outdir
        assert nag["violations"] == []
        for suppressed in nag["suppressedViolations"]:
            assert len(suppressed["reason"]) >= 20, suppressed


@pytest.mark.parametrize("shape", ["organization", "narrowed"])
def test_cfn_lint_is_clean_on_both_templates(shape: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(shape)
    for template_file in (synth.outdir / "EcrFleetAuth.template.json", synth.member_file):
        unexpected = cfn_lint_findings(template_file)
        assert unexpected == [], json.dumps(unexpected, indent=1)


def test_the_cli_synthesizes_an_organization_offline(tmp_path: Path) -> None:
    """`make synth CDK_CONTEXT="-c organizationalUnitIds=... -c memberRegions=..."`, as a user runs it."""
    require((PROJECT_ROOT / "node_modules" / ".bin" / "cdk").exists(), "the CDK CLI (npm ci)")
    result = cdk_synth(
        "-c",
        "organizationalUnitIds=ou-abcd-12345678",
        "-c",
        "memberRegions=eu-west-1,us-east-1",
        "-c",
        f"organizationId={ORGANIZATION_ID}",
        outdir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    central = json.loads((tmp_path / "EcrFleetAuth.template.json").read_text())
    assert only(central, "AWS::CloudFormation::StackSet")["Properties"]["StackSetName"] == STACK_SET
    member = json.loads((tmp_path / "EcrFleetAuth.members" / f"{MEMBER_STACK_ID}.template.json").read_text())
    assert resources(member, "AWS::IAM::Role")


# --- synth errors ---


def _config(**overrides: Any) -> DeploymentConfig:
    return DeploymentConfig.from_context({**default_context(), **overrides}.get)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"memberAccounts": "111111111111"}, ["memberAccounts='111111111111': needs organizationalUnitIds"]),
        ({"memberRegions": ["eu-west-1"]}, ["memberRegions='eu-west-1': needs organizationalUnitIds"]),
        ({"memberRoleName": "FleetAuth"}, ["memberRoleName='FleetAuth': applies only to an organization"]),
        ({"stackSetCallAs": "SELF"}, ["stackSetCallAs='SELF': applies only to an organization"]),
        # IAM role names are ASCII (CreateRole: [\w+=,.@-]+ in IAM's own, ASCII, sense).
        (
            {"organizationId": ORGANIZATION_ID},
            [f"organizationId='{ORGANIZATION_ID}': needs organizationalUnitIds"],
        ),
        (
            {"organizationalUnitIds": UNITS[0], "organizationId": ORGANIZATION_ID, "memberRoleName": "Rôle"},
            ["memberRoleName='Rôle': not accepted"],
        ),
        (
            {
                "organizationalUnitIds": UNITS[0],
                "organizationId": ORGANIZATION_ID,
                "regions": "eu-west-1,us-east-1",
            },
            ["regions='eu-west-1, us-east-1': organization mode", "memberRegions"],
        ),
        # Member accounts' new instances are forwarded to this stack's bus, which only the organization
        # may write to (aws:PrincipalOrgID): its id is needed, unless newInstances is off.
        (
            {"organizationalUnitIds": UNITS[0]},
            [
                "organizationId='': needed with organizationalUnitIds and newInstances",
                "describe-organization",
            ],
        ),
        (
            {"organizationalUnitIds": UNITS[0], "organizationId": "o-short"},
            ["organizationId='o-short': not accepted"],
        ),
        # Lambda Developer Guide, "Configuring reserved concurrency": a function with reserved
        # concurrency never runs more at once, the rest throttled (TooManyRequestsException); the
        # state machine runs 50 children at once.
        (
            {"organizationalUnitIds": UNITS[0], "organizationId": ORGANIZATION_ID, "reservedConcurrency": 1},
            ["reservedConcurrency=1: organization mode", "set it to 53 or more, or 0"],
        ),
        (
            {"organizationalUnitIds": UNITS[0], "organizationId": ORGANIZATION_ID, "reservedConcurrency": 52},
            ["reservedConcurrency=52: organization mode", "up to 50 invocations"],
        ),
    ],
)
def test_settings_that_cannot_go_together_stop_the_synth(
    overrides: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(SettingsError) as error:
        _config(**overrides)
    message = str(error.value)
    for part in expected:
        assert part in message
    assert len(message.splitlines()) == 2, "only that combination is reported"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        _config(memberAccounts="111111111111", memberRegions="eu-west-1", action="reboot")
    lines = str(error.value).splitlines()
    assert len(lines) == 4
    assert any(line.startswith("  action='reboot'") for line in lines)
    assert any(line.startswith("  memberAccounts=") for line in lines)
    assert any(line.startswith("  memberRegions=") for line in lines)


def test_organization_settings_that_go_together_are_accepted() -> None:
    config = _config(
        organizationalUnitIds=",".join(UNITS),
        organizationId=ORGANIZATION_ID,
        memberAccounts="111111111111",
        regions="eu-west-1",
    )
    assert config.organizational_unit_ids == tuple(UNITS)
    assert config.member_accounts == ("111111111111",)
    assert _config(regions="eu-west-1,us-east-1").regions == ("eu-west-1", "us-east-1"), "single-account"
    for reserved in (0, 53):
        organization = _config(
            organizationalUnitIds=UNITS[0], organizationId=ORGANIZATION_ID, reservedConcurrency=reserved
        )
        assert organization.reserved_concurrency == reserved
    single_account = _config(reservedConcurrency=1)
    assert single_account.reserved_concurrency == 1, "one invocation at a time, single-account"


# --- member accounts' new instances (issue 18) ---


def _central_rule(template: Template, name: str) -> dict[str, Any]:
    (rule,) = [
        r["Properties"]
        for i, r in resources(template, "AWS::Events::Rule").items()
        if re.fullmatch(rf"{name}[0-9A-F]{{8}}", i)
    ]
    return rule


def test_member_accounts_new_instances_reach_the_central_queue_through_a_bus_only_the_organization_may_use(
    organization: Synth,
) -> None:
    """EventBridge forwards events bus to bus across accounts and regions, keeping the source ``account``,
    ``region`` and resource ARN (EventBridge User Guide, "Sending and receiving events between AWS
    accounts"); a bus takes events from other accounts only as its resource policy allows, and
    ``aws:PrincipalOrgID`` limits that to an organization's principals (same guide; IAM User Guide,
    global condition keys)."""
    central = organization.central
    ((bus_id, bus),) = resources(central, "AWS::Events::EventBus").items()
    assert resources(central, "AWS::Events::EventBusPolicy") == {}  # the bus holds its policy
    (statement,) = bus["Properties"]["Policy"]["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Principal"]) == (
        "Allow",
        "events:PutEvents",
        {"AWS": "*"},
    )
    name = bus["Properties"]["Name"]
    assert (
        _join(statement["Resource"])
        == f"arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/{name}"
    )
    assert statement["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORGANIZATION_ID}
    assert _join(statement["Condition"]["ArnLike"]["aws:PrincipalArn"]) == (
        "arn:<AWS::Partition>:iam::*:role/ecr-fleet-auth/EcrFleetAuth/*"
    )
    # The same two patterns as the home rules, on that bus, into the same queue.
    for name in ("InstanceRunning", "TagGained"):
        home, members = (
            _central_rule(central, f"NewInstances{name}"),
            _central_rule(central, f"NewInstances{name}InMembers"),
        )
        assert members["EventBusName"] == {"Ref": bus_id} and "EventBusName" not in home
        assert members["EventPattern"] == home["EventPattern"]
        assert [t["Arn"] for t in members["Targets"]] == [t["Arn"] for t in home["Targets"]]
    (stack_set,) = resources(central, "AWS::CloudFormation::StackSet").values()
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack_set["Properties"]["Parameters"]}
    assert parameters["CentralEventBusArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}


def test_each_member_stack_forwards_its_own_instance_events_with_a_role_that_may_do_only_that(
    organization: Synth,
) -> None:
    """A rule whose target is an event bus in another account or Region needs a role EventBridge assumes
    (EventBridge User Guide, "Sending and receiving events between AWS accounts"; "... between AWS
    Regions"): trusted by events.amazonaws.com for this account only (aws:SourceAccount, the confused
    deputy guard), allowed events:PutEvents on the central bus only."""
    member = organization.member
    central = organization.central
    roles = {i: r for i, r in resources(member, "AWS::IAM::Role").items() if i.startswith("EventForwarder")}
    ((role_id, role),) = roles.items()
    properties = role["Properties"]
    assert properties["Path"] == "/ecr-fleet-auth/EcrFleetAuth/"
    (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = properties["Policies"]
    (allowed,) = policy["PolicyDocument"]["Statement"]
    assert (allowed["Action"], allowed["Resource"]) == ("events:PutEvents", {"Ref": "CentralEventBusArn"})
    rules = resources(member, "AWS::Events::Rule")
    assert sorted(
        json.dumps(r["Properties"]["EventPattern"], sort_keys=True) for r in rules.values()
    ) == sorted(
        json.dumps(_central_rule(central, f"NewInstances{name}InMembers")["EventPattern"], sort_keys=True)
        for name in ("InstanceRunning", "TagGained")
    )
    for rule in rules.values():
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": "CentralEventBusArn"}
        assert target["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
        assert "EventBusName" not in rule["Properties"]  # the account's default bus, where EC2 sends
        assert rule["Condition"] == "OutsideTheCentralStack"  # the central pair's own rules see them
    assert re.match(
        member["Parameters"]["CentralEventBusArn"]["AllowedPattern"],
        "arn:aws:events:eu-west-1:123456789012:event-bus/EcrFleetAuthMemberEvents",
    )


def test_without_new_instances_an_organization_forwards_nothing() -> None:
    outdir = Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-test-"))
    central = synthesize({**ORGANIZATION, "newInstances": "false"}, outdir=str(outdir))["EcrFleetAuth"]
    member = json.loads((outdir / "EcrFleetAuth.members" / f"{MEMBER_STACK_ID}.template.json").read_text())
    assert resources(central, "AWS::Events::EventBus") == {} == resources(member, "AWS::Events::Rule")
    assert "CentralEventBusArn" not in member["Parameters"]
