"""Making a sandbox an instance (users, the AWS CLI, a trusted CA, /etc/hosts); running a step as SSM does."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

from .overlay_sandbox import INSTANCE_PATH, INSTANCE_VENV, Sandbox


def add_users(sandbox: Sandbox, users: dict[str, bool]) -> None:
    """Users ({name: member of the docker group}) with home directories; the host's root config goes."""
    # The overlay starts as a copy of this machine: drop its root's docker config.
    sandbox.run(["rm", "-rf", "/root/.docker"]).check_returncode()
    sandbox.run(["groupadd", "-f", "docker"]).check_returncode()
    for name, in_docker in users.items():
        groups = ["-G", "docker"] if in_docker else []
        sandbox.run(["useradd", "-m", "-s", "/bin/sh", *groups, name]).check_returncode()


def trust_ca(sandbox: Sandbox, ca: Path, inside: str) -> None:
    """The test CA as a file of its own (for AWS_CA_BUNDLE) and in the system bundle (for docker)."""
    sandbox.write(inside, ca.read_bytes())
    bundle = sandbox.path("/etc/ssl/certs/ca-certificates.crt")
    bundle.write_bytes(bundle.read_bytes() + b"\n" + ca.read_bytes())


def map_hosts(sandbox: Sandbox, addresses: dict[str, str]) -> None:
    """/etc/hosts of the instance: each name to its loopback address (real ECR names included)."""
    lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in addresses.items())]
    sandbox.write("/etc/hosts", "\n".join(lines) + "\n")


def give_sessions_the_proxy(sandbox: Sandbox, env: Mapping[str, str]) -> None:
    """The instance's proxy reaches every session as an instance-wide proxy does: /etc/environment,
    which pam_env gives login shells, su and cron (the helper fetches its tokens through it; the
    agent proves the helper with what the callers' sessions set, never with the SSM agent's own)."""
    proxies = {name: value for name, value in env.items() if name.endswith("_PROXY")}
    sandbox.write("/etc/environment", "".join(f"{name}={value}\n" for name, value in proxies.items()))


def install_aws_cli(sandbox: Sandbox) -> None:
    """The project's AWS CLI as the instance's `aws` (instances have one; this machine's is in .venv).

    Through the venv's own python: the script's shebang names the checkout's path."""
    sandbox.write(
        "/usr/local/bin/aws",
        f'#!/bin/sh\nexec {INSTANCE_VENV}/bin/python {INSTANCE_VENV}/bin/aws "$@"\n',
        0o755,
    )


def make_instance(
    sandbox: Sandbox,
    users: dict[str, bool],
    *,
    ca: Path,
    ca_inside: str,
    hosts: dict[str, str],
    env: Mapping[str, str],
) -> None:
    """A sandbox made an instance: its users, the AWS CLI, the test CA trusted (at ``ca_inside``), its
    /etc/hosts (``hosts``), the proxy of its environment (``env``) in every session."""
    add_users(sandbox, users)
    install_aws_cli(sandbox)
    trust_ca(sandbox, ca, ca_inside)
    map_hosts(sandbox, hosts)
    give_sessions_the_proxy(sandbox, env)


def give_instance_role(sandbox: Sandbox, user: str, access_key: str, secret_key: str) -> None:
    """The instance role's credentials where the user's own AWS SDK finds them (IMDS on EC2; here,
    without IMDS, ~/.aws/credentials, 0600, the user's)."""
    home = "/root" if user == "root" else f"/home/{user}"
    text = f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"
    sandbox.write(f"{home}/.aws/credentials", text, 0o600)
    sandbox.run(["chown", "-R", f"{user}:", f"{home}/.aws"]).check_returncode()


def run_ssm_step(
    sandbox: Sandbox, instance_id: str, script: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """What the SSM agent does with a shell step: `_script.sh` in a root-only orchestration
    directory, run as root with `sh -c`, without HOME (the agent's service has none)."""
    orchestration = (
        f"/var/lib/amazon/ssm/{instance_id}/document/orchestration/{uuid.uuid4()}"
        "/awsrunShellScript/0.awsrunShellScript"
    )
    parts = orchestration.split("/")
    for depth in range(4, len(parts) + 1):
        sandbox.path("/".join(parts[:depth])).mkdir(mode=0o700, exist_ok=True)
    sandbox.write(f"{orchestration}/_script.sh", script, 0o700)
    return sandbox.run(
        ["sh", "-c", f"{orchestration}/_script.sh"],
        env={"PATH": INSTANCE_PATH, **env},
        cwd=orchestration,
        timeout=timeout,
    )
