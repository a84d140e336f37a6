"""Which clients a host has (agent/host_clients.py): each known by what it prints, never by its file name.

The real programs' --version lines are read where this machine has them (Debian 12's podman, skopeo,
buildah, podman-docker's shim; the docker CLI); nerdctl's line is cobra's default version template with
`Use: "nerdctl"` (containerd/nerdctl cmd/nerdctl/main.go), as nerdctl is not packaged here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.host_clients import Client, clients_from_probes, identify, version_tuple
from localfleet.hosts.container_clients import PODMAN_DOCKER_SHIM, podman_docker_installed
from tests.support.prerequisites import require

REAL = {
    "docker": "/usr/local/bin/docker",
    "podman": "/usr/bin/podman",
    "skopeo": "/usr/bin/skopeo",
    "buildah": "/usr/bin/buildah",
}


def version_output(program: str) -> str:
    done = subprocess.run([program, "--version"], capture_output=True, text=True, check=False, timeout=30)
    return done.stdout + done.stderr


@pytest.mark.parametrize("name", list(REAL))
def test_each_real_client_is_known_by_its_version_line(name: str) -> None:
    require(Path(REAL[name]).exists(), f"{REAL[name]}")
    client_name, version = identify(name, version_output(REAL[name]))
    assert client_name == name
    assert version_tuple(version) is not None and version_tuple(version) >= (1, 0, 0)


def test_podman_dockers_shim_is_podman_with_podmans_version() -> None:
    """podman-docker's /usr/bin/docker runs `exec /usr/bin/podman "$@"` and prints a banner on stderr:
    `docker --version` says `podman version 4.3.1`, which is podman 4.3.1, not docker 4.3."""
    require(podman_docker_installed(), "podman-docker (system-packages.txt)")
    output = version_output(PODMAN_DOCKER_SHIM)
    assert identify("docker", output) == identify("podman", version_output(REAL["podman"]))
    clients, docker_runs = clients_from_probes(
        [
            ("docker", PODMAN_DOCKER_SHIM, True, output),
            ("podman", REAL["podman"], True, version_output(REAL["podman"])),
        ]
    )
    assert [(client.name, client.program) for client in clients] == [("podman", REAL["podman"])]
    assert docker_runs == "podman"


def test_a_docker_that_is_nerdctl_or_podman_counts_once() -> None:
    clients, docker_runs = clients_from_probes(
        [
            ("docker", "/usr/local/bin/docker", True, "nerdctl version 2.1.3\n"),
            ("nerdctl", "/usr/local/bin/nerdctl", True, "nerdctl version 2.1.3\n"),
            ("skopeo", "/usr/bin/skopeo", False, ""),  # could not run: not a client here
        ]
    )
    assert [(client.name, client.version) for client in clients] == [("nerdctl", "2.1.3")]
    assert docker_runs == "nerdctl"
    assert [client.family for client in clients] == ["docker"]


def test_an_unreadable_version_keeps_the_file_name_and_no_version() -> None:
    assert identify("docker", "something else\n") == ("docker", None)
    assert Client("podman", "/usr/bin/podman", None).version_tuple is None
    assert version_tuple("4.9.4-rhel") == (4, 9, 4)
