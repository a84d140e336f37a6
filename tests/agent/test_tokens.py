"""ECR tokens (agent/tokens.py): which region's token opens a registry, responses, failures' reasons."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from agent.outcomes import AgentError
from agent.times import format_time
from agent.tokens import fetch_token, parse_token, token_source

PRIVATE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("registry", "source"),
    [
        (PRIVATE, ("ecr", "eu-west-1")),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ("ecr", "us-gov-west-1")),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ("ecr", "cn-north-1")),
        ("public.ecr.aws", ("ecr-public", "us-east-1")),
    ],
)
def test_token_source_is_the_registry_region(registry: str, source: tuple[str, str]) -> None:
    assert token_source(registry) == source


def test_parse_token_for_private_and_public_responses() -> None:
    token = base64.b64encode(b"AWS:secret-password").decode()
    private = json.dumps({"authorizationData": [{"authorizationToken": token, "expiresAt": 1795802400}]})
    public = json.dumps(
        {"authorizationData": {"authorizationToken": token, "expiresAt": "2026-11-27T18:00:00Z"}}
    )
    for body in (private, public):
        parsed = parse_token(body.encode(), "ecr", "eu-west-1")
        assert (parsed.username, parsed.password) == ("AWS", "secret-password")
        assert format_time(parsed.expires_at) == "2026-11-27T18:00:00Z"
        assert "secret-password" not in repr(parsed)


def test_parse_token_rejects_a_malformed_response() -> None:
    with pytest.raises(AgentError) as raised:
        parse_token(b'{"authorizationData": []}', "ecr", "eu-west-1")
    assert raised.value.reason == "token_failed"


class FakeHost:
    """Just what fetch_token uses: the aws path and root's environment."""

    def __init__(self, aws: Path) -> None:
        self.aws = str(aws)

    def root_env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            "Unable to locate credentials. You can configure credentials by running aws configure.",
            "no_credentials",
        ),
        (
            "An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: "
            "User is not authorized to perform: ecr:GetAuthorizationToken",
            "no_credentials",
        ),
        ("Could not connect to the endpoint URL", "token_failed"),
    ],
)
def test_token_fetch_failures_get_their_reason(tmp_path: Path, stderr: str, reason: str) -> None:
    fake_aws = tmp_path / "aws"
    fake_aws.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit 255\n")
    fake_aws.chmod(0o755)
    with pytest.raises(AgentError) as raised:
        fetch_token(FakeHost(fake_aws), ("ecr", "eu-west-1"))
    assert raised.value.reason == reason
