"""The host-state corpus: every kind of instance the agent's integration tests build, in one list,
so that one test can run every action over each (test_agent_never_worse.py, and for the hosts with
other clients than the docker CLI, test_agent_never_worse_clients.py).

Each state is built on a fresh sandboxed instance (tests/agent/conftest.py: `instance`, root, alice
and bob in the docker group, carol not, the docker CLI the only client; or `instance_with` the
state's clients and users) from the pieces the other tests use; the test module that states each
one's expected outcome is named beside it. Who is asked whether they can pull is the state's
`pullers`: each a user's own client, in one kind of session (a login shell, or cron: crontab(5)
PATH=/usr/bin:/bin, no XDG_RUNTIME_DIR).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from ecr_fleet_auth.shared import contract
from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import HELPER_BIN
from tests.agent.on_instance import (
    CRON_PATH,
    REAL_HELPER,
    TOKEN_A,
    b64,
    config_path,
    containers_auth,
    home,
    install_package_managers,
    install_pass_standin,
    kubelet_can_pull,
    kubelet_running,
    parameters,
    publish_newer_release,
    reader_can_pull,
    reader_can_pull_with_authfile,
    reader_of,
    start_session,
    uid_of,
    user_file,
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
class Puller:
    """A user's own client, run by the user in one kind of session (`env` on top of a login's; `{uid}`
    in a value is the user's uid)."""

    user: str
    client: str = "docker"
    env: tuple[tuple[str, str], ...] = ()
    session: str = "login"

    def can_pull(self, world: sb.World, registry: str) -> bool:
        env = {name: value.format(uid=uid_of(world, self.user)) for name, value in self.env}
        return world.probe(self.user, home(self.user), registry, self.client, env).returncode == 0

    def __str__(self) -> str:
        return f"{self.user} ({self.client}, {self.session})"


def cron(user: str, client: str = "docker") -> Puller:
    return Puller(user, client, (("PATH", CRON_PATH), ("SHELL", "/bin/sh")), "cron")


# The docker CLI of every user of `instance` from a login shell, and root's and alice's from cron.
DOCKER_PULLERS = (
    *(Puller(user) for user in ("root", "alice", "bob", "carol")),
    cron("root"),
    cron("alice"),
)


@dataclass(frozen=True)
class HostState:
    name: str
    build: Callable[[sb.World], None]
    registries: tuple[str, ...] = (R,)
    # (file, mount point): readers holding a file by a bind mount in a mount namespace of their own
    readers: tuple[tuple[str, str], ...] = ()
    kubelet: bool = False  # a process named kubelet runs (readers.py: kubelet reads root's file)
    pullers: tuple[Puller, ...] = DOCKER_PULLERS
    # `instance_with`'s clients and users (localfleet/hosts/container_clients.py); None: `instance`'s
    clients: tuple[str, ...] | None = None
    users: tuple[tuple[str, bool], ...] | None = None
    managed: str = "auto"  # the Users parameter


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


# ---------------------------------------------------------------- hosts with other clients (issue 19's)

ALICE_ONLY = (("alice", False),)
SESSION = (("XDG_RUNTIME_DIR", "/run/user/{uid}"),)  # a login session's (pam_systemd)


def podman_docker(world: sb.World) -> None:  # test_agent_clients.py: podman as docker
    # root's podman logs in with docker's file (containers/image's getAuthFilePaths reads
    # ~/.docker/config.json after its own files); alice's file is JSON's null (nobody logged in).
    login(world, "root")
    user_file(world, "alice", "/home/alice/.docker/config.json", b"null")


def rootless_runtime_login(world: sb.World) -> None:  # test_agent_clients.py: the runtime file first
    runtime = start_session(world, "alice")
    user_file(world, "alice", f"{runtime}/containers/auth.json", containers_auth({R: TOKEN_A}))


