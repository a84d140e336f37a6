"""A throwaway "instance" for running the agent as SSM would, with real parts.

One holder process (`unshare --mount --net sleep infinity`) owns a private mount
and network namespace. Inside it: loopback only, and an overlayfs over the host's
`/` (writes land in a tmpfs) that serves as the instance's root. Servers (moto,
the registry, the proxy, the mirror) run in the namespace on the host's file
view; the agent and probes run chrooted into the overlay. The test reaches the
instance's files through /proc/<holder>/root. Closing kills every process we
started; the namespace and all its mounts die with the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
DOCKER_CLI = "/usr/local/bin/docker"
HELPER_BIN = "/usr/bin/docker-credential-ecr-login"
REGISTRY_BIN = "/usr/bin/docker-registry"
INSTANCE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INSTANCE_ID = "i-0123456789abcdef0"
SANDBOX_CA = "/etc/ecr-fleet-auth-test/ca.crt"

ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
REGISTRY_A = f"{ACCOUNT_A}.dkr.ecr.eu-west-1.amazonaws.com"
REGISTRY_B = f"{ACCOUNT_B}.dkr.ecr.eu-west-1.amazonaws.com"
REGISTRY_C = f"{ACCOUNT_A}.dkr.ecr.us-east-2.amazonaws.com"
REGISTRIES = (REGISTRY_A, REGISTRY_B, REGISTRY_C)
MIRROR_HOST = "helper-mirror.test"
PROBE_REPOSITORY = "probe/app"
PROBE_TAG = "v1"


def moto_token(account: str) -> str:
    """The password moto's GetAuthorizationToken hands out for an account (deterministic)."""
    return f"{account}-auth-token"


def prerequisites() -> list[tuple[bool, str]]:
    """(present, what) for every external part the integration tests use."""
    return [
        (os.geteuid() == 0, "root"),
        (shutil.which("unshare") is not None and shutil.which("nsenter") is not None, "unshare/nsenter"),
        (shutil.which("setpriv") is not None, "setpriv (util-linux)"),
        (os.access(DOCKER_CLI, os.X_OK), f"docker CLI at {DOCKER_CLI}"),
        (os.access(REGISTRY_BIN, os.X_OK), "docker-registry (Debian package)"),
        (os.access(HELPER_BIN, os.X_OK), "amazon-ecr-credential-helper (Debian package)"),
        (shutil.which("htpasswd") is not None, "htpasswd (apache2-utils)"),
        (shutil.which("openssl") is not None, "openssl"),
        (shutil.which("ip") is not None, "ip (iproute2)"),
        ((VENV_BIN / "moto_server").exists() and (VENV_BIN / "aws").exists(), "moto_server and aws in .venv"),
    ]


# Prefix for long-lived children: the kernel kills them if the test process dies without cleaning up.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL"]


class Sandbox:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.rw = workdir / "rw"
        self.root.mkdir(parents=True, exist_ok=True)
        self.rw.mkdir(exist_ok=True)
        self._servers: list[subprocess.Popen[bytes]] = []
        self._holder = subprocess.Popen(
            [*DIE_WITH_PARENT, "unshare", "--mount", "--net", "--propagation", "private", "sleep", "infinity"]
        )
        try:
            self._wait_for_namespace()
            self._ns(["ip", "link", "set", "lo", "up"])
            self.mount_root()
        except BaseException:
            self.close()
            raise

    # --- namespace plumbing
    def _wait_for_namespace(self) -> None:
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self._holder.pid}/ns/net") != ours:
                    return
            time.sleep(0.01)
        raise RuntimeError("unshare did not create the namespaces")

    def _nsenter(self) -> list[str]:
        return ["nsenter", "-t", str(self._holder.pid), "-m", "-n"]

    def _ns(self, argv: list[str]) -> None:
        subprocess.run(self._nsenter() + argv, check=True, capture_output=True, timeout=30)

    def mount_root(self) -> None:
        """A fresh overlay over the host's / as the instance root, with its own /proc, /dev, /run, /tmp."""
        root, rw = self.root, self.rw
        script = f"""set -e
mount -t tmpfs -o mode=0755 tmpfs {rw}
mkdir {rw}/upper {rw}/work
mount -t overlay overlay -o lowerdir=/,upperdir={rw}/upper,workdir={rw}/work {root}
mount --rbind /dev {root}/dev
mount -t proc proc {root}/proc
mount -t tmpfs -o mode=0755 tmpfs {root}/run
mount -t tmpfs -o mode=1777 tmpfs {root}/tmp
"""
        self._ns(["sh", "-c", script])

    def reset_root(self) -> None:
        """Throw the instance's changes away (servers keep running)."""
        self._ns(["sh", "-c", f"umount -R {self.root} && umount {self.rw}"])
        self.mount_root()

    def close(self) -> None:
        for server in self._servers:
            with contextlib.suppress(OSError):
                server.terminate()
        for server in self._servers:
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        self._servers.clear()
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
        self._ns([sys.executable, str(FIXTURES / "wait_for_ports.py"), str(timeout), *map(str, ports)])

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


