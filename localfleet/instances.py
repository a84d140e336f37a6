"""A simulated EC2 instance: its own sandbox root, users and docker configs, run like SSM runs it.

Each instance keeps its files between commands (its overlay lives as long as the
fleet), so a `refresh` followed by a `check` sees what the first one wrote, and a
pull probe after a run sees exactly what the agent left.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .executors import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult
from .sandbox import (
    DOCKER_CLI,
    INSTANCE_PATH,
    PROBE_REPOSITORY,
    PROBE_TAG,
    Sandbox,
    add_users,
    install_aws_cli,
    map_hosts,
    run_ssm_step,
    trust_ca,
)
from .services import INSTANCE_CA, REGISTRY, REGISTRY_ADDRESS, LocalServices


@dataclass(frozen=True)
class User:
    name: str
    docker_group: bool = True
    config: str | None = None  # ~/.docker/config.json as it is before any run


class SandboxInstance:
    """An executor for the SSM emulator that runs the document's step inside the instance."""

    def __init__(self, instance_id: str, workdir: Path, services: LocalServices, users: list[User]) -> None:
        self.instance_id = instance_id
        self.services = services
        self.users = users
        self.sandbox = Sandbox(workdir, network=False)
        try:
            self._prepare()
        except BaseException:
            self.sandbox.close()
            raise

    def _prepare(self) -> None:
        add_users(self.sandbox, {user.name: user.docker_group for user in self.users if user.name != "root"})
        install_aws_cli(self.sandbox)
        trust_ca(self.sandbox, self.services.ca, INSTANCE_CA)
        map_hosts(self.sandbox, {REGISTRY: REGISTRY_ADDRESS})
        for user in self.users:
            if user.config is not None:
                self._write_config(user, user.config)

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
                {**env, **self.services.instance_env()},
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
        env = {"PATH": INSTANCE_PATH, "HOME": self.home(user), **self.services.instance_env()}
        image = f"{REGISTRY}/{PROBE_REPOSITORY}:{PROBE_TAG}"
        done = self.sandbox.run([DOCKER_CLI, "manifest", "inspect", "--insecure", image], env=env, user=user)
        return done.returncode == 0

    def close(self) -> None:
        self.sandbox.close()