def containers_config_login(world: sb.World) -> None:  # test_agent_clients.py: ~/.config/containers
    user_file(world, "alice", "/home/alice/.config/containers/auth.json", containers_auth({R: TOKEN_A}))


NAMED_AUTH_FILE = "/srv/registry/alice-auth.json"


def registry_auth_file(world: sb.World) -> None:  # test_agent_clients.py: REGISTRY_AUTH_FILE
    world.add_environment(f'REGISTRY_AUTH_FILE="{NAMED_AUTH_FILE}"\n')
    world.sandbox.run(
        ["install", "-d", "-m", "0700", "-o", "alice", "-g", "alice", "/srv/registry"]
    ).check_returncode()
    user_file(world, "alice", NAMED_AUTH_FILE, containers_auth({R: TOKEN_A}))


def docker_config_profile(world: sb.World) -> None:  # test_agent_clients.py: DOCKER_CONFIG for ci
    world.sandbox.write(
        "/etc/profile.d/docker.sh", 'if [ "$USER" = ci ]; then\n  export DOCKER_CONFIG=/srv/ci/.docker\nfi\n'
    )
    world.sandbox.run(["install", "-d", "-m", "0755", "-o", "ci", "-g", "ci", "/srv/ci"]).check_returncode()
    user_file(world, "ci", "/srv/ci/.docker/config.json", json.dumps({"auths": {R: auth()}}))
    login(world, "bob")


def rootless_users(world: sb.World) -> None:  # test_agent_clients.py: auto finds rootless users
    user_file(world, "dave", "/home/dave/.config/systemd/user/docker.service", "[Service]\n", 0o644)
    login(world, "dave")
    world.sandbox.run(
        ["install", "-d", "-m", "0700", "-o", "erin", "-g", "erin", "/home/erin/.local/share/containers"]
    ).check_returncode()
    world.sandbox.run(["chown", "erin:", "/home/erin/.local", "/home/erin/.local/share"]).check_returncode()
    user_file(world, "erin", "/home/erin/.config/containers/auth.json", containers_auth({R: TOKEN_A}))


def containers_user_without_aws(world: sb.World) -> None:  # test_agent_proven_first.py, podman
    for user in ("alice", "bob"):
        user_file(world, user, f"{home(user)}/.config/containers/auth.json", containers_auth({R: TOKEN_A}))
    world.sandbox.run(["rm", "-rf", f"{home('alice')}/.aws"]).check_returncode()


def containers_eusc(world: sb.World) -> None:  # test_agent_proven_first.py, podman
    user_file(world, "alice", "/home/alice/.config/containers/auth.json", containers_auth({EUSC: TOKEN_A}))


