"""Which container clients an instance has: stated by each test, never inherited from this machine.

The instance's root is an overlay of this machine's `/`, so every client installed here would show up in
every instance. `give_clients` removes (in the overlay only) every client program the instance is not
meant to have, and adds the ones only an instance may have:
- docker: the docker CLI at /usr/local/bin/docker (FACTS: docker 28.x, client only);
- podman, skopeo, buildah: Debian 12's packages (system-packages.txt);
- podman-docker: Debian's podman-docker package's /usr/bin/docker, a shell script running podman
  (this machine's, installed from system-packages.txt);
- nerdctl: not packaged for Debian. Its stand-in (`nerdctl` below) is acceptable only because nerdctl
  reads credentials with docker/cli's own code (containerd/nerdctl docs/registry.md,
  pkg/imgutil/dockerconfigresolver): it runs the real docker CLI, so it reads docker's file with
  docker's rules, and prints nerdctl's version line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .overlay_sandbox import DOCKER_CLI, Sandbox

PODMAN_DOCKER_SHIM = "/usr/bin/docker"
NERDCTL_STANDIN = "/usr/local/bin/nerdctl"
NERDCTL_DOCKER = "/opt/nerdctl-standin/docker"
NERDCTL_VERSION = "2.1.3"
# Every program a client could be found as (what the agent's detection looks for on PATH).
PROGRAMS = {
    "docker": (DOCKER_CLI,),
    "podman": ("/usr/bin/podman",),
    "skopeo": ("/usr/bin/skopeo",),
    "buildah": ("/usr/bin/buildah",),
    "podman-docker": (PODMAN_DOCKER_SHIM,),
    "nerdctl": (NERDCTL_STANDIN,),
}
CLIENTS = tuple(PROGRAMS)
NERDCTL_SCRIPT = f"""#!/bin/sh
# Stand-in for nerdctl (not packaged for Debian): the real docker CLI reads and writes the credentials,
# with docker/cli's rules, as nerdctl's own code does. `pull` checks the manifest (no containerd here).
case "$1" in
  --version | -v | version) echo "nerdctl version {NERDCTL_VERSION}" ;;
  pull) shift; exec {NERDCTL_DOCKER} manifest inspect --insecure "$@" ;;
  *) exec {NERDCTL_DOCKER} "$@" ;;
esac
"""


def podman_docker_installed() -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", "podman-docker"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() == "install ok installed"


def prerequisites(clients: tuple[str, ...]) -> list[tuple[bool, str]]:
    """(present, what) for each client an instance is to have."""
    needed = []
    for client in clients:
        if client == "podman-docker":
            needed.append((podman_docker_installed(), "podman-docker (system-packages.txt)"))
        elif client != "nerdctl":
            needed += [(Path(program).exists(), f"{client} at {program}") for program in PROGRAMS[client]]
    if "nerdctl" in clients:
        needed.append((Path(DOCKER_CLI).exists(), f"docker CLI at {DOCKER_CLI} (for the nerdctl stand-in)"))
    return needed


def give_clients(sandbox: Sandbox, clients: tuple[str, ...]) -> None:
    """Make the instance's container clients exactly `clients` (names from CLIENTS)."""
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        raise ValueError(f"no such client: {sorted(unknown)}")
    keep = {program for client in clients for program in PROGRAMS[client]}
    remove = [program for client in CLIENTS for program in PROGRAMS[client] if program not in keep]
    sandbox.run(["rm", "-f", *remove]).check_returncode()
    if "podman-docker" in clients and not podman_docker_installed():
        raise RuntimeError("podman-docker is not installed on this machine (system-packages.txt)")
    if "nerdctl" in clients:
        sandbox.bind_file(DOCKER_CLI, NERDCTL_DOCKER)
        sandbox.write(NERDCTL_STANDIN, NERDCTL_SCRIPT, 0o755)
