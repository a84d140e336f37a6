"""The agent's own copies of the parameter patterns accept and reject exactly what contract.py does."""

from __future__ import annotations

import pytest

from agent import params as agent_params
from agent.outcomes import (
    CHANGED,
    FAILED,
    SKIPPED,
    STATE_HELPER,
    STATE_HELPER_UNAVAILABLE,
    STATE_LOGGED_IN,
    STATE_NONE,
    STATE_SHADOWED,
    STATE_STALE_AUTH,
    UNCHANGED,
    AgentError,
)
from agent.params import (
    ACTIONS,
    AUTO_USERS,
    BOOLEAN_VALUES,
    MAX_REGISTRIES,
    MAX_USERS,
    PARTITION_DOMAINS,
    fullmatch,
    read_params,
)
from agent.result import RESULT_LINE_MAX_BYTES, RESULT_SCHEMA
from ecr_fleet_auth.shared import contract

PRIVATE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


REGISTRY_VALUES = [
    PRIVATE,
    "public.ecr.aws",
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
    "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
    "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
    "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
    "123456789012.dkr-ecr.eu-west-1.on.aws",
    "123456789012.dkr-ecr-fips.us-east-2.on.aws",
    "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
    "ecr-public.aws.com",
    f"{PRIVATE},public.ecr.aws,ecr-public.aws.com",
    "123456789012.dkr-ecr.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr.eu-west-1.on.aws",
    "123456789012.dkr-ecr.eu-west-1.on.aws.evil.com",
    "ecr-public.aws.com.evil.com",
    "public.aws.com",
    ",".join([PRIVATE] * 20),
    ",".join([PRIVATE] * 21),
    "",
    "12345678901.dkr.ecr.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com\n",
    f"{PRIVATE},",
    f"{PRIVATE};touch /tmp/x",
    "public.ecr.aws/",
    "docker.io",
    "123456789012.dkr.ecr.EU-WEST-1.amazonaws.com",
    "$(id).dkr.ecr.eu-west-1.amazonaws.com",
]


USERS_VALUES = [
    "auto",
    "ec2-user",
    "ec2-user,ubuntu,_svc,a.b",
    ",".join(f"u{i}" for i in range(50)),
    ",".join(f"u{i}" for i in range(51)),
    "",
    "auto,root",
    "-rf",
    "root ",
    "a" * 32,
    "a" * 33,
    "bob'",
    "root\n",
    "ünicode",
]


HELPER_VERSION_VALUES = ["latest", "0.6.0", "0.10.1", "1.2", "1.2.3.4", "v0.6.0", "", "latest\n", "12345.0.0"]


RELEASE_URL_VALUES = [
    contract.DEFAULT_RELEASE_BASE_URL,
    "https://mirror.example.com",
    "https://mirror.example.com:8443/ecr/helper/",
    "http://mirror.example.com",
    "https://user:pw@mirror.example.com",
    "https://mirror.example.com/?q=1",
    "https://mirror.example.com/#x",
    "https://mirror.example.com/$(id)",
    "https://-bad.example.com",
    "https://mirror.example.com/a b",
    "",
]


@pytest.mark.parametrize(
    ("agent_pattern", "contract_pattern", "values"),
    [
        ("REGISTRIES_PATTERN", contract.REGISTRIES_PATTERN, REGISTRY_VALUES),
        ("USERS_PATTERN", contract.USERS_PATTERN, USERS_VALUES),
        ("HELPER_VERSION_PATTERN", contract.HELPER_VERSION_PATTERN, HELPER_VERSION_VALUES),
        ("RELEASE_BASE_URL_PATTERN", contract.RELEASE_BASE_URL_PATTERN, RELEASE_URL_VALUES),
    ],
)
def test_agent_patterns_decide_like_the_contract(
    agent_pattern: str, contract_pattern: str, values: list[str]
) -> None:
    agent_regex = getattr(agent_params, agent_pattern)
    decisions = [(value, fullmatch(agent_regex, value)) for value in values]
    assert decisions == [(value, contract.matches(contract_pattern, value)) for value in values]
    # The corpus exercises both sides of every pattern.
    assert {accepted for _, accepted in decisions} == {True, False}


def test_agent_building_blocks_equal_the_contract() -> None:
    assert ACTIONS == contract.ACTIONS
    assert PARTITION_DOMAINS == contract.PARTITION_DOMAINS
    assert agent_params.DUALSTACK_DOMAINS == contract.DUALSTACK_DOMAINS
    assert agent_params.PUBLIC_REGISTRIES == contract.PUBLIC_REGISTRIES
    for name in (
        "REGION_RE",
        "IPV4_REGISTRY_RE",
        "DUALSTACK_REGISTRY_RE",
        "PRIVATE_REGISTRY_RE",
        "REGISTRY_RE",
    ):
        assert getattr(agent_params, name) == getattr(contract, name), f"{name} differs from the contract's"
    assert (MAX_REGISTRIES, MAX_USERS) == (contract.MAX_REGISTRIES, contract.MAX_USERS)
    assert AUTO_USERS == contract.AUTO_USERS
    assert BOOLEAN_VALUES == contract.BOOLEAN_VALUES
    assert RESULT_SCHEMA == contract.RESULT_SCHEMA
    assert RESULT_LINE_MAX_BYTES == contract.RESULT_LINE_MAX_BYTES
    assert (CHANGED, UNCHANGED, SKIPPED, FAILED) == contract.OUTCOMES
    states = (
        STATE_HELPER,
        STATE_LOGGED_IN,
        STATE_STALE_AUTH,
        STATE_NONE,
        STATE_HELPER_UNAVAILABLE,
        STATE_SHADOWED,
    )
    assert states == contract.REGISTRY_STATES


def environ(**overrides: str) -> dict[str, str]:
    values = {
        "SSM_Action": "refresh",
        "SSM_Registries": f"{PRIVATE},public.ecr.aws,{PRIVATE}",
        "SSM_Users": "alice,bob,alice",
        "SSM_HelperVersion": contract.DEFAULT_HELPER_VERSION,
        "SSM_ReleaseBaseUrl": contract.DEFAULT_RELEASE_BASE_URL,
        "SSM_KeepUserDockerLogin": "false",
    }
    values.update(overrides)
    return values


def test_read_params_splits_and_deduplicates() -> None:
    params = read_params(environ())
    assert params.registries == [PRIVATE, "public.ecr.aws"]
    assert params.users == ["alice", "bob"]
    assert read_params(environ(SSM_Users="auto")).users == "auto"
    assert read_params(environ()).keep_user_docker_login is False
    assert read_params(environ(SSM_KeepUserDockerLogin="true")).keep_user_docker_login is True


@pytest.mark.parametrize(
    "bad",
    [
        {"SSM_Action": "delete"},
        {"SSM_Registries": "docker.io"},
        {"SSM_Users": "root;reboot"},
        {"SSM_HelperVersion": "0.12.0\n"},
        {"SSM_HelperVersion": "latest"},
        {"SSM_ReleaseBaseUrl": "http://plain.example.com"},
        {"SSM_KeepUserDockerLogin": "True"},
        {"SSM_KeepUserDockerLogin": ""},
        {"SSM_Registries": ""},
    ],
)
def test_read_params_rejects_what_the_document_would(bad: dict[str, str]) -> None:
    with pytest.raises(AgentError) as raised:
        read_params(environ(**bad))
    assert raised.value.reason == "invalid_parameter"


def test_read_params_rejects_a_missing_parameter() -> None:
    values = environ()
    del values["SSM_Registries"]
    with pytest.raises(AgentError, match="Registries"):
        read_params(values)