def make_certificates(directory: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key): a throwaway CA and one server certificate for all names."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    alt = ",".join([f"DNS:{name}" for name in names] + ["IP:127.0.0.1"])
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


# ---------------------------------------------------------------- the world around the instance


@dataclass
class World:
    """The servers an instance talks to, and how to configure the instance for them."""

    sandbox: Sandbox
    ca: Path
    cert: Path
    key: Path
    moto_port: int = 0
    moto_b_port: int = 0
    moto_tls_port: int = 0
    proxy_port: int = 0
    mirror_port: int = 0
    mirror_dir: Path = field(default_factory=Path)
    htpasswd: Path = field(default_factory=Path)

    # --- registry password (the registry reloads htpasswd when it changes)
    def set_registry_password(self, password: str) -> None:
        line = subprocess.run(
            ["htpasswd", "-niB", "AWS"], input=password.encode(), capture_output=True, check=True
        ).stdout
        temp = self.htpasswd.with_suffix(".new")
        temp.write_bytes(line)
        os.replace(temp, self.htpasswd)
        # The registry notices a changed file by its modification time; make the change visible now.
        later = time.time() + 1
        os.utime(self.htpasswd, (later, later))

    def mirror_url(self) -> str:
        return f"https://{MIRROR_HOST}:{self.mirror_port}"

    def publish_release(self, version: str, arch: str, binary: bytes, checksum: str | None = None) -> None:
        folder = self.mirror_dir / version / f"linux-{arch}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "docker-credential-ecr-login").write_bytes(binary)
        digest = checksum or hashlib.sha256(binary).hexdigest()
        (folder / "docker-credential-ecr-login.sha256").write_text(f"{digest}  docker-credential-ecr-login\n")

    # --- the instance
    def prepare_instance(self, users: dict[str, bool]) -> None:
        """Users ({name: in docker group}), the AWS CLI on PATH, the test CA trusted, ECR names mapped."""
        sandbox = self.sandbox
        # The overlay starts as a copy of this machine: drop its root's docker config.
        sandbox.run(["rm", "-rf", "/root/.docker"]).check_returncode()
        sandbox.run(["groupadd", "-f", "docker"]).check_returncode()
        for name, in_docker in users.items():
            groups = ["-G", "docker"] if in_docker else []
            sandbox.run(["useradd", "-m", "-s", "/bin/sh", *groups, name]).check_returncode()
        sandbox.write("/usr/local/bin/aws", f'#!/bin/sh\nexec {VENV_BIN}/aws "$@"\n', 0o755)
        sandbox.write(SANDBOX_CA, self.ca.read_bytes())
        bundle = sandbox.path("/etc/ssl/certs/ca-certificates.crt")
        bundle.write_bytes(bundle.read_bytes() + b"\n" + self.ca.read_bytes())
        hosts = ["127.0.0.1 localhost", f"127.0.0.1 {MIRROR_HOST}"]
        hosts += [f"127.0.0.1 {registry}" for registry in REGISTRIES]
        sandbox.write("/etc/hosts", "\n".join(hosts) + "\n")

    def instance_env(self, moto_port: int | None = None) -> dict[str, str]:
        """What the instance's tools see: the 'instance role' (env keys), moto, the proxy for the helper."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port or self.moto_port}",
            "AWS_CA_BUNDLE": SANDBOX_CA,
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTPS_PROXY": f"http://127.0.0.1:{self.proxy_port}",
            "NO_PROXY": ",".join(["127.0.0.1", "localhost", MIRROR_HOST, *REGISTRIES]),
            "AWS_ECR_DISABLE_CACHE": "true",
        }

    def probe(self, user: str, home: str, registry: str = REGISTRY_A) -> subprocess.CompletedProcess[bytes]:
        """Can this user pull? `docker manifest inspect` with the user's own config (no daemon needed)."""
        env = {"PATH": INSTANCE_PATH, "HOME": home, **self.instance_env()}
        return self.sandbox.run(
            [DOCKER_CLI, "manifest", "inspect", "--insecure", f"{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"],
            env=env,
            user=user,
        )

    def run_document(
        self,
        script: str,
        parameters: dict[str, str],
        env: dict[str, str] | None = None,
        *,
        parameter_env: bool = True,
    ) -> AgentRun:
        """Run the document's step as the SSM agent does: `sh -c _script.sh`, as root, without HOME."""
        orchestration = (
            f"/var/lib/amazon/ssm/{INSTANCE_ID}/document/orchestration/{uuid.uuid4()}"
            "/awsrunShellScript/0.awsrunShellScript"
        )
        for depth in range(4, len(orchestration.split("/")) + 1):
            self.sandbox.path("/".join(orchestration.split("/")[:depth])).mkdir(mode=0o700, exist_ok=True)
        rendered = substitute_parameters(script, parameters)
        self.sandbox.write(f"{orchestration}/_script.sh", rendered, 0o700)
        ssm_env = {"PATH": INSTANCE_PATH}
        if parameter_env:  # SSM agents before 3.3.2746.0 only substitute {{ Name }}
            ssm_env.update({f"SSM_{name}": value for name, value in parameters.items()})
        ssm_env.update(self.instance_env() if env is None else env)
        started = time.monotonic()
        try:
            # Longer than any one command the agent waits for, so its own timeouts report first.
            done = self.sandbox.run(
                ["sh", "-c", f"{orchestration}/_script.sh"], env=ssm_env, cwd=orchestration, timeout=300
            )
        except subprocess.TimeoutExpired as stuck:
            log = (stuck.stderr or b"").decode(errors="replace")
            raise AssertionError(f"the agent did not finish; its log so far:\n{log}") from None
        return AgentRun(
            done.returncode, done.stdout.decode(), done.stderr.decode(), time.monotonic() - started
        )


