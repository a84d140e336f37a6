"""The agent's test bed for the integration tests: servers in a sandbox, a fresh instance root per test
(localfleet/harnesses/single_instance.py); the fixtures are in tests/agent/conftest.py."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localfleet.harnesses import single_instance as sb
from localfleet.hosts import container_clients
from tests.support.prerequisites import require

# alice and bob in the docker group, carol not.
DEFAULT_USERS = {"alice": True, "bob": True, "carol": False}


@contextmanager
def sandboxed_world() -> Iterator[sb.World]:
    """Servers in a private network namespace (they hold no instance state), removed afterwards."""
    for present, what in sb.prerequisites():
        require(present, what)
    workdir = Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-sandbox-"))
    sandbox = sb.Sandbox(workdir)
    try:
        yield sb.start_world(sandbox, workdir)
    finally:
        sandbox.close()
        sb.remove_tree(workdir)


def fresh_instance(
    world: sb.World, users: dict[str, bool] | None = None, clients: tuple[str, ...] | None = None
) -> sb.World:
    """A fresh instance root in ``world``: ``users`` (default ``DEFAULT_USERS``), the container clients
    named (localfleet/hosts/container_clients.py; default: the docker CLI only), a valid registry token."""
    if clients is not None:
        for present, what in container_clients.prerequisites(clients):
            require(present, what)
    world.sandbox.reset_root()
    world.set_registry_password(sb.moto_token(sb.ACCOUNT_A))
    if clients is None:
        world.prepare_instance(DEFAULT_USERS if users is None else users)
    else:
        world.prepare_instance(DEFAULT_USERS if users is None else users, clients)
    return world
