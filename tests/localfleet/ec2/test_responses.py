"""EC2's DescribeInstances as the runner asks it, through real boto3 clients, in-process and over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localfleet.ec2 import Ec2Inventory, Ec2Wire
from localfleet.transport import ServiceEndpoint
from tests.localfleet.both_ways import WAYS, client

TAG = {"Name": "tag:ecr-fleet-auth", "Values": ["enabled"]}


@pytest.fixture
def inventory() -> Ec2Inventory:
    fleet = Ec2Inventory()
    fleet.launch(3, {"ecr-fleet-auth": "enabled", "Name": "web"})
    fleet.launch(2, {"Name": "db"})
    fleet.launch(1, {"ecr-fleet-auth": "enabled"}, state="stopped")
    return fleet


@pytest.fixture(params=WAYS)
def ec2(request: pytest.FixtureRequest, inventory: Ec2Inventory) -> Iterator[Any]:
    endpoint = ServiceEndpoint(Ec2Wire(inventory))
    with client(endpoint, request.param, Config(retries={"max_attempts": 1})) as answered:
        yield answered


def instances(pages: Any) -> list[dict[str, Any]]:
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def test_filters_by_tag_state_and_id(ec2: Any, inventory: Ec2Inventory) -> None:
    running = [{"Name": "instance-state-name", "Values": ["running"]}]
    tagged = instances([ec2.describe_instances(Filters=[TAG])])
    tagged_running = instances([ec2.describe_instances(Filters=[TAG, *running])])
    first = tagged[0]["InstanceId"]
    by_id = instances([ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [first]}])])
    keyed = instances([ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["Name"]}])])

    assert len(tagged) == 4
    assert len(tagged_running) == 3
    assert {i["State"]["Name"] for i in tagged} == {"running", "stopped"}
    assert {"Key": "Name", "Value": "web"} in tagged[0]["Tags"]
    assert [i["InstanceId"] for i in by_id] == [first]
    assert len(keyed) == 5


def test_pages_hold_reservations(ec2: Any, inventory: Ec2Inventory) -> None:
    for _ in range(6):
        inventory.launch(2, {"ecr-fleet-auth": "enabled"})
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))

    assert [len(page["Reservations"]) for page in pages] == [5, 4]
    assert len(instances(pages)) == 6 + 12


def test_a_filter_ec2_does_not_know_is_refused(ec2: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_other_actions_are_invalid(ec2: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ec2.describe_images()
    assert caught.value.response["Error"]["Code"] == "InvalidAction"


def test_tag_targets_resolve_against_the_inventory(inventory: Ec2Inventory) -> None:
    assert len(inventory.tagged("ecr-fleet-auth", ["enabled"])) == 4
    assert len(inventory.tagged("Name", [])) == 5
