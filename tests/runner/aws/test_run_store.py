"""The run store (``ecr_fleet_auth.aws.run_store``) against S3 as the runner's role sees it.

S3 API Reference, GetObject, "Permissions": a key that does not exist is answered 404 NoSuchKey to
a caller allowed s3:ListBucket on the bucket, 403 AccessDenied to any other. moto answers 404 to
everyone; ``localfleet.stepfunctions.RunsBucketAccess`` answers as S3 does for the principal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ecr_fleet_auth.aws.run_store import RunStore
from localfleet.stepfunctions import RunsBucketAccess

BUCKET = "ecr-fleet-auth-runs-test"
REGION = "eu-west-1"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def store_of(s3: Any, *, may_list: bool) -> tuple[RunStore, RunsBucketAccess]:
    session = boto3.Session(region_name=REGION)
    access = RunsBucketAccess(s3, BUCKET, may_list=may_list)
    access.attach([session])
    return RunStore(session.client("s3"), BUCKET, "execution-1"), access


def test_a_missing_object_is_none_to_a_role_that_may_list_the_bucket(s3: Any) -> None:
    store, access = store_of(s3, may_list=True)

    assert store.get("plan.json") is None
    store.put("plan.json", {"run_id": "r"})
    assert store.get("plan.json") == {"run_id": "r"}
    assert not access.denied


def test_a_refused_read_is_an_error_not_a_missing_object(s3: Any) -> None:
    """Without s3:ListBucket S3 answers 403 AccessDenied for a missing key: the store cannot tell it
    from a refusal, so it raises rather than take it for "not written yet" (a plan made twice, a
    child's report taken as lost)."""
    store, access = store_of(s3, may_list=False)

    with pytest.raises(ClientError) as refused:
        store.get("plan.json")

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert access.denied == ["runs/execution-1/plan.json"]
    store.put("plan.json", {"run_id": "r"})
    assert store.get("plan.json") == {"run_id": "r"}, "an existing object is read as before"