@dataclass
class AgentRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def result(self) -> dict[str, object]:
        lines = self.stdout.splitlines()
        assert len(lines) == 1, f"expected one result line, got {self.stdout!r}; stderr: {self.stderr}"
        value = json.loads(lines[0])
        assert isinstance(value, dict)
        return value


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9]+)\s*\}\}")


def substitute_parameters(script: str, parameters: dict[str, str]) -> str:
    """What the SSM agent does with `{{ Name }}` before it writes _script.sh."""
    return _PLACEHOLDER.sub(lambda match: parameters[match.group(1)], script)


def start_world(sandbox: Sandbox, workdir: Path) -> World:
    """Certificates, moto (plain, second account, TLS), the CONNECT proxy, the registry, the mirror."""
    ca, cert, key = make_certificates(
        workdir / "tls",
        [*REGISTRIES, MIRROR_HOST, "localhost"]
        + [f"api.ecr.{r}.amazonaws.com" for r in ("eu-west-1", "us-east-2")],
    )
    world = World(sandbox, ca, cert, key)
    ports = sandbox.free_ports(5)
    world.moto_port, world.moto_b_port, world.moto_tls_port, world.proxy_port, world.mirror_port = ports
    moto = str(VENV_BIN / "moto_server")
    base_env = {"PATH": os.environ.get("PATH", INSTANCE_PATH)}
    sandbox.start_server([moto, "-H", "127.0.0.1", "-p", str(world.moto_port)], base_env)
    sandbox.start_server(
        [moto, "-H", "127.0.0.1", "-p", str(world.moto_b_port)], {**base_env, "MOTO_ACCOUNT_ID": ACCOUNT_B}
    )
    sandbox.start_server(
        [moto, "-H", "127.0.0.1", "-p", str(world.moto_tls_port), "-c", str(cert), "-k", str(key)], base_env
    )
    python = sys.executable
    sandbox.start_server(
        [python, str(FIXTURES / "connect_proxy.py"), str(world.proxy_port), str(world.moto_tls_port)]
    )
    world.mirror_dir = workdir / "mirror"
    world.mirror_dir.mkdir()
    sandbox.start_server(
        [
            python,
            str(FIXTURES / "https_mirror.py"),
            str(world.mirror_port),
            str(world.mirror_dir),
            str(cert),
            str(key),
        ]
    )
    world.htpasswd = workdir / "registry" / "htpasswd"
    world.htpasswd.parent.mkdir()
    world.set_registry_password(moto_token(ACCOUNT_A))
    config = workdir / "registry" / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'registry' / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:443\n  tls:\n    certificate: {cert}\n    key: {key}\n"
        f"auth:\n  htpasswd:\n    realm: ecr-fleet-auth-test\n    path: {world.htpasswd}\n"
    )
    sandbox.start_server([REGISTRY_BIN, "serve", str(config)])
    sandbox.wait_for_ports(443, *ports)
    push_probe_image(world)
    return world


def push_probe_image(world: World) -> None:
    """The image every probe asks for, pushed with the registry's current password."""
    sandbox = world.sandbox
    done = subprocess.run(
        [
            *sandbox._nsenter(),
            sys.executable,
            str(FIXTURES / "push_image.py"),
            "127.0.0.1",
            PROBE_REPOSITORY,
            PROBE_TAG,
            str(world.ca),
        ],
        input=moto_token(ACCOUNT_A).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pushing the probe image failed: {done.stderr.decode()}")


def remove_tree(path: Path) -> None:
    """Remove a sandbox work dir; mounts inside it died with the namespace."""
    shutil.rmtree(path, ignore_errors=True)
