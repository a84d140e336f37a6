"""One throwaway instance in its own network namespace, with every server it talks to: the agent's test bed.

The agent's integration tests (tests/agent/) and its benchmark run the document's
script here as SSM runs it, against real tools.

One holder process (`unshare --mount --net sleep infinity`) owns a private mount
and network namespace. Inside it: loopback only, and an overlayfs over the host's
`/` (writes land in a tmpfs) that serves as the instance's root. Servers (moto,
the registry, the proxy, the mirror) run in the namespace on the host's file
view; the agent and probes run chrooted into the overlay. The test reaches the
instance's files through /proc/<holder>/root. Closing kills every process we
started; the namespace and all its mounts die with the holder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..hosts import registry_server
from ..hosts.container_clients import give_clients
from ..hosts.overlay_sandbox import DOCKER_CLI, INSTANCE_PATH, SERVERS, VENV_BIN, Sandbox
from ..hosts.provisioning import give_instance_role, make_instance, run_ssm_step
from ..hosts.registry_server import (
    PROBE_REPOSITORY,
    PROBE_TAG,
    REGISTRY_BIN,
    make_certificates,
    moto_token,  # noqa: F401 - the agent's tests read the registry's password as this module's
    prepare_registry,
    write_htpasswd,
)
from ..identity import ACCOUNT, REGION, registry_name
from ..ssm.models.documents import sets_parameter_variables, substitute
from . import local_services as services

INSTANCE_ID = "i-0123456789abcdef0"
SANDBOX_CA = "/etc/ecr-fleet-auth-test/ca.crt"

ACCOUNT_A = ACCOUNT
ACCOUNT_B = "210987654321"
REGISTRY_A = registry_name(ACCOUNT_A)
REGISTRY_B = registry_name(ACCOUNT_B)
REGISTRY_C = registry_name(ACCOUNT_A, "us-east-2")
REGISTRIES = (REGISTRY_A, REGISTRY_B, REGISTRY_C)
# REGISTRY_A's dual-stack name (the same registry: the same token opens it).
REGISTRY_A_DUALSTACK = f"{ACCOUNT_A}.dkr-ecr.{REGION}.on.aws"
# Account A's registry in the EU sovereign cloud: a name Debian's helper (0.6.0) does not know.
REGISTRY_EUSC = f"{ACCOUNT_A}.dkr.ecr.eusc-de-east-1.amazonaws.eu"
REGISTRY_NAMES = (*REGISTRIES, REGISTRY_A_DUALSTACK, REGISTRY_EUSC)  # the registry answers to each
# The ECR API's dual-stack endpoint for REGISTRY_A's region (the AWS CLI with AWS_USE_DUALSTACK_ENDPOINT).
DUALSTACK_API = f"ecr.{REGION}.api.aws"
MIRROR_HOST = "helper-mirror.test"
# A non-root login shell's PATH on Debian (/etc/profile): no sbin directories. Root's is INSTANCE_PATH.
USER_LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
# The instance role as users' own AWS SDKs find it. A real instance serves it from IMDS to every user;
# here (IMDS off) each user's ~/.aws/credentials stands in. The agent's own calls get it from the SSM
# step's environment (instance_env), which the agent never hands to a user's credential helper.
INSTANCE_ROLE = ("testing", "testing")  # access key, secret key
AGENT_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def prerequisites() -> list[tuple[bool, str]]:
    """(present, what) for every external part the integration tests use."""
    return [*services.prerequisites(), (shutil.which("ip") is not None, "ip (iproute2)")]


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
    proxy_log: Path = field(default_factory=Path)  # the CONNECT proxy's tunnels, one line each

    # --- registry password (the registry reloads htpasswd when it changes)
    def set_registry_password(self, password: str) -> None:
        write_htpasswd(self.htpasswd, password)

    def mirror_url(self) -> str:
        return f"https://{MIRROR_HOST}:{self.mirror_port}"

    def publish_release(self, version: str, arch: str, binary: bytes, checksum: str | None = None) -> None:
        folder = self.mirror_dir / version / f"linux-{arch}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "docker-credential-ecr-login").write_bytes(binary)
        digest = checksum or hashlib.sha256(binary).hexdigest()
        (folder / "docker-credential-ecr-login.sha256").write_text(f"{digest}  docker-credential-ecr-login\n")

    # --- the instance
    def prepare_instance(self, users: dict[str, bool], clients: tuple[str, ...] = ("docker",)) -> None:
        """Users ({name: in docker group}), exactly these container clients (container_clients), the AWS
        CLI on PATH, the test CA trusted, ECR names mapped."""
        give_clients(self.sandbox, clients)
        hosts = dict.fromkeys((MIRROR_HOST, *REGISTRY_NAMES), "127.0.0.1")
        make_instance(
            self.sandbox, users, ca=self.ca, ca_inside=SANDBOX_CA, hosts=hosts, env=self.instance_env()
        )
        for user in ("root", *users):
            self.give_instance_role(user)

    def add_environment(self, text: str) -> None:
        """Lines added to the instance's /etc/environment (what pam_env gives every session)."""
        path = self.sandbox.path("/etc/environment")
        self.sandbox.write("/etc/environment", path.read_text() + text if path.exists() else text)

    def give_instance_role(self, user: str) -> None:
        """~/.aws/credentials (0600, the user's) with the 'instance role', as IMDS would serve it."""
        give_instance_role(self.sandbox, user, *INSTANCE_ROLE)

    def user_env(self, user: str, home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What a user's own clients see: a login PATH, the instance's network settings (proxy, CA),
        no AWS credentials but those the user's own files hold, and what the user's session sets
        (`extra`: DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR...)."""
        env = {k: v for k, v in self.instance_env().items() if k not in AGENT_CREDENTIAL_VARIABLES}
        path = INSTANCE_PATH if user == "root" else USER_LOGIN_PATH
        return {**env, "PATH": path, "HOME": home, "USER": user, "LOGNAME": user, **(extra or {})}

    def instance_env(self, moto_port: int | None = None) -> dict[str, str]:
        """What the instance's tools see: the 'instance role' (env keys), moto, the proxy for the helper."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port or self.moto_port}",
            "AWS_CA_BUNDLE": SANDBOX_CA,
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTPS_PROXY": f"http://127.0.0.1:{self.proxy_port}",
            "NO_PROXY": ",".join(["127.0.0.1", "localhost", MIRROR_HOST, *REGISTRY_NAMES]),
            "AWS_ECR_DISABLE_CACHE": "true",
        }

    def probe(
        self,
        user: str,
        home: str,
        registry: str = REGISTRY_A,
        client: str = "docker",
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Can this user pull with this client? Its own pull (or, for docker, `docker manifest inspect`:
        no daemon needed) with the user's own files and environment (user_env, plus `env`)."""
        image = f"{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
        argv = {
            "docker": [DOCKER_CLI, "manifest", "inspect", "--insecure", image],
            "nerdctl": ["nerdctl", "pull", image],
            "skopeo": ["skopeo", "inspect", f"docker://{image}"],
            "podman": ["podman", "pull", "-q", image],
            "podman-docker": ["docker", "pull", "-q", image],
            "buildah": ["buildah", "pull", "-q", image],
        }[client]
        # podman and buildah pull into storage in a user namespace when rootless: not from a chroot.
        pivot = client in ("podman", "podman-docker", "buildah")
        return self.sandbox.run(argv, env=self.user_env(user, home, env), user=user, pivot=pivot)

    def run_document(
        self,
        script: str,
        parameters: dict[str, str],
        env: dict[str, str] | None = None,
        *,
        agent_version: str = "3.3.2746.0",
    ) -> AgentRun:
        """Run the document's step as an SSM agent of ``agent_version`` does: `sh -c _script.sh`, as
        root, without HOME; `{{ Name }}` replaced, and `$SSM_<Name>` set only by agents that set it."""
        rendered = substitute(script, {name: [value] for name, value in parameters.items()})
        ssm_env: dict[str, str] = {}
        if sets_parameter_variables(agent_version):
            ssm_env.update({f"SSM_{name}": value for name, value in parameters.items()})
        ssm_env.update(self.instance_env() if env is None else env)
        started = time.monotonic()
        try:
            # Longer than any one command the agent waits for, so its own timeouts report first.
            done = run_ssm_step(self.sandbox, INSTANCE_ID, rendered, ssm_env, timeout=300)
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


def start_world(sandbox: Sandbox, workdir: Path) -> World:
    """Certificates, moto (plain, second account, TLS), the CONNECT proxy, the registry, the mirror."""
    ca, cert, key = make_certificates(
        workdir / "tls",
        [*REGISTRY_NAMES, MIRROR_HOST, "localhost", DUALSTACK_API]
        + [f"api.ecr.{r}.amazonaws.com" for r in (REGION, "us-east-2")],
    )
    world = World(sandbox, ca, cert, key)
    ports = sandbox.free_ports(5)
    world.moto_port, world.moto_b_port, world.moto_tls_port, world.proxy_port, world.mirror_port = ports
    # moto's own server: its ECR tokens say they expired in 2015, so every refresh logs in again (the
    # agent's tests are written for that; the local fleet and the demo use 12-hour tokens).
    moto = [str(VENV_BIN / "moto_server")]
    base_env = {"PATH": os.environ.get("PATH", INSTANCE_PATH)}
    sandbox.start_server([*moto, "-H", "127.0.0.1", "-p", str(world.moto_port)], base_env)
    sandbox.start_server(
        [*moto, "-H", "127.0.0.1", "-p", str(world.moto_b_port)], {**base_env, "MOTO_ACCOUNT_ID": ACCOUNT_B}
    )
    sandbox.start_server(
        [*moto, "-H", "127.0.0.1", "-p", str(world.moto_tls_port), "-c", str(cert), "-k", str(key)], base_env
    )
    python = sys.executable
    proxy = sandbox.start_server(
        [python, str(SERVERS / "connect_proxy.py"), str(world.proxy_port), str(world.moto_tls_port)]
    )
    world.proxy_log = sandbox.server_log(proxy)
    world.mirror_dir = workdir / "mirror"
    world.mirror_dir.mkdir()
    sandbox.start_server(
        [
            python,
            str(SERVERS / "https_mirror.py"),
            str(world.mirror_port),
            str(world.mirror_dir),
            str(cert),
            str(key),
        ]
    )
    config, world.htpasswd = prepare_registry(workdir / "registry", "127.0.0.1", cert, key, ACCOUNT_A)
    sandbox.start_server([REGISTRY_BIN, "serve", str(config)])
    sandbox.wait_for_ports(443, *ports)
    push_probe_image(world)
    return world


def push_probe_image(world: World) -> None:
    """The image every probe asks for, pushed with the registry's current password."""
    registry_server.push_probe_image("127.0.0.1", world.ca, ACCOUNT_A, world.sandbox._nsenter())


def remove_tree(path: Path) -> None:
    """Remove a sandbox work dir; mounts inside it died with the namespace."""
    shutil.rmtree(path, ignore_errors=True)
