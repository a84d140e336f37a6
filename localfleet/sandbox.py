"""Throwaway "instances": an overlay over the host's / as a root, in private namespaces.

One holder process (`unshare --mount [--net] sleep infinity`) owns a private mount
namespace and, if asked, a network namespace with loopback only. The instance's
root is an overlayfs over the host's `/` whose writes land in a tmpfs; processes
run chrooted into it (`nsenter --root`), as root or as a user. Servers can run in
the namespace on the host's file view. The host reaches the instance's files
through /proc/<holder>/root. Closing kills every process started; the namespace
and its mounts die with the holder.

The agent's integration tests use one network-isolated sandbox per test module;
the local fleet gives each simulated instance its own sandbox on the host's
loopback, so that one runner, one SSM emulator and one registry serve them all.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

SERVERS = Path(__file__).parent / "servers"
REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
INSTANCE_VENV = "/opt/ecr-fleet-auth/venv"  # where instances see the project's virtualenv
DOCKER_CLI = "/usr/local/bin/docker"
HELPER_BIN = "/usr/bin/docker-credential-ecr-login"
REGISTRY_BIN = "/usr/bin/docker-registry"
INSTANCE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROBE_REPOSITORY = "probe/app"
PROBE_TAG = "v1"


def moto_token(account: str) -> str:
    """The password moto's GetAuthorizationToken hands out for an account (deterministic)."""
    return f"{account}-auth-token"


# Prefix for long-lived children: the kernel kills them if the test process dies without cleaning up.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL"]


