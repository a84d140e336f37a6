"""Fixtures for the agent's tests: a user's home for the modules' unit tests, and a sandboxed instance with
real parts for the integration tests."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.docker_model import DockerModel
from agent.users import Account
from localfleet.harnesses import single_instance as sb
from tests.agent.user_files import NOBODY
from tests.support.prerequisites import require
from tests.support.sandboxed_instance import fresh_instance, sandboxed_world


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
    with sandboxed_world() as started:
        yield started


@pytest.fixture
def instance(world: sb.World) -> sb.World:
    """A fresh instance root for each test: the docker CLI its only container client, users alice and
    bob in the docker group, carol not."""
    return fresh_instance(world)


@pytest.fixture
def instance_with(world: sb.World) -> Callable[..., sb.World]:
    """A fresh instance root with exactly the container clients named (localfleet/hosts/container_clients.py:
    docker, podman, skopeo, buildah, podman-docker, nerdctl) and the users given (default as `instance`)."""

    def make(*clients: str, users: dict[str, bool] | None = None) -> sb.World:
        return fresh_instance(world, users, clients)

    return make
