"""The managed policy instances need so the agent can log in and docker can pull."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from aws_cdk import Aws, Stack, aws_iam
from constructs import Construct

from ecr_fleet_auth.shared import contract

from .nag import acknowledge, wildcard_arn_finding

PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
_PRIVATE_HOST = re.compile(contract.PRIVATE_REGISTRY_PARTS_RE)


def own_registry() -> str:
    """The account's own registry in the stack's region (a deploy-time value)."""
    return f"{Aws.ACCOUNT_ID}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}"


class InstanceAccessPolicy(Construct):
    """Attach to the instance role (with AmazonSSMManagedInstanceCore) of every managed instance.

    ``command_output_arn`` is the Run Command output log group's ARN (ending in ``:*``). With
    ``all_regions`` the account's own registry is allowed in every region (IAM is global, and a
    member account gets one policy for all of its regions); ``managed_policy_name`` fixes its name.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registries: Sequence[str],
        command_output_arn: str,
        all_regions: bool = False,
        managed_policy_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._all_regions = all_regions
        statements = [
            aws_iam.PolicyStatement(
                sid="GetEcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
            aws_iam.PolicyStatement(
                sid="WriteRunCommandOutput",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[command_output_arn],
            ),
            aws_iam.PolicyStatement(
                sid="FindRunCommandOutputGroup", actions=["logs:DescribeLogGroups"], resources=["*"]
            ),
        ]
        # Pulling from ECR Public (either name) needs no IAM permission, only its token calls.
        repositories = self._repositories(
            host for host in registries if host not in contract.PUBLIC_REGISTRIES
        )
        if repositories:
            statements.append(
                aws_iam.PolicyStatement(sid="PullImages", actions=PULL_ACTIONS, resources=list(repositories))
            )
        if any(host in contract.PUBLIC_REGISTRIES for host in registries):
            statements.append(
                aws_iam.PolicyStatement(
                    sid="GetEcrPublicToken",
                    actions=["ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"],
                    resources=["*"],
                )
            )
        self.policy = aws_iam.ManagedPolicy(
            self,
            "Policy",
            description="ecr-fleet-auth: lets instances fetch ECR tokens, pull, and write Run Command output",
            managed_policy_name=managed_policy_name,
            statements=statements,
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            applies_to=["Resource::*"],
            reason=(
                "ecr:GetAuthorizationToken, ecr-public:GetAuthorizationToken, sts:GetServiceBearerToken "
                "and logs:DescribeLogGroups have no resource-level permissions."
            ),
        )
        if repositories:
            acknowledge(
                self.policy,
                "AwsSolutions-IAM5",
                applies_to=list(repositories.values()),
                reason="Instances may pull any image of the configured registries, as a docker login allows.",
            )

    def _repositories(self, hosts: Iterable[str]) -> dict[str, str]:
        """Repository ARN pattern of each private registry -> its cdk-nag finding id."""
        stack = Stack.of(self)
        repositories: dict[str, str] = {}
        for host in hosts:
            match = _PRIVATE_HOST.match(host)
            if match is None:  # the account's own registry, known at deploy time
                region = "*" if self._all_regions else None
                arn = stack.format_arn(service="ecr", resource="repository", resource_name="*", region=region)
                finding = wildcard_arn_finding(self, service="ecr", resource="repository/*", region=region)
            else:
                account, region = match["account"], match["region"]
                arn = stack.format_arn(
                    service="ecr", resource="repository", resource_name="*", account=account, region=region
                )
                finding = f"Resource::arn:<AWS::Partition>:ecr:{region}:{account}:repository/*"
            repositories[arn] = finding
        return repositories
