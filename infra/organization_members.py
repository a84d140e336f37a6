"""Organization mode: the StackSet that places the member template (``member_stack.py``) in every
account and region of the organizational units, and the runner's grants for them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Aws, Stack, Stage, aws_cloudformation, aws_iam, aws_logs, aws_s3_assets
from constructs import Construct

from .config import DeploymentConfig
from .member_stack import iam_region, stack_set_name, synthesize_member_template
from .nag import acknowledge, wildcard_arn_finding


class OrganizationMembers(Construct):
    """The StackSet placing the member template in every account of the organizational units."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        registries: list[str],
        runner_role: aws_iam.IRole,
        command_output: aws_logs.ILogGroup,
        central_event_bus_arn: str | None = None,
    ) -> None:
        """``central_event_bus_arn`` (with ``newInstances``): where member stacks forward their events."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.stack_set_name = stack_set_name(config.stack_name)
        # Beside the central template (cdk.out/<stack>.members/Members.template.json), to be read; a
        # deployment not named after its stack (one of several in it) adds its name.
        stage = Stage.of(self)
        assert stage is not None, "a stack is always in an app"
        named = "" if config.stack_name == stack.stack_name else f".{config.stack_name}"
        template_file, self.template = synthesize_member_template(
            config, registries, Path(stage.outdir) / f"{stack.artifact_id}{named}.members"
        )
        body = template_file.read_bytes()
        # TemplateURL, not TemplateBody: the member template is about 44 kB as synthesized, most of
        # it the agent document (about 34 kB, and SSM lets it grow to 64 kB), while TemplateBody
        # holds at most 51,200 bytes (CreateStackSet); TemplateURL takes up to 1 MB from S3. The
        # template is a file asset, in the bootstrap bucket the central stack's template comes from.
        asset = aws_s3_assets.Asset(
            self,
            "Template",
            path=str(template_file),
            asset_hash=hashlib.sha256(body).hexdigest(),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
        )
        units = list(config.organizational_unit_ids)
        targets = aws_cloudformation.CfnStackSet.DeploymentTargetsProperty(
            organizational_unit_ids=units,
            accounts=list(config.member_accounts) or None,
            account_filter_type="INTERSECTION" if config.member_accounts else None,
        )
        self.stack_set = aws_cloudformation.CfnStackSet(
            self,
            "StackSet",
            stack_set_name=self.stack_set_name,
            description=f"ecr-fleet-auth members of {config.stack_name}: agent document, instance policy, "
            f"execution role {config.member_role_name}",
            permission_model="SERVICE_MANAGED",
            call_as=config.stack_set_call_as,
            auto_deployment=aws_cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            managed_execution={"Active": True},
            capabilities=["CAPABILITY_NAMED_IAM"],
            template_url=asset.http_url,
            parameters=[
                aws_cloudformation.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=value)
                for key, value in {
                    "CentralAccountId": Aws.ACCOUNT_ID,
                    "CentralRegion": Aws.REGION,
                    "RunnerRoleArn": runner_role.role_arn,
                    "RunCommandOutputLogGroup": command_output.log_group_name,
                    "IamRegion": iam_region(config),
                    **({"CentralEventBusArn": central_event_bus_arn} if central_event_bus_arn else {}),
                }.items()
            ],
            stack_instances_group=[
                aws_cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=targets, regions=list(config.member_regions) or [Aws.REGION]
                )
            ],
            # Each account's stack stands alone: regions in parallel, and failures tolerated so one
            # account that refuses (an SCP, a region not enabled) does not stop the others; its stack
            # instance is then not CURRENT and the runner reports it (member_stack_not_ready).
            operation_preferences=aws_cloudformation.CfnStackSet.OperationPreferencesProperty(
                region_concurrency_type="PARALLEL",
                max_concurrent_percentage=100,
                failure_tolerance_percentage=100,
            ),
        )
        self._grant(config, runner_role)

    def _grant(self, config: DeploymentConfig, runner_role: aws_iam.IRole) -> None:
        stack = Stack.of(self)
        role_arn = stack.format_arn(
            service="iam", region="", account="*", resource="role", resource_name=config.member_role_name
        )
        # A service-managed StackSet lives in the management account, also when a delegated
        # administrator creates it (CreateStackSet, CallAs): its ARN's account is not this one then.
        stack_set_account = "*" if config.stack_set_call_as == "DELEGATED_ADMIN" else None
        stack_set_arn = stack.format_arn(
            service="cloudformation",
            account=stack_set_account,
            resource="stackset",
            resource_name=f"{self.stack_set_name}:*",
        )
        statements = [
            aws_iam.PolicyStatement(
                sid="AssumeMemberRoles",
                actions=["sts:AssumeRole"],
                resources=[role_arn],
                # Only roles of accounts in the runner's own organization (no org id hard-coded).
                conditions={"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
            ),
            aws_iam.PolicyStatement(
                sid="ListMemberStackInstances",
                actions=["cloudformation:ListStackInstances"],
                resources=[stack_set_arn],
            ),
        ]
        if config.stack_set_call_as == "DELEGATED_ADMIN":
            # CloudFormation checks a DELEGATED_ADMIN caller's registration with this call.
            statements.append(
                aws_iam.PolicyStatement(
                    sid="CheckDelegatedAdministrator",
                    actions=["organizations:ListDelegatedAdministrators"],
                    resources=["*"],
                )
            )
        policy = aws_iam.Policy(self, "RunnerPolicy", statements=statements)
        policy.attach_to_role(runner_role)
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=[f"Resource::arn:<AWS::Partition>:iam::*:role/{config.member_role_name}"],
            reason=(
                "The member role exists in every account of the organizational units, new ones included; "
                "aws:ResourceOrgID = aws:PrincipalOrgID keeps it inside the runner's organization."
            ),
        )
        stack_set_finding = wildcard_arn_finding(
            self,
            service="cloudformation",
            resource=f"stackset/{self.stack_set_name}:*",
            account=stack_set_account,
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=[stack_set_finding],
            reason=(
                "The StackSet's ARN ends in an id CloudFormation assigns; with DELEGATED_ADMIN its account "
                "is the management account, unknown here. Only this StackSet name is allowed."
            ),
        )
        if config.stack_set_call_as == "DELEGATED_ADMIN":
            acknowledge(
                policy,
                "AwsSolutions-IAM5",
                applies_to=["Resource::*"],
                reason="organizations:ListDelegatedAdministrators has no resource-level permissions.",
            )
