"""The host-state corpus: every kind of instance the agent's integration tests build, in one list,
so that one test can run every action over each (test_agent_never_worse.py).

Each state is built on a fresh sandboxed instance (tests/agent/conftest.py `instance`: root, alice
and bob in the docker group, carol not) from the pieces the other tests use; the test module that
states each one's expected outcome is named beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ecr_fleet_auth import contract
from localfleet.deployment import single_instance as sb
from localfleet.hosts.overlay_sandbox import HELPER_BIN
from tests.agent.on_instance import (
    REAL_HELPER,
    TOKEN_A,
    b64,
    config_path,
    home,
    install_package_managers,
    install_pass_standin,
    publish_newer_release,
    without_helper,
    write_config,
)

R = sb.REGISTRY_A
EUSC = sb.REGISTRY_EUSC
OLD_TOKEN = sb.moto_token(sb.ACCOUNT_B)
GHCR = {"auth": b64("gh-user:gh-token")}
RELEASE_BIN = "/usr/local/bin/docker-credential-ecr-login"


def auth(token: str = TOKEN_A) -> dict[str, str]:
    return {"auth": b64(f"AWS:{token}")}


def login(world: sb.World, user: str, registry: str = R, token: str = TOKEN_A, mode: int = 0o600) -> None:
    write_config(world, user, json.dumps({"auths": {registry: auth(token)}}, indent=2), mode=mode)


@dataclass(frozen=True)
class HostState:
    name: str
    build: Callable[[sb.World], None]
    registries: tuple[str, ...] = (R,)
    # (file, mount point): readers holding a file by a bind mount in a mount namespace of their own
    readers: tuple[tuple[str, str], ...] = ()
    kubelet: bool = False  # a process named kubelet runs (readers.py: kubelet reads root's file)


def nothing(world: sb.World) -> None:
    pass


def logged_in(world: sb.World) -> None:  # test_agent_integration.py: refresh, rotated passwords
    login(world, "alice")
    login(world, "bob", token=OLD_TOKEN)


def expired_auth_and_others(world: sb.World) -> None:  # test_agent_integration.py: helper keeps the rest
    config = {"auths": {R: auth(OLD_TOKEN), "ghcr.io": GHCR}, "credHelpers": {"gcr.io": "gcloud"}}
    write_config(world, "alice", json.dumps(dict(config, detachKeys="ctrl-e,e")), mode=0o640)


def corrupt(world: sb.World) -> None:  # test_agent_host_states.py: a config docker cannot load
    features = {"auths": {"ghcr.io": GHCR, R: auth()}, "features": {"buildkit": True}}
    write_config(world, "alice", json.dumps(features))
    login(world, "bob")


def stale_beside_helper(world: sb.World) -> None:  # test_agent_integration.py: check's states
    write_config(world, "bob", json.dumps({"auths": {R: auth(OLD_TOKEN)}, "credHelpers": {R: "ecr-login"}}))
    login(world, "alice")


def helper_root_only(world: sb.World) -> None:  # test_agent_acceptance_states.py: 0700 helper
    world.sandbox.run(["chmod", "0700", HELPER_BIN]).check_returncode()
    write_config(world, "alice", json.dumps({"credHelpers": {R: "ecr-login"}}))
    login(world, "bob")


def helper_off_crons_path(world: sb.World) -> None:  # test_agent_proven_first.py: /usr/local/bin only
    world.sandbox.run(["mv", HELPER_BIN, RELEASE_BIN]).check_returncode()
    write_config(world, "alice", json.dumps({"credHelpers": {R: "ecr-login"}}))
    login(world, "root")


def helper_missing(world: sb.World) -> None:  # test_agent_integration.py: package manager installs
    without_helper(world)
    install_package_managers(world)
    login(world, "alice")


def helper_unreachable(world: sb.World) -> None:  # test_agent_offline.py: nothing to install from
    without_helper(world)
    install_package_managers(world, mirror="http://127.0.0.1:9")  # discard port: refused
    login(world, "alice")


def pass_store(world: sb.World) -> None:  # test_agent_host_states.py: a credsStore
    install_pass_standin(world)
    write_config(world, "alice", json.dumps({"auths": {}, "credsStore": "pass"}))
    login(world, "bob")


def readable_credentials(world: sb.World) -> None:  # test_agent_host_states.py: 0644 with secrets
    login(world, "alice", mode=0o644)


def symlinked(world: sb.World) -> None:  # test_agent_host_states.py: config_unsafe
    world.sandbox.write("/srv/alice-config.json", json.dumps({"auths": {R: auth()}}), 0o644)
    world.sandbox.run(["mkdir", "-p", f"{home('alice')}/.docker"]).check_returncode()
    world.sandbox.run(["ln", "-s", "/srv/alice-config.json", config_path("alice")]).check_returncode()
    world.sandbox.run(["chown", "-hR", "alice:", f"{home('alice')}/.docker"]).check_returncode()


def hard_linked(world: sb.World) -> None:  # test_agent_live_files.py
    login(world, "root", token=OLD_TOKEN)
    world.sandbox.run(["ln", config_path("root"), "/srv/root-config.json"]).check_returncode()


def user_without_aws(world: sb.World) -> None:  # test_agent_proven_first.py: helper_verify_failed
    login(world, "alice")
    login(world, "bob")
    world.sandbox.run(["rm", "-rf", f"{home('alice')}/.aws"]).check_returncode()


def eusc_without_release(world: sb.World) -> None:  # test_agent_proven_first.py: helper_too_old
    login(world, "alice", EUSC)


def eusc_with_release(world: sb.World) -> None:  # test_agent_proven_first.py: the release replaces
    publish_newer_release(world)
    login(world, "alice", EUSC)
    write_config(world, "bob", json.dumps({"auths": {EUSC: auth(), R: auth()}}))


def eusc_lying_mirror(world: sb.World) -> None:  # test_agent_proven_first.py: 0.6.0 under 0.12.0
    world.publish_release(contract.DEFAULT_HELPER_VERSION, "amd64", REAL_HELPER)
    login(world, "alice", EUSC)


def keep_user_login(world: sb.World) -> None:  # test_agent_proven_first.py: KeepUserDockerLogin
    publish_newer_release(world)
    login(world, "alice")


CORPUS = (
    HostState("fresh", nothing),
    HostState("logged-in", logged_in),
    HostState("expired-auth-and-others", expired_auth_and_others),
    HostState("corrupt", corrupt),
    HostState("stale-beside-helper", stale_beside_helper),
    HostState("helper-root-only", helper_root_only),
    HostState("helper-off-crons-path", helper_off_crons_path),
    HostState("helper-missing", helper_missing),
    HostState("helper-unreachable", helper_unreachable),
    HostState("pass-store", pass_store),
    HostState("readable-credentials", readable_credentials),
    HostState("symlinked", symlinked),
    HostState("bind-mounted", logged_in, readers=((config_path("alice"), "/ctr/config.json"),)),
    HostState("bind-mounted-stale", hard_linked, readers=((config_path("root"), "/ctr/config.json"),)),
    HostState("kubelet-reads-root", lambda world: login(world, "root"), kubelet=True),
    HostState("user-without-aws", user_without_aws),
    HostState("eusc-without-release", eusc_without_release, registries=(EUSC,)),
    HostState("eusc-with-release", eusc_with_release, registries=(EUSC, R)),
    HostState("eusc-lying-mirror", eusc_lying_mirror, registries=(EUSC,)),
    HostState("keep-user-login", keep_user_login),
)
