"""Fixtures for the agent's tests: the agent module itself, and a sandboxed instance with real parts."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ecr_fleet_auth_cdk.document.script import AGENT_PY
from localfleet.deployment import single_instance as sb
from tests.conftest import require

DEFAULT_USERS = {"alice": True, "bob": True, "carol": False}


@pytest.fixture(scope="session")
def agent() -> ModuleType:
    """The agent file loaded as a module (it is a standalone script, not a package member)."""
    spec = importlib.util.spec_from_file_location("ecr_fleet_auth_agent", AGENT_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    """A fresh instance root (users alice and bob in the docker group, carol not) for each test."""
    world.sandbox.reset_root()
    world.set_registry_password(sb.moto_token(sb.ACCOUNT_A))
    world.prepare_instance(DEFAULT_USERS)
    return world
