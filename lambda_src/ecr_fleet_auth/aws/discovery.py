"""Discovery adapter: which EC2 instances carry the target tag, and what SSM knows of them.

EC2 says which instances exist, carry the tag and are running; SSM's managed-
instance information says whether each can receive a command (ping status) and
on which platform. Both are read with paginators; callers get ``FleetMember``
domain objects and never see a boto3 response.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeDef
    from mypy_boto3_ssm import SSMClient

# EC2 accepts up to 200 values per filter and pages of up to 1,000 instances;
# SSM pages of at most 50 and at most 100 values per InstanceIds filter (50 ids
# per filter, one page each).
EC2_FILTER_VALUES = 200
EC2_PAGE_SIZE = 1000
SSM_FILTER_VALUES = 50
SSM_PAGE_SIZE = 50

T = TypeVar("T")


@dataclass(frozen=True)
class TargetTag:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ManagedInfo:
    """What SSM knows of a managed instance."""

    ping_status: str
    platform_type: str
    platform_name: str
    agent_version: str


@dataclass(frozen=True)
class FleetMember:
    """One instance the run is about: tagged and running, or explicitly requested."""

    instance_id: str
    name: str = ""
    exists: bool = True
    tagged: bool = True
    state: str = "running"
    managed: ManagedInfo | None = None


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Fleet:
    def __init__(self, ec2: EC2Client, ssm: SSMClient) -> None:
        self._ec2 = ec2
        self._ssm = ssm

    def discover(self, tag: TargetTag, instance_ids: Sequence[str] | None = None) -> list[FleetMember]:
        """The tagged running fleet, or — for a narrowed run — exactly the requested instances.

        A requested instance is looked up without the tag filter so that the
        report can say *why* it is not commanded (no tag, stopped, no such id).
        """
        if instance_ids is None:
            found = self._describe([self._tag_filter(tag), _filter("instance-state-name", ["running"])])
        else:
            found = []
            for chunk in chunks(instance_ids, EC2_FILTER_VALUES):
                found += self._describe([_filter("instance-id", list(chunk))])
        by_id = {instance["InstanceId"]: _member(instance, tag) for instance in found}
        if instance_ids is not None:
            for instance_id in instance_ids:
                by_id.setdefault(instance_id, FleetMember(instance_id, exists=False, tagged=False, state=""))
        candidates = [m.instance_id for m in by_id.values() if m.tagged and m.state == "running"]
        managed = self._managed_info(candidates)
        return [
            FleetMember(
                member.instance_id,
                member.name,
                member.exists,
                member.tagged,
                member.state,
                managed.get(member.instance_id),
            )
            for member in sorted(by_id.values(), key=lambda m: m.instance_id)
        ]

    def states(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """Each instance's EC2 state now (an id EC2 no longer knows is left out): one call per 200 ids."""
        found: list[InstanceTypeDef] = []
        for chunk in chunks(instance_ids, EC2_FILTER_VALUES):
            found += self._describe([_filter("instance-id", list(chunk))])
        return {instance["InstanceId"]: instance.get("State", {}).get("Name", "") for instance in found}

    @staticmethod
    def _tag_filter(tag: TargetTag) -> FilterTypeDef:
        return _filter(f"tag:{tag.key}", list(tag.values))

    def _describe(self, filters: list[FilterTypeDef]) -> list[InstanceTypeDef]:
        paginator = self._ec2.get_paginator("describe_instances")
        pages = paginator.paginate(Filters=filters, PaginationConfig={"PageSize": EC2_PAGE_SIZE})
        return [
            instance
            for page in pages
            for reservation in page.get("Reservations", [])
            for instance in reservation.get("Instances", [])
        ]

    def _managed_info(self, instance_ids: Sequence[str]) -> dict[str, ManagedInfo]:
        # Filtering by id keeps the pages to our instances only: ⌈N/50⌉ calls,
        # however many other managed nodes the account has.
        info: dict[str, ManagedInfo] = {}
        paginator = self._ssm.get_paginator("describe_instance_information")
        for chunk in chunks(instance_ids, SSM_FILTER_VALUES):
            pages = paginator.paginate(
                Filters=[{"Key": "InstanceIds", "Values": list(chunk)}],
                PaginationConfig={"PageSize": SSM_PAGE_SIZE},
            )
            for page in pages:
                for item in page.get("InstanceInformationList", []):
                    info[item.get("InstanceId", "")] = ManagedInfo(
                        ping_status=item.get("PingStatus", ""),
                        platform_type=item.get("PlatformType", ""),
                        platform_name=item.get("PlatformName", ""),
                        agent_version=item.get("AgentVersion", ""),
                    )
        return info


def _filter(name: str, values: Iterable[str]) -> FilterTypeDef:
    return {"Name": name, "Values": list(values)}


def _member(instance: InstanceTypeDef, tag: TargetTag) -> FleetMember:
    tags = {item.get("Key", ""): item.get("Value", "") for item in instance.get("Tags", [])}
    return FleetMember(
        instance_id=instance["InstanceId"],
        name=tags.get("Name", ""),
        tagged=tags.get(tag.key) in tag.values,
        state=instance.get("State", {}).get("Name", ""),
    )
