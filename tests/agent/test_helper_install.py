"""Installing the credential helper (agent/helper_install.py): which package manager, which release."""

from __future__ import annotations

import pytest

from agent.helper_install import package_manager, release_url
from agent.host import release_arch


@pytest.mark.parametrize(
    ("os_release", "manager"),
    [
        ({"ID": "amzn", "VERSION_ID": "2"}, "yum"),
        ({"ID": "amzn", "VERSION_ID": "2023"}, "dnf"),
        ({"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "20.04"}, "apt"),
        ({"ID": "debian", "VERSION_ID": "11"}, "apt"),
        ({"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "8.9"}, None),
        ({}, None),
    ],
)
def test_package_manager_per_distribution(os_release: dict[str, str], manager: str) -> None:
    assert package_manager(os_release) == manager


def test_release_url_follows_the_official_layout() -> None:
    base = "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com/"
    assert release_url(base, "0.9.1", "arm64") == (
        "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com"
        "/0.9.1/linux-arm64/docker-credential-ecr-login"
    )
    assert release_arch("x86_64") == "amd64"
    assert release_arch("aarch64") == "arm64"
    assert release_arch("s390x") is None
