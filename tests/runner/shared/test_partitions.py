"""Partitions from botocore's own data: every region botocore knows gets its partition's ARNs and hosts.

botocore ships the partitions (``botocore/data/partitions.json``: each partition's ``regions``,
``regionRegex`` and ``outputs.dnsSuffix``; ``endpoints.json`` lists regions too) and resolves a region
with its endpoint rule set's ``aws.partition`` function. The runner's member-role ARNs and own-registry
hosts must agree with that data for every region in it: ``eusc-de-east-1`` is ``aws-eusc`` /
``amazonaws.eu``, ``eu-isoe-west-1`` ``aws-iso-e`` / ``cloud.adc-e.uk``, ``us-isof-south-1``
``aws-iso-f`` / ``csp.hci.ic.gov`` (a list of name prefixes answered ``aws`` for those).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.loaders import create_loader
from botocore.stub import Stubber

from ecr_fleet_auth.aws.clients import ClientFactory, Pair
from ecr_fleet_auth.run.runner import RunOptions
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.events import RunRequest
from ecr_fleet_auth.shared.settings import RunnerSettings

ACCOUNT = "111111111111"
ROLE = "EcrFleetAuthMember"


def botocore_regions() -> dict[str, tuple[str, str]]:
    """Every region botocore's data names (pseudo regions such as ``aws-global`` left out), with the
    partition that lists it and that partition's DNS suffix."""
    loader = create_loader()
    suffixes = {p["id"]: p["outputs"]["dnsSuffix"] for p in loader.load_data("partitions")["partitions"]}
    regions: dict[str, tuple[str, str]] = {}
    for partition in loader.load_data("partitions")["partitions"]:
        for region in partition["regions"]:
            regions[region] = (partition["id"], suffixes[partition["id"]])
    for partition in loader.load_data("endpoints")["partitions"]:
        for region in partition["regions"]:
            regions.setdefault(region, (partition["partition"], suffixes[partition["partition"]]))
    return {region: found for region, found in regions.items() if not region.endswith("-global")}


REGIONS = botocore_regions()


def test_botocore_knows_the_partitions_a_prefix_list_missed() -> None:
    assert REGIONS["eusc-de-east-1"] == ("aws-eusc", "amazonaws.eu")
    assert REGIONS["eu-isoe-west-1"] == ("aws-iso-e", "cloud.adc-e.uk")
    assert REGIONS["us-isof-south-1"] == ("aws-iso-f", "csp.hci.ic.gov")
    assert len({partition for partition, _ in REGIONS.values()}) >= 8


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_the_member_role_arn_is_in_the_partition_botocore_gives_the_region(region: str) -> None:
    """The runner assumes ``arn:<partition>:iam::<account>:role/<memberRoleName>`` on its own region's
    STS (IAM User Guide, "IAM identifiers": ARNs carry the partition); botocore's partition data
    (partitions.json) says which partition each region is in."""
    partition, _ = REGIONS[region]
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name=region)
    factory = ClientFactory(session=session)
    with Stubber(factory.sts()) as sts:
        sts.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLE000000000",
                    "SecretAccessKey": "secret",
                    "SessionToken": "token",
                    "Expiration": datetime.now(UTC) + timedelta(hours=1),
                }
            },
            {
                "RoleArn": f"arn:{partition}:iam::{ACCOUNT}:role/{ROLE}",
                "RoleSessionName": "ecr-fleet-auth-runner",
            },
        )
        factory.assume_role(ACCOUNT, ROLE)
        sts.assert_no_pending_responses()


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_an_accounts_own_registry_has_its_partitions_dns_suffix_and_the_document_accepts_it(
    region: str,
) -> None:
    """ECR's private registry is ``<account>.dkr.ecr.<region>.<the partition's DNS suffix>`` (Amazon
    ECR User Guide, "Private registry concepts"); the suffix is botocore's ``outputs.dnsSuffix``."""
    _, suffix = REGIONS[region]
    settings = RunnerSettings.from_environment(
        {"DOCUMENT_NAME": "EcrFleetAuth-Agent", "REGISTRIES": "", "STACK_SET_NAME": "EcrFleetAuth-Members"}
    )
    options = RunOptions.resolve(RunRequest(), settings)
    registries = options.command_spec(settings, "run", Pair(ACCOUNT, region)).parameters[contract.REGISTRIES]
    assert registries == f"{ACCOUNT}.dkr.ecr.{region}.{suffix}"
    assert contract.PARAMETERS_BY_NAME[contract.REGISTRIES].accepts(registries)
    assert contract.matches(rf"^{contract.REGION_RE}$", region)  # memberRegions and events accept it
