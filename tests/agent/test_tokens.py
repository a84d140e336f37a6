"""ECR tokens (agent/tokens.py): which region's token opens a registry, responses, failures' reasons."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from pathlib import Path

import pytest

from agent.outcomes import AgentError
from agent.times import format_time
from agent.tokens import fetch_token, fetch_tokens, is_dualstack, parse_token, token_source, token_sources
from tests.support.prerequisites import require

PRIVATE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("registry", "source"),
    [
        (PRIVATE, ("ecr", "eu-west-1")),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ("ecr", "us-gov-west-1")),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ("ecr", "cn-north-1")),
        ("public.ecr.aws", ("ecr-public", "us-east-1")),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", ("ecr", "eu-west-1")),
        ("123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", ("ecr", "cn-north-1")),
        ("ecr-public.aws.com", ("ecr-public", "us-east-1")),
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


def test_one_call_per_region_through_the_dual_stack_endpoint_when_a_name_needs_it() -> None:
    """A region named by its dual-stack registry name is fetched through the dual-stack API (an IPv6-only
    host reaches no other), once for every name of that region; ECR Public's dual-stack name likewise."""
    sources, dualstack = token_sources(
        [
            PRIVATE,
            "123456789012.dkr-ecr.eu-west-1.on.aws",
            "210987654321.dkr.ecr.us-east-2.amazonaws.com",
            "ecr-public.aws.com",
            "public.ecr.aws",
        ]
    )
    assert sources == [("ecr", "eu-west-1"), ("ecr", "us-east-2"), ("ecr-public", "us-east-1")]
    dual = {"AWS_USE_DUALSTACK_ENDPOINT": "true"}
    assert dualstack == {
        ("ecr", "eu-west-1"): dual,
        ("ecr", "us-east-2"): {},
        ("ecr-public", "us-east-1"): dual,
    }
    assert token_source("123456789012.dkr-ecr-fips.us-gov-west-1.on.aws") == ("ecr", "us-gov-west-1")
    assert is_dualstack("ecr-public.aws.com") and not is_dualstack("public.ecr.aws")


def test_the_dual_stack_endpoint_is_asked_for_through_the_aws_clis_own_setting(tmp_path: Path) -> None:
    """AWS SDKs and Tools reference, "Dual-stack and FIPS endpoints": AWS_USE_DUALSTACK_ENDPOINT=true
    (the AWS CLI v1 and v2 alike); the real CLI's choice is asserted by the integration test through the
    proxy (ecr.<region>.api.aws). Here: the agent sets it for that call only."""
    seen = tmp_path / "env"
    fake_aws = tmp_path / "aws"
    token = base64.b64encode(b"AWS:pw").decode()
    fake_aws.write_text(
        f'#!/bin/sh\necho "${{AWS_USE_DUALSTACK_ENDPOINT:-unset}} $1 $4" >> {seen}\n'
        f'echo \'{{"authorizationData": {{"authorizationToken": "{token}"}}}}\'\n'
    )
    fake_aws.chmod(0o755)
    fetch_token(FakeHost(fake_aws), ("ecr-public", "us-east-1"), {"AWS_USE_DUALSTACK_ENDPOINT": "true"})
    fetch_token(FakeHost(fake_aws), ("ecr", "eu-west-1"))
    assert seen.read_text().splitlines() == ["true ecr-public us-east-1", "unset ecr eu-west-1"]


class CONNECTRecorder:
    """A proxy that records the host of each CONNECT and refuses the tunnel: where the real AWS CLI
    sends its call, without a network."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.hosts: list[str] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            connection, _ = self.server.accept()
            with connection:
                request = connection.recv(4096).decode("latin-1")
                self.hosts.append(request.split(" ")[1] if request.startswith("CONNECT ") else request[:40])
                connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


class CLIHost:
    """The real AWS CLI (this project's venv: the instances' AWS CLI v1, botocore's endpoint rules)
    through a recording proxy, with dummy credentials."""

    def __init__(self, proxy: CONNECTRecorder) -> None:
        self.aws = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")
        self.port = proxy.server.getsockname()[1]

    def root_env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HTTPS_PROXY": f"http://127.0.0.1:{self.port}",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }


@pytest.mark.parametrize(
    ("registry", "api"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", r"api\.ecr\.us-east-1\.amazonaws\.com"),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", r"(api\.)?ecr-fips\.us-east-1\.amazonaws\.com"),
        ("123456789012.dkr-ecr.us-east-1.on.aws", r"ecr\.us-east-1\.api\.aws"),
        ("123456789012.dkr-ecr-fips.us-east-1.on.aws", r"(api\.)?ecr-fips\.us-east-1\.api\.aws"),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            r"(api\.)?ecr-fips\.us-gov-west-1\.amazonaws\.com",
        ),
        (
            "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
            r"ecr\.cn-north-1\.api\.amazonwebservices\.com\.cn",
        ),
        ("ecr-public.aws.com", r"ecr-public\.us-east-1\.api\.aws"),
        ("public.ecr.aws", r"api\.ecr-public\.us-east-1\.amazonaws\.com"),
    ],
)
def test_each_registry_kind_gets_its_token_from_its_own_api_endpoint(registry: str, api: str) -> None:
    """A FIPS registry (dkr.ecr-fips, dkr-ecr-fips) is reached from FIPS-bound hosts, whose token call must
    go to the FIPS API too; a dual-stack one from IPv6-only hosts, where only the dual-stack API
    answers. The agent sets the AWS CLI's own AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT (AWS
    SDKs and Tools reference, "Dual-stack and FIPS endpoints"), and the real CLI's botocore endpoint
    rules (botocore/data/ecr/2015-09-21/endpoint-rule-set-1.json: ecr-fips.{Region}.amazonaws.com,
    ecr-fips.{Region}.api.aws, ecr.{Region}.api.aws; ECR User Guide "Amazon ECR endpoints") pick the
    host: here recorded at the proxy the CLI tunnels through. (FIPS hosts: botocore 1.43's rules give
    api.ecr-fips.<region>.amazonaws.com, later ones ecr-fips.<region>.amazonaws.com; both are ECR's.)"""
    proxy = CONNECTRecorder()
    host = CLIHost(proxy)
    require(Path(host.aws).exists(), "the AWS CLI in .venv (make deps)")
    sources, endpoints = token_sources([registry])
    results = fetch_tokens(host, sources, endpoints)
    assert isinstance(results[sources[0]], AgentError)  # the proxy refused the tunnel
    assert re.fullmatch(api + ":443", proxy.hosts[0]), proxy.hosts
