"""Managed nodes as SSM knows them, and how DescribeInstanceInformation filters them.

SSM's view of an instance is its own: its ping status, platform, the tags it
resolves targets by, and the EC2 state SendCommand checks all lag what EC2 says,
so they are kept here, apart from the EC2 inventory (``localfleet.ec2``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...transport.endpoint import ServiceError
from .agent_interface import Executor

PING_STATUSES = ("Online", "ConnectionLost", "Inactive")
PLATFORM_TYPES = ("Windows", "Linux", "MacOS")
# EC2 states in which SendCommand refuses an instance id (botocore's InvalidInstanceId
# documentation) and in which a waiting command can no longer be delivered.
GONE_STATES = frozenset({"shutting-down", "terminated"})

# tag key, accepted values (any value when empty) → ids of the instances carrying such a tag.
TagResolver = Callable[[str, Sequence[str]], Iterable[str]]


@dataclass
class ManagedInstance:
    instance_id: str
    executor: Executor
    ping_status: str = "Online"
    platform_type: str = "Linux"
    platform_name: str = "Amazon Linux"
    platform_version: str = "2023"
    agent_version: str = "3.3.1142.0"
    ip_address: str = "10.0.0.1"
    computer_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    delivery_delay: float = 0.0  # seconds before the agent picks a command up
    state: str = "running"  # the EC2 state as SendCommand sees it (it lags DescribeInstances)
    commandable: bool = True  # False: the caller's role may not command this node (IAM)
    last_ping: float = field(default_factory=time.time)
    registered: int = 0  # registration order: how listings are ordered

    def __post_init__(self) -> None:
        if self.ping_status not in PING_STATUSES:
            raise ValueError(f"ping_status must be one of {PING_STATUSES}")
        if self.platform_type not in PLATFORM_TYPES:
            raise ValueError(f"platform_type must be one of {PLATFORM_TYPES}")
        if not self.computer_name:
            self.computer_name = f"ip-{self.ip_address.replace('.', '-')}.eu-west-1.compute.internal"

    def describe(self) -> dict[str, Any]:
        return {
            "InstanceId": self.instance_id,
            "PingStatus": self.ping_status,
            "LastPingDateTime": self.last_ping,
            "AgentVersion": self.agent_version,
            "IsLatestVersion": False,
            "PlatformType": self.platform_type,
            "PlatformName": self.platform_name,
            "PlatformVersion": self.platform_version,
            "ResourceType": "EC2Instance",
            "IPAddress": self.ip_address,
            "ComputerName": self.computer_name,
        }


def tags_resolver(instances: Callable[[], Iterable[ManagedInstance]]) -> TagResolver:
    """A resolver over the tags given to ``register_instance`` (the default when none is supplied)."""

    def resolve(key: str, values: Sequence[str]) -> list[str]:
        return [
            instance.instance_id
            for instance in instances()
            if key in instance.tags and (not values or instance.tags[key] in values)
        ]

    return resolve


# DescribeInstanceInformation filter key → the instance's value it compares.
FILTER_FIELDS: dict[str, Callable[[ManagedInstance], str]] = {
    "InstanceIds": lambda i: i.instance_id,
    "AgentVersion": lambda i: i.agent_version,
    "PingStatus": lambda i: i.ping_status,
    "PlatformTypes": lambda i: i.platform_type,
    "ResourceType": lambda _: "EC2Instance",
}
UNSUPPORTED_FILTER_KEYS = ("ActivationIds", "IamRole", "AssociationStatus")
ENUM_FILTER_VALUES = {"PingStatus": PING_STATUSES, "PlatformTypes": PLATFORM_TYPES}


def filter_instances(
    instances: Mapping[str, ManagedInstance],
    filters: Sequence[tuple[str, Sequence[str]]],
    resolve_tags: TagResolver,
) -> list[ManagedInstance]:
    """Instances matching every (key, values) filter; values within one filter are alternatives."""
    tag_filters = [key for key, _ in filters if key.startswith("tag:") or key == "tag-key"]
    if tag_filters and len(tag_filters) != len(filters):
        # DescribeInstanceInformation: tag filters cannot be combined with other filter types.
        raise ServiceError("InvalidFilterKey", "tag filters cannot be combined with other filter keys")
    by_id = [values for key, values in filters if key == "InstanceIds"]
    if by_id:  # a few ids out of a big fleet: look them up rather than scan
        wanted = set(by_id[0])
        selected = [instances[i] for i in wanted if i in instances]
        selected.sort(key=lambda instance: instance.registered)
    else:
        selected = list(instances.values())
    for key, values in filters:
        selected = _apply_filter(selected, key, values, resolve_tags)
    return selected


def _apply_filter(
    instances: list[ManagedInstance], key: str, values: Sequence[str], resolve_tags: TagResolver
) -> list[ManagedInstance]:
    if key.startswith("tag:"):
        matching = set(resolve_tags(key[len("tag:") :], values))
        return [i for i in instances if i.instance_id in matching]
    if key == "tag-key":
        keyed: set[str] = set()
        for tag_key in values:
            keyed.update(resolve_tags(tag_key, []))
        return [i for i in instances if i.instance_id in keyed]
    if key in UNSUPPORTED_FILTER_KEYS:
        return []  # no simulated instance has activations, roles or associations
    if key not in FILTER_FIELDS:
        raise ServiceError("InvalidFilterKey", f"The filter key {key} is not valid")
    allowed = ENUM_FILTER_VALUES.get(key)
    if allowed is not None and any(value not in allowed for value in values):
        raise ServiceError(
            "InvalidInstanceInformationFilterValue",
            f"The filter value for {key} must be among [{', '.join(allowed)}]",
        )
    field_of = FILTER_FIELDS[key]
    wanted = set(values)
    return [i for i in instances if field_of(i) in wanted]


def filters_from_request(params: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """Both filter forms — the older InstanceInformationFilterList and Filters — as (key, values)."""
    pairs = [(f["key"], list(f["valueSet"])) for f in params.get("InstanceInformationFilterList", [])]
    pairs += [(f["Key"], list(f["Values"])) for f in params.get("Filters", [])]
    return pairs
