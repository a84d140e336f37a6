"""The simulated AWS around a local fleet that is not the simulator's own, on this machine's loopback only.

- moto (ECR for tokens, STS, SNS and SQS for notifications) for the runner and for
  the instances' AWS CLI (EC2 and SSM come from ``localfleet.ec2`` and ``localfleet.ssm``);
- a second, TLS moto behind a CONNECT proxy for Debian's credential helper, which
  ignores AWS_ENDPOINT_URL and always calls https://api.ecr.<region>.amazonaws.com;
- a real registry (docker-registry, TLS, htpasswd) on its own loopback address,
  port 443, which instances reach under the real ECR host name; its password is
  the token moto hands out, so only a real login works.

One ``LocalServices`` is one account's: its moto processes run with ``MOTO_ACCOUNT_ID`` set to
it, so ECR hands out that account's token (``moto_token(account)``) and its registry
(``<account>.dkr.ecr.<region>.amazonaws.com``, on a loopback address of its own) accepts only
that. A member account of an organization-wide local fleet gets its own (``account``,
``index``): its instances reach its ECR and registry, as an instance role reaches its own
account's on AWS.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from ..hosts.overlay_sandbox import (
    DIE_WITH_PARENT,
    DOCKER_CLI,
    HELPER_BIN,
    INSTANCE_PATH,
    SERVERS,
    VENV_BIN,
    stop_processes,
)
from ..hosts.registry_server import (
    REGISTRY_BIN,
    make_certificates,
    prepare_registry,
    push_probe_image,
    write_htpasswd,
)
from ..hosts.sandbox_instance import Surroundings
from ..identity import ACCOUNT, REGION, registry_name

REGISTRY = registry_name(ACCOUNT)


def registry_address(index: int) -> str:
    """The loopback address of the ``index``-th account's registry (0: the fleet's own account).

    Its own address per process, so port 443 is free whatever else runs on 127.0.0.1, and two
    checkouts can run their local fleets side by side."""
    return f"127.{77 + index}.{os.getpid() // 254 % 256}.{os.getpid() % 254 + 1}"


INSTANCE_CA = "/etc/ecr-fleet-auth-local/ca.crt"
# moto accepts any credentials; these stand in for the instance role and the runner's role.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def prerequisites() -> list[tuple[bool, str]]:
    """(present, what) for every external part a local fleet uses."""
    return [
        (os.geteuid() == 0, "root (mount namespaces, port 443)"),
        (shutil.which("unshare") is not None and shutil.which("nsenter") is not None, "unshare/nsenter"),
        (shutil.which("setpriv") is not None, "setpriv (util-linux)"),
        (os.access(DOCKER_CLI, os.X_OK), f"docker CLI at {DOCKER_CLI}"),
        (os.access(REGISTRY_BIN, os.X_OK), "docker-registry (Debian package)"),
        (os.access(HELPER_BIN, os.X_OK), "amazon-ecr-credential-helper (Debian package)"),
        (shutil.which("htpasswd") is not None, "htpasswd (apache2-utils)"),
        (shutil.which("openssl") is not None, "openssl"),
        ((VENV_BIN / "moto_server").exists() and (VENV_BIN / "aws").exists(), "moto_server and aws in .venv"),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalServices:
    def __init__(self, workdir: Path, account: str = ACCOUNT, index: int = 0) -> None:
        """``account``: whose ECR and registry these are; ``index``: its registry's loopback address."""
        self.workdir = workdir
        self.account = account
        self.registry = registry_name(account)
        self.registry_address = registry_address(index)
        self._processes: list[subprocess.Popen[bytes]] = []
        self.moto_port = self.moto_tls_port = self.proxy_port = 0
        self.ca = self.cert = self.key = Path()
        self.htpasswd = workdir / "registry" / "htpasswd"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def start(self) -> None:
        self.ca, self.cert, self.key = make_certificates(
            self.workdir / "tls",
            [self.registry, f"api.ecr.{REGION}.amazonaws.com"],
            ips=("127.0.0.1", self.registry_address),
        )
        self.moto_port, self.moto_tls_port, self.proxy_port = free_port(), free_port(), free_port()
        # moto's server with ECR's 12-hour tokens (moto's own say they expired in 2015).
        moto = [sys.executable, str(SERVERS / "moto_ecr_server.py")]
        self._spawn("moto", [*moto, "-H", "127.0.0.1", "-p", str(self.moto_port)])
        self._spawn(
            "moto-tls",
            [
                *moto,
                "-H",
                "127.0.0.1",
                "-p",
                str(self.moto_tls_port),
                "-c",
                str(self.cert),
                "-k",
                str(self.key),
            ],
        )
        self._spawn(
            "proxy",
            [
                sys.executable,
                str(SERVERS / "connect_proxy.py"),
                str(self.proxy_port),
                str(self.moto_tls_port),
            ],
        )
        self._start_registry()
        self._wait_for(
            f"127.0.0.1:{self.moto_port}",
            f"127.0.0.1:{self.moto_tls_port}",
            f"127.0.0.1:{self.proxy_port}",
            f"{self.registry_address}:443",
        )
        push_probe_image(self.registry_address, self.ca, self.account)

    def close(self) -> None:
        stop_processes(self._processes)

    def set_registry_password(self, password: str) -> None:
        """Rotate the registry's password: logins made with the old one stop working."""
        write_htpasswd(self.htpasswd, password)

    def surroundings(self) -> Surroundings:
        """What an instance of the local fleet reaches: the test CA, the registry under its ECR name, moto."""
        return Surroundings(
            ca=self.ca,
            ca_inside=INSTANCE_CA,
            hosts={self.registry: self.registry_address},
            registry=self.registry,
            env=self.instance_env(),
        )

    def instance_env(self) -> dict[str, str]:
        """What an instance's tools see: role credentials, moto as AWS, the proxy for the helper."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_CA_BUNDLE": INSTANCE_CA,
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTPS_PROXY": f"http://127.0.0.1:{self.proxy_port}",
            "NO_PROXY": f"127.0.0.1,localhost,{self.registry}",
            "AWS_ECR_DISABLE_CACHE": "true",
        }

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it from here
        env = {"PATH": os.environ.get("PATH", INSTANCE_PATH), "MOTO_ACCOUNT_ID": self.account}
        self._processes.append(
            subprocess.Popen([*DIE_WITH_PARENT, *argv], env=env, stdout=log, stderr=subprocess.STDOUT)
        )
        log.close()

    def _start_registry(self) -> None:
        config, self.htpasswd = prepare_registry(
            self.htpasswd.parent, self.registry_address, self.cert, self.key, self.account
        )
        self._spawn("registry", [REGISTRY_BIN, "serve", str(config)])

    def _wait_for(self, *addresses: str) -> None:
        subprocess.run(
            [sys.executable, str(SERVERS / "wait_for_ports.py"), "30", *addresses],
            check=True,
            capture_output=True,
        )
