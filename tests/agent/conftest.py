"""Fixtures for the agent's tests: a user's home for the modules' unit tests, and a sandboxed instance with
real parts for the integration tests."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.docker_model import DockerModel
from agent.users import Account
from localfleet.harnesses import single_instance as sb
from localfleet.hosts import container_clients
from tests.agent.user_files import NOBODY
from tests.conftest import require

DEFAULT_USERS = {"alice": True, "bob": True, "carol": False}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home directory owned by an unprivileged uid, reachable by it (tmp_path's parents are 0700)."""
    require(os.geteuid() == 0, "root (the agent changes to the user's uid)")
    folder = tmp_path / "home"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    for parent in (tmp_path, *tmp_path.parents):
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IXOTH)
    return folder


@pytest.fixture
def account(home: Path) -> Account:
    return Account("nobody", NOBODY, NOBODY, str(home))


@pytest.fixture
def model() -> DockerModel:
    return DockerModel((28, 2))


@pytest.fixture(scope="module")
def world() -> Iterator[sb.World]:
    """Servers in a private network namespace, shared by one test module (they hold no instance state)."""
    for present, what in sb.prerequisites():
        require(present, what)
    workdir = Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-sandbox-"))
    sandbox = sb.Sandbox(workdir)
    try:
        yield sb.start_world(sandbox, workdir)
    finally:
        sandbox.close()
        sb.remove_tree(workdir)


@pytest.fixture
def instance(world: sb.World) -> sb.World:
    """A fresh instance root for each test: the docker CLI its only container client, users alice and
    bob in the docker group, carol not."""
    world.sandbox.reset_root()
    world.set_registry_password(sb.moto_token(sb.ACCOUNT_A))
    world.prepare_instance(DEFAULT_USERS)
    return world


@pytest.fixture
def instance_with(world: sb.World) -> Callable[..., sb.World]:
    """A fresh instance root with exactly the container clients named (localfleet/hosts/container_clients.py:
    docker, podman, skopeo, buildah, podman-docker, nerdctl) and the users given (default as `instance`)."""

    def make(*clients: str, users: dict[str, bool] | None = None) -> sb.World:
        for present, what in container_clients.prerequisites(clients):
            require(present, what)
        world.sandbox.reset_root()
        world.set_registry_password(sb.moto_token(sb.ACCOUNT_A))
        world.prepare_instance(DEFAULT_USERS if users is None else users, clients)
        return world

    return make
