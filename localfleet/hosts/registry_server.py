"""The servers hosts talk to in place of AWS's: a TLS registry with htpasswd auth and its certificates.

A real ``docker-registry`` (Debian package) serves TLS on port 443 of a loopback
address; its only user is ``AWS`` with moto's deterministic token as password, so
only a real ``docker login`` with a token from (simulated) ECR works, and rotating
the password makes stale logins fail. The scripts under ``servers/`` (CONNECT
proxy, HTTPS mirror, image push, port wait) run beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .overlay_sandbox import SERVERS

REGISTRY_BIN = "/usr/bin/docker-registry"
PROBE_REPOSITORY = "probe/app"
PROBE_TAG = "v1"


def moto_token(account: str) -> str:
    """The password moto's GetAuthorizationToken hands out for an account (deterministic)."""
    return f"{account}-auth-token"


def make_certificates(
    directory: Path, names: list[str], ips: tuple[str, ...] = ("127.0.0.1",)
) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key): a throwaway CA and one server certificate for all names."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    alt = ",".join([f"DNS:{name}" for name in names] + [f"IP:{ip}" for ip in ips])
    ext.write_text(
        f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )

    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", ca_key, "-out", ca_crt,
            "-subj", "/CN=ecr-fleet-auth test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=ecr-fleet-auth test server")  # fmt: skip
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "2", "-out", crt, "-extfile", ext)  # fmt: skip
    return ca_crt, crt, key


def write_htpasswd(path: Path, password: str) -> None:
    """The registry's only user, AWS, with ``password``; the registry re-reads the file when it changes."""
    line = subprocess.run(
        ["htpasswd", "-niB", "AWS"], input=password.encode(), capture_output=True, check=True
    )
    temp = path.with_suffix(".new")
    temp.write_bytes(line.stdout)
    os.replace(temp, path)
    # The registry notices a changed file by its modification time; make the change visible now.
    later = time.time() + 1
    os.utime(path, (later, later))


def write_registry_config(directory: Path, address: str, cert: Path, key: Path, htpasswd: Path) -> Path:
    """docker-registry's config: TLS on ``address``:443, htpasswd auth, storage beside it."""
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: {address}:443\n  tls:\n    certificate: {cert}\n    key: {key}\n"
        f"auth:\n  htpasswd:\n    realm: ecr-fleet-auth\n    path: {htpasswd}\n"
    )
    return config


def prepare_registry(directory: Path, address: str, cert: Path, key: Path, account: str) -> tuple[Path, Path]:
    """(config, htpasswd) of the account's registry in ``directory``: TLS on ``address``:443, its one
    user's password the account's ECR token (``moto_token``)."""
    htpasswd = directory / "htpasswd"
    directory.mkdir(parents=True, exist_ok=True)
    write_htpasswd(htpasswd, moto_token(account))
    return write_registry_config(directory, address, cert, key, htpasswd), htpasswd


def push_probe_image(address: str, ca: Path, account: str, prefix: Sequence[str] = ()) -> None:
    """The image every probe asks for, pushed to the registry at ``address`` with the account's token
    (``prefix``: how to enter the network the registry listens in)."""
    done = subprocess.run(
        [
            *prefix,
            sys.executable,
            str(SERVERS / "push_image.py"),
            address,
            PROBE_REPOSITORY,
            PROBE_TAG,
            str(ca),
        ],
        input=moto_token(account).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pushing the probe image failed: {done.stderr.decode()}")
