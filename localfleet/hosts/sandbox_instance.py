"""A simulated EC2 instance: its own sandbox root, users and docker configs; an executor run like SSM runs it.

Each instance keeps its files between commands (its overlay lives as long as the
fleet), so a `refresh` followed by a `check` sees what the first one wrote, and a
pull probe after a run sees exactly what the agent left.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..ssm.models.agent_interface import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult
from .overlay_sandbox import DOCKER_CLI, INSTANCE_PATH, Sandbox
from .provisioning import give_instance_role, make_instance, run_ssm_step
from .registry_server import PROBE_REPOSITORY, PROBE_TAG


@dataclass(frozen=True)
class User:
    name: str
    docker_group: bool = True
    config: str | None = None  # ~/.docker/config.json as it is before any run


@dataclass(frozen=True)
class Surroundings:
    """What an instance reaches around it: the CA it trusts, host names, its tools' environment."""

    ca: Path  # the test CA (on this machine), installed at ``ca_inside``
    ca_inside: str
    hosts: Mapping[str, str]  # /etc/hosts: name -> loopback address (the registry under its ECR name)
    registry: str  # the registry the pull probe pulls from
    env: Mapping[str, str] = field(default_factory=dict)  # role credentials, endpoints, proxy


class SandboxInstance:
    """An executor for the Run Command engine that runs the document's step inside the instance."""

    def __init__(
        self, instance_id: str, workdir: Path, surroundings: Surroundings, users: list[User]
    ) -> None:
        self.instance_id = instance_id
        self.surroundings = surroundings
        self.users = users
        self.sandbox = Sandbox(workdir, network=False)
        try:
            self._prepare()
        except BaseException:
            self.sandbox.close()
            raise

    def _prepare(self) -> None:
        users = {user.name: user.docker_group for user in self.users if user.name != "root"}
        surroundings = self.surroundings
        make_instance(
            self.sandbox,
            users,
            ca=surroundings.ca,
            ca_inside=surroundings.ca_inside,
            hosts=dict(surroundings.hosts),
            env=surroundings.env,
        )
        for user in self.users:
            self._give_instance_role(user.name)
            if user.config is not None:
                self._write_config(user, user.config)

    def _give_instance_role(self, user: str) -> None:
        """The agent runs a user's credential helper with the user's environment, never with its own
        (the step's) AWS credentials: the user's SDK finds the role's as on EC2."""
        key, secret = (
            self.surroundings.env.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        )
        if key and secret:
            give_instance_role(self.sandbox, user, key, secret)

    def _write_config(self, user: User, text: str) -> None:
        directory = f"{self.home(user.name)}/.docker"
        self.sandbox.run(["install", "-d", "-m", "0700", "-o", user.name, "-g", user.name, directory])
        self.sandbox.write(f"{directory}/config.json", text, 0o600)
        self.sandbox.run(["chown", f"{user.name}:{user.name}", f"{directory}/config.json"]).check_returncode()

    def home(self, user: str) -> str:
        return "/root" if user == "root" else f"/home/{user}"

    def config_bytes(self, user: str) -> bytes | None:
        path = self.sandbox.path(f"{self.home(user)}/.docker/config.json")
        return path.read_bytes() if path.exists() else None

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult:
        try:
            done = run_ssm_step(
                self.sandbox,
                self.instance_id,
                script,
                {**env, **self.surroundings.env},
                timeout_seconds,
            )
        except subprocess.TimeoutExpired as stuck:
            stderr = (stuck.stderr or b"").decode(errors="replace")
            return ExecutionResult(STOPPED_PREEMPTIVELY_EXIT_CODE, "", stderr, timed_out=True)
        return ExecutionResult(
            done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"), False
        )

    def can_pull(self, user: str) -> bool:
        """The pull probe: `docker manifest inspect` with the user's own config, as the user."""
        env = {"PATH": INSTANCE_PATH, "HOME": self.home(user), **self.surroundings.env}
        image = f"{self.surroundings.registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
        done = self.sandbox.run([DOCKER_CLI, "manifest", "inspect", "--insecure", image], env=env, user=user)
        return done.returncode == 0

    def close(self) -> None:
        self.sandbox.close()
