"""The moto server that hosts and the demo get ECR tokens from (servers/moto_ecr_server.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config

from localfleet.harnesses.local_services import free_port
from localfleet.hosts.overlay_sandbox import SERVERS


@pytest.fixture
def moto_url() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(SERVERS / "moto_ecr_server.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            [sys.executable, str(SERVERS / "wait_for_ports.py"), "30", f"127.0.0.1:{port}"], check=True
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ecr_tokens_are_valid_for_twelve_hours_from_now(moto_url: str) -> None:
    """ECR: "The authorization token is valid for 12 hours" (Amazon ECR API Reference,
    GetAuthorizationToken). moto's own answer says every token expired on 2015-01-01, which made the
    demo's compliance report every working stored login ``login_expired``."""
    ecr = boto3.client(
        "ecr",
        region_name="eu-west-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2}),
    )
    before = datetime.now(UTC)
    (data,) = ecr.get_authorization_token()["authorizationData"]
    after = datetime.now(UTC)
    expires_at = data["expiresAt"].astimezone(UTC)
    assert before + timedelta(hours=12) - timedelta(seconds=1) <= expires_at
    assert expires_at <= after + timedelta(hours=12) + timedelta(seconds=1)
    assert data["authorizationToken"], "the token itself is moto's, unchanged"