ALICE_CONTAINERS_CONFIG = "/home/alice/.config/containers/auth.json"
CLIENT_CORPUS = (
    HostState(
        "podman-docker",
        podman_docker,
        pullers=(Puller("root", "podman"), Puller("alice", "podman-docker"), cron("alice", "podman")),
        clients=("podman", "podman-docker"),
        users=ALICE_ONLY,
        managed="root,alice",
    ),
    HostState(
        "rootless-runtime-login",
        rootless_runtime_login,
        pullers=(
            Puller("alice", "podman", SESSION),
            Puller("alice", "skopeo", SESSION),
            cron("alice", "podman"),
            cron("alice", "skopeo"),
        ),
        clients=("podman", "skopeo"),
        users=ALICE_ONLY,
    ),
    HostState(
        "containers-config-login",
        containers_config_login,
        pullers=(Puller("alice", "skopeo"), cron("alice", "skopeo")),
        clients=("skopeo",),
        users=ALICE_ONLY,
    ),
    HostState(
        "registry-auth-file",
        registry_auth_file,
        pullers=tuple(
            Puller("alice", client, (("REGISTRY_AUTH_FILE", NAMED_AUTH_FILE),))
            for client in ("podman", "skopeo")
        ),
        clients=("podman", "skopeo"),
        users=ALICE_ONLY,
        managed="alice",
    ),
    HostState(
        "docker-config-profile",
        docker_config_profile,
        pullers=(Puller("ci", "docker", (("DOCKER_CONFIG", "/srv/ci/.docker"),)), Puller("bob"), cron("ci")),
        clients=("docker",),
        users=(("ci", True), ("bob", True)),
        managed="ci,bob",
    ),
    HostState(
        "nerdctl",
        logged_in,
        pullers=(Puller("alice", "nerdctl"), Puller("bob", "nerdctl"), cron("alice", "nerdctl")),
        clients=("nerdctl",),
    ),
    HostState(
        "rootless-users",
        rootless_users,
        pullers=(Puller("dave"), Puller("erin", "podman"), cron("erin", "podman"), Puller("carol")),
        clients=("docker", "podman"),
        users=(("alice", True), ("dave", False), ("erin", False), ("carol", False)),
    ),
    HostState(
        "auth-json-bind-mounted",
        containers_config_login,
        readers=((ALICE_CONTAINERS_CONFIG, "/ctr/auth.json"),),
        pullers=(Puller("alice", "skopeo"),),
        clients=("skopeo",),
        users=ALICE_ONLY,
    ),
    HostState(
        "containers-user-without-aws",
        containers_user_without_aws,
        pullers=(Puller("alice", "podman"), Puller("bob", "podman"), cron("alice", "skopeo")),
        clients=("podman", "skopeo"),
        users=(("alice", False), ("bob", False)),
    ),
    HostState(
        "containers-eusc",
        containers_eusc,
        registries=(EUSC,),
        pullers=(Puller("alice", "skopeo"), Puller("alice", "podman")),
        clients=("podman", "skopeo"),
        users=ALICE_ONLY,
    ),
    HostState(
        "kubelet-reads-root-podman-host",
        lambda world: login(world, "root"),
        kubelet=True,
        pullers=(Puller("root", "podman"), cron("root", "podman")),
        clients=("podman",),
        users=ALICE_ONLY,
    ),
)


# ---------------------------------------------------------------- never worse


def who_can_pull(world: sb.World, state: HostState, readers: dict[str, int]) -> set[str]:
    able = set()
    for registry in state.registries:
        able |= {f"{puller}@{registry}" for puller in state.pullers if puller.can_pull(world, registry)}
        for target, pid in readers.items():
            if target.endswith("/config.json"):
                pulls = reader_can_pull(world, pid, os.path.dirname(target), registry)
            else:
                pulls = reader_can_pull_with_authfile(world, pid, target, registry)
            if pulls:
                able.add(f"reader {target}@{registry}")
        if state.kubelet and kubelet_can_pull(world, config_path("root"), registry):
            able.add(f"kubelet@{registry}")
    return able


def assert_never_worse(world: sb.World, agent_script: str, state: HostState) -> set[str]:
    """check, then refresh, then helper on the state built on `world`: anyone who could pull before
    an action can after it. Returns who could pull before the first action."""
    state.build(world)
    extra = {"KeepUserDockerLogin": "true"} if state.name == "keep-user-login" else {}
    with contextlib.ExitStack() as stack:
        readers = {
            target: stack.enter_context(reader_of(world, source, target)) for source, target in state.readers
        }
        if state.kubelet:
            stack.enter_context(kubelet_running(world))
        before = first = who_can_pull(world, state, readers)
        for action in ("check", "refresh", "helper"):
            run = world.run_document(
                agent_script,
                parameters(
                    action,
                    registries=",".join(state.registries),
                    users=state.managed,
                    ReleaseBaseUrl=world.mirror_url(),
                    **extra,
                ),
            )
            assert len(run.stdout.splitlines()) == 1, run.stderr
            after = who_can_pull(world, state, readers)
            lost = sorted(before - after)
            assert not lost, (
                f"{action} on {state.name}: {lost} could pull before and cannot now\n{run.stdout}{run.stderr}"
            )
            before = after
    return first