class Sandbox:
    def __init__(self, workdir: Path, *, network: bool = True) -> None:
        self.workdir = workdir
        self.network = network
        self.root = workdir / "root"
        self.rw = workdir / "rw"
        self.root.mkdir(parents=True, exist_ok=True)
        self.rw.mkdir(exist_ok=True)
        self._servers: list[subprocess.Popen[bytes]] = []
        namespaces = ["--mount", "--net"] if network else ["--mount"]
        self._holder = subprocess.Popen(
            [*DIE_WITH_PARENT, "unshare", *namespaces, "--propagation", "private", "sleep", "infinity"]
        )
        try:
            self._wait_for_namespace()
            if network:
                self._ns(["ip", "link", "set", "lo", "up"])
            self.mount_root()
        except BaseException:
            self.close()
            raise

    # --- namespace plumbing
    def _wait_for_namespace(self) -> None:
        kind = "net" if self.network else "mnt"
        ours = os.readlink(f"/proc/self/ns/{kind}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self._holder.pid}/ns/{kind}") != ours:
                    return
            time.sleep(0.01)
        raise RuntimeError("unshare did not create the namespaces")

    def _nsenter(self) -> list[str]:
        return ["nsenter", "-t", str(self._holder.pid), "-m", *(["-n"] if self.network else [])]

    def _ns(self, argv: list[str]) -> None:
        subprocess.run(self._nsenter() + argv, check=True, capture_output=True, timeout=30)

    def mount_root(self) -> None:
        """A fresh overlay over the host's / as the instance root, with its own /proc, /dev, /run, /tmp,
        and the project's virtualenv at a fixed path (the checkout may live under the hidden /tmp)."""
        root, rw = self.root, self.rw
        script = f"""set -e
mount -t tmpfs -o mode=0755 tmpfs {rw}
mkdir {rw}/upper {rw}/work
mount -t overlay overlay -o lowerdir=/,upperdir={rw}/upper,workdir={rw}/work {root}
mount --rbind /dev {root}/dev
mount -t proc proc {root}/proc
mount -t tmpfs -o mode=0755 tmpfs {root}/run
mount -t tmpfs -o mode=1777 tmpfs {root}/tmp
mkdir -p {root}{INSTANCE_VENV}
mount --bind {VENV_BIN.parent} {root}{INSTANCE_VENV}
mount -o remount,bind,ro {root}{INSTANCE_VENV}
"""
        self._ns(["sh", "-c", script])

    def reset_root(self) -> None:
        """Throw the instance's changes away (servers keep running)."""
        self._ns(["sh", "-c", f"umount -R {self.root} && umount {self.rw}"])
        self.mount_root()

    def close(self) -> None:
        stop_processes(self._servers)
        if self._holder.poll() is None:
            self._holder.kill()
            self._holder.wait()

    # --- files inside the instance, seen from the test
    def path(self, inside: str) -> Path:
        return Path(f"/proc/{self._holder.pid}/root{self.root}{inside}")

    def write(self, inside: str, text: str | bytes, mode: int = 0o644) -> None:
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        target.write_bytes(data)
        os.chmod(target, mode)

    def changed_files(self) -> dict[str, tuple[bytes, int, int, int]]:
        """Every file the instance wrote since its root was mounted: path -> (content, mode, uid, mtime)."""
        upper = Path(f"/proc/{self._holder.pid}/root{self.rw}/upper")
        files = {}
        for path in upper.rglob("*"):
            if path.is_file() and not path.is_symlink():
                info = path.lstat()
                files["/" + str(path.relative_to(upper))] = (
                    path.read_bytes(),
                    info.st_mode,
                    info.st_uid,
                    info.st_mtime_ns,
                )
        return files

    def shell_in_namespace(self, script: str) -> None:
        """Root shell in the namespace on the host's file view (e.g. to mount something into the instance)."""
        self._ns(["sh", "-c", script])

    # --- processes
    def run(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        stdin: bytes | None = None,
        cwd: str = "/",
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv chrooted in the instance, as root or (with the user's groups) as `user`."""
        # nsenter opens --root/--wd before entering the namespace: name them through the holder's view.
        inside = f"/proc/{self._holder.pid}/root{self.root}"
        prefix = [*self._nsenter(), f"--root={inside}", f"--wd={inside}{cwd}"]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
        return subprocess.run(
            prefix + argv,
            env=env if env is not None else {"PATH": INSTANCE_PATH},
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def start_server(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A long-running process in the namespace (host file view); stopped by close()."""
        log = open(self.workdir / f"server-{len(self._servers)}.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [*DIE_WITH_PARENT, *self._nsenter(), *argv],
            env=env or {"PATH": os.environ.get("PATH", INSTANCE_PATH)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._servers.append(server)
        return server

    def wait_for_ports(self, *ports: int, timeout: float = 20) -> None:
        self._ns([sys.executable, str(SERVERS / "wait_for_ports.py"), str(timeout), *map(str, ports)])

    def free_ports(self, count: int) -> list[int]:
        """Ports the kernel picks (bind to port 0) inside the namespace."""
        code = (
            "import socket,sys\n"
            "socks=[socket.socket() for _ in range(int(sys.argv[1]))]\n"
            "[s.bind(('127.0.0.1', 0)) for s in socks]\n"
            "print(' '.join(str(s.getsockname()[1]) for s in socks))\n"
        )
        done = subprocess.run(
            [*self._nsenter(), sys.executable, "-c", code, str(count)], capture_output=True, check=True
        )
        return [int(port) for port in done.stdout.split()]


# ---------------------------------------------------------------- certificates


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


# ---------------------------------------------------------------- processes and registry passwords


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate, give each 5 s, then kill; the list is emptied."""
    for process in processes:
        with contextlib.suppress(OSError):
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    processes.clear()


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


# ---------------------------------------------------------------- making a sandbox an instance


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


def install_aws_cli(sandbox: Sandbox) -> None:
    """The project's AWS CLI as the instance's `aws` (instances have one; this machine's is in .venv).

    Through the venv's own python: the script's shebang names the checkout's path."""
    sandbox.write(
        "/usr/local/bin/aws",
        f'#!/bin/sh\nexec {INSTANCE_VENV}/bin/python {INSTANCE_VENV}/bin/aws "$@"\n',
        0o755,
    )


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
