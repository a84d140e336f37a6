"""DescribeInstanceInformation: the registered instances, both filter forms, pagination."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.support.ssm_emulator import client_for, instance_id


@pytest.fixture
def fleet(emulator: SsmEmulator) -> SsmEmulator:
    """12 instances: 1-8 Online Linux, 9-10 ConnectionLost, 11 Inactive, 12 Windows; odd ones team=a."""
    for number in range(1, 13):
        emulator.register_instance(
            instance_id(number),
            CannedExecutor(),
            ping_status="ConnectionLost" if number in (9, 10) else "Inactive" if number == 11 else "Online",
            platform_type="Windows" if number == 12 else "Linux",
            ip_address=f"10.0.0.{number}",
            tags={"team": "a"} if number % 2 else {"team": "b", "owner": "x"},
        )
    return emulator


def ids(response: dict[str, Any]) -> list[str]:
    return [item["InstanceId"] for item in response["InstanceInformationList"]]


def test_describes_what_was_registered(ssm: Any, emulator: SsmEmulator) -> None:
    emulator.register_instance(
        instance_id(1),
        CannedExecutor(),
        platform_name="Ubuntu",
        platform_version="22.04",
        agent_version="3.3.2746.0",
        ip_address="10.1.2.3",
        computer_name="web-1",
    )

    (info,) = ssm.describe_instance_information()["InstanceInformationList"]

    assert info["InstanceId"] == instance_id(1)
    assert info["PingStatus"] == "Online"
    assert (info["PlatformType"], info["PlatformName"], info["PlatformVersion"]) == (
        "Linux",
        "Ubuntu",
        "22.04",
    )
    assert (info["AgentVersion"], info["IPAddress"], info["ComputerName"]) == (
        "3.3.2746.0",
        "10.1.2.3",
        "web-1",
    )
    assert info["ResourceType"] == "EC2Instance"


def test_pages_of_max_results_with_next_token(ssm: Any, fleet: SsmEmulator) -> None:
    first = ssm.describe_instance_information(MaxResults=5)
    second = ssm.describe_instance_information(MaxResults=5, NextToken=first["NextToken"])
    third = ssm.describe_instance_information(MaxResults=5, NextToken=second["NextToken"])

    assert [len(ids(page)) for page in (first, second, third)] == [5, 5, 2]
    assert "NextToken" not in third
    assert ids(first) + ids(second) + ids(third) == [instance_id(n) for n in range(1, 13)]


def test_a_page_holds_10_by_default(ssm: Any, fleet: SsmEmulator) -> None:
    first = ssm.describe_instance_information()

    assert len(ids(first)) == 10
    assert len(ids(ssm.describe_instance_information(NextToken=first["NextToken"]))) == 2


def test_the_sdk_paginator_walks_every_page(ssm: Any, fleet: SsmEmulator, emulator: SsmEmulator) -> None:
    pages = list(
        ssm.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 5})
    )

    assert sum(len(ids(page)) for page in pages) == 12
    assert emulator.calls["DescribeInstanceInformation"] == 3


def test_a_forged_next_token_is_invalid_next_token(ssm: Any, fleet: SsmEmulator) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.describe_instance_information(NextToken="not-a-token")

    assert caught.value.response["Error"]["Code"] == "InvalidNextToken"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"Key": "PingStatus", "Values": ["ConnectionLost", "Inactive"]}], [9, 10, 11]),
        ([{"Key": "PlatformTypes", "Values": ["Windows"]}], [12]),
        ([{"Key": "InstanceIds", "Values": [instance_id(2), instance_id(3)]}], [2, 3]),
        (
            [
                {"Key": "PingStatus", "Values": ["Online"]},
                {"Key": "PlatformTypes", "Values": ["Linux"]},
            ],
            [1, 2, 3, 4, 5, 6, 7, 8],
        ),
        ([{"Key": "tag:team", "Values": ["a"]}], [1, 3, 5, 7, 9, 11]),
        ([{"Key": "tag-key", "Values": ["owner"]}], [2, 4, 6, 8, 10, 12]),
    ],
)
def test_filters(ssm: Any, fleet: SsmEmulator, filters: Any, expected: list[int]) -> None:
    response = ssm.describe_instance_information(Filters=filters)

    assert ids(response) == [instance_id(n) for n in expected]


def test_the_older_instance_information_filter_list(ssm: Any, fleet: SsmEmulator) -> None:
    response = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["ConnectionLost"]}]
    )

    assert ids(response) == [instance_id(9), instance_id(10)]


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ([{"Key": "PingStatus", "Values": ["Sleeping"]}], "InvalidInstanceInformationFilterValue"),
        ([{"Key": "Colour", "Values": ["red"]}], "InvalidFilterKey"),
        (
            [{"Key": "tag:team", "Values": ["a"]}, {"Key": "PingStatus", "Values": ["Online"]}],
            "InvalidFilterKey",  # tag filters cannot be combined with other filter types
        ),
    ],
)
def test_bad_filters_are_rejected(ssm: Any, fleet: SsmEmulator, filters: Any, code: str) -> None:
    with pytest.raises(ClientError) as caught:
        ssm.describe_instance_information(Filters=filters)

    assert caught.value.response["Error"]["Code"] == code


def test_a_given_tag_resolver_answers_tag_filters() -> None:
    asked: list[tuple[str, list[str]]] = []

    def resolver(key: str, values: Any) -> list[str]:
        asked.append((key, list(values)))
        return [instance_id(2)]

    with SsmEmulator(tag_resolver=resolver) as emulator:
        for number in (1, 2):
            emulator.register_instance(instance_id(number), CannedExecutor(), tags={"ignored": "yes"})
        response = client_for(emulator).describe_instance_information(
            Filters=[{"Key": "tag:ecr-fleet-auth", "Values": ["enabled"]}]
        )

    assert ids(response) == [instance_id(2)]
    assert asked == [("ecr-fleet-auth", ["enabled"])]
