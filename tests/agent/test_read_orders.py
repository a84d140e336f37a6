"""Who reads which file (agent/read_order.py, containers_client.py, docker_client.py, credential_files.py):
the file the agent says answers a client is the one the real client answers from.

Each case puts a credential with its own user name in some of the files a containers client may read,
sets the environment, and asks the real client (`login --get-login`, its own lookup without network:
tests/agent/real_containers.py) which user name it finds; the agent's answer for that client must name
the same file. skopeo 1.9.3 and podman 4.3.1 are Debian 12's (containers/image 5.23.1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.containers_client import read_orders as containers_orders
from agent.credential_files import FILE, UserCredentials
from agent.docker_client import read_orders as docker_orders
from agent.host_clients import Client
from agent.user_env import Environment
from agent.users import Account
from tests.agent.real_containers import PODMAN, SKOPEO, RealContainers, real_containers_in
from tests.agent.user_files import REGISTRY, b64

WHERE = {
    "runtime": "run/containers/auth.json",
    "config": "home/.config/containers/auth.json",
    "docker": "home/.docker/config.json",
    "legacy": "home/.dockercfg",
    "named": "other/named.json",
    "dockerconfig": "other/dc/config.json",
    "confighome": "other/cfg/containers/auth.json",
}


def content(name: str, with_credential: bool = True) -> bytes:
    entries = {REGISTRY: {"auth": b64(f"{name}:secret")}} if with_credential else {}
    if name == "legacy":
        return json.dumps(entries).encode()
    return json.dumps({"auths": entries}).encode()


class Host:
    def __init__(self, *clients: Client) -> None:
        self.clients = list(clients)


def agent_answer(folder: Path, client: Client, env: dict[str, str]) -> str:
    """The user name in the file the agent says this client reads the registry from ("none": none)."""
    account = Account("root", 0, 0, str(folder / "home"))
    values = {"XDG_RUNTIME_DIR": str(folder / "run"), **{k: str(folder / v) for k, v in env.items()}}
    creds = UserCredentials(Host(client), account, [Environment("login", values)])
    (order,) = creds.orders
    answer = creds.answer(order, REGISTRY, stores=None)
    if answer.kind != FILE:
        return answer.kind
    return answer.credential.username


def real_answer(real: RealContainers, env: dict[str, str]) -> str:
    stdout, stderr = real.get_login(REGISTRY, {k: str(real.folder / v) for k, v in env.items()})
    return stdout or ("none" if "not logged into" in stderr else "error")


# (files holding a credential, files without one, environment: variable -> a WHERE path or folder)
SCENARIOS = {
    "every default file": (["runtime", "config", "docker", "legacy"], [], {}),
    "no runtime file": (["config", "docker", "legacy"], [], {}),
    "docker and legacy": (["docker", "legacy"], [], {}),
    "legacy only": (["legacy"], [], {}),
    "runtime without the registry": (["docker"], ["runtime"], {}),
    "REGISTRY_AUTH_FILE": (["named", "runtime", "docker"], [], {"REGISTRY_AUTH_FILE": WHERE["named"]}),
    # containers/image 5.23: the named file replaces only the runtime file; the others are still read.
    "REGISTRY_AUTH_FILE without it": (["docker"], ["named"], {"REGISTRY_AUTH_FILE": WHERE["named"]}),
    "REGISTRY_AUTH_FILE missing": (["config"], [], {"REGISTRY_AUTH_FILE": WHERE["named"]}),
    "XDG_RUNTIME_DIR missing": (["config", "docker"], [], {"XDG_RUNTIME_DIR": "nowhere"}),
    "XDG_CONFIG_HOME": (["confighome", "config", "docker"], [], {"XDG_CONFIG_HOME": "other/cfg"}),
    "DOCKER_CONFIG read after auth.json": (["dockerconfig", "docker"], [], {"DOCKER_CONFIG": "other/dc"}),
}
# podman and buildah (not skopeo) take DOCKER_CONFIG/config.json as their --authfile (containers/common
# GetDefaultAuthFile): that file first, then the rest.
PODMAN_SCENARIOS = {
    "DOCKER_CONFIG as the authfile": (["dockerconfig", "runtime"], [], {"DOCKER_CONFIG": "other/dc"}),
    "DOCKER_CONFIG without it": (["config"], ["dockerconfig"], {"DOCKER_CONFIG": "other/dc"}),
}


def place(real: RealContainers, holding: list[str], empty: list[str]) -> None:
    files = {WHERE[name]: content(name) for name in holding}
    files.update({WHERE[name]: content(name, with_credential=False) for name in empty})
    real.reset(files)


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> RealContainers:
    return real_containers_in(tmp_path_factory.mktemp("skopeo-order"), SKOPEO)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> RealContainers:
    return real_containers_in(tmp_path_factory.mktemp("podman-order"), PODMAN)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_skopeo_reads_the_file_the_agent_says(skopeo: RealContainers, name: str) -> None:
    holding, empty, env = SCENARIOS[name]
    place(skopeo, holding, empty)
    expected = real_answer(skopeo, env)
    assert agent_answer(skopeo.folder, Client("skopeo", SKOPEO, "1.9.3"), env) == expected


PODMAN_CASES = {name: case for name, case in SCENARIOS.items() if "DOCKER_CONFIG" not in case[2]}
PODMAN_CASES.update(PODMAN_SCENARIOS)


@pytest.mark.parametrize("name", list(PODMAN_CASES))
def test_podman_reads_the_file_the_agent_says(podman: RealContainers, name: str) -> None:
    holding, empty, env = PODMAN_CASES[name]
    place(podman, holding, empty)
    expected = real_answer(podman, env)
    # `login --get-login` only looks up; a pull first requires the file the user named to exist
    if podman.pull_refused_before_lookup({k: str(podman.folder / v) for k, v in env.items()}):
        expected = "error"
    assert agent_answer(podman.folder, Client("podman", PODMAN, "4.3.1"), env) == expected


def orders_for(client: Client, values: dict[str, str]) -> list[str]:
    account = Account("alice", 1001, 1001, "/home/alice")
    (order,) = containers_orders(client, account, Environment("login", values))
    return [ref.path for ref in order.files]


def test_a_named_file_is_the_only_one_from_containers_image_5_24(tmp_path: Path) -> None:
    """containers/image commit b3748aab "Don't use any default path fallbacks if the user specified a
    path" (first in v5.24.0): getAuthFilePaths adds the defaults only `if !userSpecifiedPath`. podman
    4.4.0, skopeo 1.11.0 and buildah 1.29.0 are the first releases on it (their go.mod: v5.24.0)."""
    named = {"REGISTRY_AUTH_FILE": "/srv/auth.json", "XDG_RUNTIME_DIR": str(tmp_path)}
    for name, before, since in (
        ("podman", "4.3.1", "4.4.0"),
        ("skopeo", "1.10.0", "1.11.0"),
        ("buildah", "1.28.2", "1.29.0"),
    ):
        assert len(orders_for(Client(name, None, before), named)) == 4, name
        assert orders_for(Client(name, None, since), named) == ["/srv/auth.json"], name
        assert orders_for(Client(name, None, None), named) == ["/srv/auth.json"], "unknown reads as newest"
    unnamed = orders_for(Client("podman", None, "5.2.0"), {"XDG_RUNTIME_DIR": str(tmp_path)})
    assert unnamed == [
        f"{tmp_path}/containers/auth.json",
        "/home/alice/.config/containers/auth.json",
        "/home/alice/.docker/config.json",
        "/home/alice/.dockercfg",
    ]


def test_podman_and_buildah_require_the_file_they_were_named() -> None:
    """podman cmd/podman/images/pull.go: `os.Stat(pullOptions.Authfile)` fails the pull before any lookup;
    buildah uses containers/common CheckAuthFile alike; skopeo does not check."""
    account = Account("alice", 1001, 1001, "/home/alice")
    values = {"DOCKER_CONFIG": "/srv/ci/.docker"}
    for name, required in (
        ("podman", "/srv/ci/.docker/config.json"),
        ("buildah", "/srv/ci/.docker/config.json"),
        ("skopeo", None),
    ):
        (order,) = containers_orders(Client(name, None, "4.3.1"), account, Environment("login", values))
        assert order.required == required, name


def test_the_runtime_file_when_no_session_set_xdg_runtime_dir(tmp_path: Path) -> None:
    """Rootless podman sets XDG_RUNTIME_DIR itself (cmd/podman/registry/config.go setXdgDirs; pkg/util
    GetRuntimeDir: /run/user/<uid> when it is the user's, else $TMPDIR/podman-run-<uid>), buildah likewise
    with containers-user-<uid>; skopeo does not: containers/image then reads /run/containers/<uid>/auth.json;
    root's clients always do (no XDG_RUNTIME_DIR: /run/containers/0/auth.json)."""
    alice = Account("alice", 1001, 1001, "/home/alice")
    root = Account("root", 0, 0, "/root")
    services = Environment("services", {"TMPDIR": str(tmp_path)})
    first = {}
    for name in ("podman", "buildah", "skopeo"):
        (order,) = containers_orders(Client(name, None, "4.3.1"), alice, services)
        first[name] = order.files[0].path
        (root_order,) = containers_orders(Client(name, None, "4.3.1"), root, services)
        assert root_order.files[0].path == "/run/containers/0/auth.json"
    assert first == {
        "podman": f"{tmp_path}/podman-run-1001/containers/auth.json",
        "buildah": f"{tmp_path}/containers-user-1001/containers/auth.json",
        "skopeo": "/run/containers/1001/auth.json",
    }


def test_docker_reads_one_file_by_docker_config() -> None:
    """docker/cli cli/config/config.go Dir(): $DOCKER_CONFIG, else ~/.docker; config.json in it only."""
    alice = Account("alice", 1001, 1001, "/home/alice")
    (order,) = docker_orders(Client("docker", None, "28.2.2"), alice, Environment("login", {}))
    assert [ref.path for ref in order.files] == ["/home/alice/.docker/config.json"]
    assert order.docker_version == (28, 2), "docker's loader by docker's version (docker_model)"
    (named,) = docker_orders(
        Client("docker", None, "28.2.2"), alice, Environment("login", {"DOCKER_CONFIG": "/srv/d"})
    )
    assert [ref.path for ref in named.files] == ["/srv/d/config.json"]
