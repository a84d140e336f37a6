"""A region's partition and DNS suffix, from botocore's own partition data: never a hand list.

ARNs (a member account's role) and registry hosts (an account's own ECR registry) depend on the
partition: ``arn:aws-eusc:...`` and ``<account>.dkr.ecr.eusc-de-east-1.amazonaws.eu`` in the European
Sovereign Cloud, ``aws-iso-e`` / ``cloud.adc-e.uk``, ``aws-iso-f`` / ``csp.hci.ic.gov``, and so on. A
list of region-name prefixes kept here would be wrong the day AWS opens a partition (``eusc-``,
``eu-isoe-`` and ``us-isof-`` all came after ``cn-`` and ``us-gov-``). botocore ships the partitions
(``botocore/data/partitions.json``: each partition's explicit ``regions``, its ``regionRegex`` and its
``outputs``, ``dnsSuffix`` among them) and resolves a region with the endpoint rule set's own
``aws.partition`` function (``botocore.endpoint_provider.RuleSetStandardLibrary.aws_partition``):
an explicit region first, then the first partition whose ``regionRegex`` matches, else ``aws``. The
runner calls that function, so it answers what the SDK that signs its requests answers; the data
is the Lambda runtime's botocore.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from botocore.endpoint_provider import RuleSetStandardLibrary
from botocore.loaders import create_loader

from .settings import RunnerSettings


@dataclass(frozen=True)
class Partition:
    name: str  # aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, ...
    dns_suffix: str  # amazonaws.com, amazonaws.com.cn, amazonaws.eu, c2s.ic.gov, ...


@cache
def _library() -> RuleSetStandardLibrary:
    return RuleSetStandardLibrary(create_loader().load_data("partitions"))


@cache
def partition_of(region: str) -> Partition:
    """The partition of ``region`` as botocore's endpoint rules resolve it."""
    found = _library().aws_partition(region)
    return Partition(name=str(found["name"]), dns_suffix=str(found["dnsSuffix"]))


def role_arn(account: str, role_name: str, region: str) -> str:
    """The ARN of an IAM role of ``account``, in the partition of ``region``."""
    return f"arn:{partition_of(region).name}:iam::{account}:role/{role_name}"


def own_registry(account: str, region: str) -> str:
    """The private ECR registry of ``account`` in ``region``, with its partition's DNS suffix."""
    return f"{account}.dkr.ecr.{region}.{partition_of(region).dns_suffix}"


def registries_for(settings: RunnerSettings, account: str, region: str) -> tuple[str, ...]:
    """The registries a run logs into in ``account`` and ``region``: ``REGISTRIES``, or, left empty
    (organization mode with ``registries`` empty), that account's own registry there."""
    return settings.registries or (own_registry(account, region),)
