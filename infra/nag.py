"""cdk-nag (AwsSolutions) as a policy-validation plugin, and acknowledgments with reasons."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"


def add_checks(app: App) -> None:
    """Violations make synth fail; the report lands in cdk.out/validation-report.json."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(
    scope: IConstruct, rule: str, *, reason: str, applies_to: Sequence[str] | None = None
) -> None:
    """Acknowledge ``rule`` (e.g. AwsSolutions-IAM5) below ``scope``, for the listed findings only."""
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, not {reason!r}")
    findings = [rule] if applies_to is None else [f"{rule}[{finding}]" for finding in applies_to]
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=f"{PACK}::{finding}", reason=reason) for finding in findings)
    )


def wildcard_arn_finding(
    scope: IConstruct, *, service: str, resource: str, region: str | None = None, account: str | None = None
) -> str:
    """The IAM5 finding id cdk-nag reports for ``arn:<partition>:service:<region>:<account>:resource``.

    cdk-nag names each wildcard finding by the resolved ARN, with pseudo parameters
    written as <AWS::Name> and concrete values (from an explicit env) as they are.
    ``region`` and ``account`` replace the stack's (``*``: any).
    """
    stack = Stack.of(scope)

    def shown(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    region = shown(stack.region if region is None else region, "Region")
    account = shown(stack.account if account is None else account, "AccountId")
    return f"Resource::arn:<AWS::Partition>:{service}:{region}:{account}:{resource}"


def attribute_finding(resource: CfnElement, attribute: str, suffix: str) -> str:
    """The IAM5 finding id for ``Fn::GetAtt [resource, attribute]`` followed by ``suffix``."""
    return f"Resource::<{Stack.of(resource).get_logical_id(resource)}.{attribute}>{suffix}"
