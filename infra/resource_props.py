"""The props that hand ``EcrFleetAuth`` what the app already has: not settings (no cdk.json key).

Each is a name, its type as ``EcrFleetAuthProps`` declares it, and its meaning. ``make props``
(tools/generate_props.py) writes them into ``props.py`` after the settings' props; the docs' props
reference (tools/mkdocs_hooks.py) shows them. This module imports only the standard library, so
the documentation build reads it without starting the CDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


class ImportedOnUse:
    """A module imported when one of its names is first read: ``props.py``'s annotations name the
    CDK's modules, and ``typing.get_type_hints`` needs them, but importing the props must not start
    the CDK's runtime (the docs build reads them)."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a module's public name (copy, pickle and the like probing)
            raise AttributeError(name)
        return getattr(importlib.import_module(self._module), name)

    def __repr__(self) -> str:
        return f"<{self._module}, imported on use>"


@dataclass(frozen=True)
class ResourceProp:
    """A prop that hands the construct something the app already has (not a setting: no cdk.json key)."""

    name: str
    type: str
    doc: str


RESOURCE_PROPS = (
    ResourceProp(
        "name",
        "str",
        "The name this deployment goes by: the runner's metrics' `service` dimension (its alarms read only "
        "its own), the dashboard `<name>-<region>`, and in organization mode the StackSet `<name>-Members` "
        "and the member accounts' `<name>-Agent-...` document and `<name>-InstanceAccess` policy. Default: "
        "the stack's name, followed by `-<construct id>` unless the id is `Default`; the form of `stackName` "
        "(letters, digits, -).",
    ),
    ResourceProp(
        "topic",
        "aws_sns.ITopic",
        "An existing SNS topic for the run reports and the alarms, instead of the encrypted topic the "
        "construct creates (then it creates no topic and no key). The runner may `sns:Publish` to it. "
        "CloudWatch alarms publish to it as the service `cloudwatch.amazonaws.com`: if it is encrypted, "
        "its key policy must allow that service `kms:Decrypt` and `kms:GenerateDataKey*` (the construct "
        "adds the statement to a key of the same app, not to an imported one).",
    ),
    ResourceProp(
        "topic_key",
        "aws_kms.IKey",
        "The KMS key `topic` is encrypted with: the runner may `kms:GenerateDataKey*` and `kms:Decrypt` with "
        "it to publish. Only with `topic`. Default: the key the topic names (`master_key`: a topic of the "
        "same app, or imported with `Topic.from_topic_attributes(..., key_arn=...)`); a topic imported by "
        "its ARN alone names none, so give its key here if it is encrypted.",
    ),
    ResourceProp(
        "instance_roles",
        "Sequence[aws_iam.IRole]",
        "Instance roles to attach the instances' managed policy to (ECR tokens, pulls, Run Command output); "
        "they need `AmazonSSMManagedInstanceCore` too. Default: none (attach the policy, "
        "`EcrFleetAuth.instance_policy`, yourself).",
    ),
    ResourceProp(
        "permissions_boundary",
        "aws_iam.IManagedPolicy",
        "A permissions boundary for every IAM role the construct creates (the runner's, the schedule's, the "
        "stack's shared AwsCustomResource provider's). Member accounts' roles in organization mode are "
        "created by the StackSet and do not get it.",
    ),
    ResourceProp(
        "tags",
        "Mapping[str, str]",
        "Tags for every taggable resource the construct creates (and the StackSet, which passes them to "
        "the member stacks' resources). Keys and values as AWS accepts them.",
    ),
)
