"""Every container client on the host can pull: issue 19's host states, run as SSM runs the document.

Each test says which clients its instance has (localfleet/hosts/container_clients.py): the docker CLI,
Debian 12's podman 4.3.1, skopeo 1.9.3, buildah 1.28.2 and podman-docker (containers/image 5.23.1), or
nerdctl's stand-in (not packaged: the real docker CLI behind nerdctl's name, since nerdctl reads
docker's file with docker/cli's own code). The registry, the AWS CLI against moto and Debian's credential
helper are real. Each test asserts the bytes, mode and owner of every file the clients read, and
whether each user's own client pulls with that user's session environment: `podman pull` (rootless
ones in a user namespace), `skopeo inspect docker://...`, `docker manifest inspect`.
"""

from __future__ import annotations

import json

import pytest

from localfleet.harnesses import single_instance as sb
from tests.agent.on_instance import (
    FRESH,
    TOKEN_A,
    FileState,
    assert_token_confined,
    auth_json,
    b64,
    client_login,
    file_state,
    file_states,
    parameters,
    pulls,
    start_session,
    uid_of,
    user_file,
    users_of,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A


# ---------------------------------------------------------------- podman as docker


def test_podman_dockers_docker_is_podman_and_the_host_is_served(instance_with, agent_script: str) -> None:
    """podman-docker's /usr/bin/docker is `exec /usr/bin/podman "$@"`: `docker --version` prints `podman
    version 4.3.1`. The agent reads that as podman, not docker 4.3, so docker's loader rules (an empty
    file corrupt before docker 20.10, `null` before 23.0) do not apply: `null` is a fine file for
    containers/image (readJSONFile: json.Unmarshal of null is no error), an empty one is not
    ("unexpected end of JSON input"), which podman meets third in its order (getAuthFilePaths) and which
    holds nothing to lose, so refresh mends it. The token is checked by the containers family's own login
    (containers/common pkg/auth/auth.go Login: GetCredentials, CheckAuth, then SetCredentials, which
    fails at its MkdirAll in a directory that cannot exist), never by podman login against a scratch
    config whose credHelpers it would trip over."""
    world = instance_with("podman", "podman-docker", users={"alice": False})
    root_config = user_file(world, "root", "/root/.docker/config.json", b"")
    alice_config = user_file(world, "alice", "/home/alice/.docker/config.json", b"null")
    cases = [("root", "podman", None), ("alice", "podman-docker", None), ("alice", "podman", None)]
    assert pulls(world, cases) == [False, False, False]

    check = world.run_document(agent_script, parameters("check", users="root,alice"))
    host = check.result["host"]
    assert (host["docker"], host["docker_runs"], host["clients"]) == (None, "podman", {"podman": "4.3.1"})
    assert check.result["reason"] == "config_corrupt", check.stdout
    assert "empty (containers/image: unexpected end of JSON input)" in check.result["message"]
    assert users_of(check)["root"]["registries"][R] == {"state": "none", "error": "config_corrupt"}
    assert users_of(check)["alice"]["registries"][R] == {"state": "none"}

    refresh = world.run_document(agent_script, parameters("refresh", users="root,alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert "accepted the token (podman login)" in refresh.stderr
    expected = b'{\n\t"auths": {\n\t\t"%s": {\n\t\t\t"auth": "%s"\n\t\t}\n\t}\n}' % (
        R.encode(),
        FRESH.encode(),
    )
    assert file_state(world, "/root/.docker/config.json") == FileState(expected, 0o600, 0)
    assert file_state(world, "/home/alice/.docker/config.json") == FileState(
        expected, 0o600, uid_of(world, "alice")
    )
    assert root_config.with_name("config.json.ecr-fleet-auth.bak").read_bytes() == b""
    assert alice_config.with_name("config.json.ecr-fleet-auth.bak").read_bytes() == b"null"
    assert pulls(world, cases) == [True, True, True]
    assert_token_confined(refresh, world, TOKEN_A)

    before = world.sandbox.changed_files()
    again = world.run_document(agent_script, parameters("refresh", users="root,alice"))
    check = world.run_document(agent_script, parameters("check", users="root,alice"))
    assert (again.result["outcome"], again.result["reason"]) == ("unchanged", "ok")
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "ok")
    after = world.sandbox.changed_files()
    assert {path: after[path] for path in before if "/.docker/" in path} == {
        path: before[path] for path in before if "/.docker/" in path
    }


# ---------------------------------------------------------------- rootless podman, skopeo


def test_a_stale_runtime_token_shadowing_the_fresh_one_is_named_and_refresh_replaces_it(
    instance_with, agent_script: str
) -> None:
    """containers/image getAuthFilePaths: $XDG_RUNTIME_DIR/containers/auth.json first (rootless podman
    sets XDG_RUNTIME_DIR to /run/user/<uid> itself, cmd/podman/registry/config.go setXdgDirs), then
    ~/.config/containers/auth.json, then ~/.docker/config.json; getCredentialsWithHomeDir returns the first
    file's credentials, never falling back (podman#1194). A token from an old `podman login` there shadows
    the fresh one the agent keeps in docker's file: check names it (token_shadowed), refresh writes the
    fresh one where podman and skopeo read first, helper names ecr-login there (findCredentialsInFile:
    credHelpers before auths)."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    runtime = start_session(world, "alice")
    session = {"XDG_RUNTIME_DIR": runtime}
    first = world.run_document(agent_script, parameters("refresh", users="alice"))
    assert first.result["outcome"] == "changed", first.stdout
    # alice logs in herself while the registry still takes an older token; then it moves on
    world.set_registry_password("an-older-token")
    client_login(world, "alice", "podman", "an-older-token", session)
    world.set_registry_password(TOKEN_A)
    runtime_file = f"{runtime}/containers/auth.json"
    stale = auth_json({R: {"auth": b64("AWS:an-older-token")}})
    assert file_state(world, runtime_file) == FileState(stale, 0o600, uid_of(world, "alice"))
    # in her session, and from cron (rootless podman then finds /run/user/<uid> itself)
    cases = [("alice", "podman", session), ("alice", "skopeo", session), ("alice", "podman", None)]
    assert pulls(world, cases) == [False, False, False]
    files = (runtime_file, "/home/alice/.docker/config.json")
    before = file_states(world, files)

    check = world.run_document(agent_script, parameters("check", users="auto"))

    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "token_shadowed"), check.stdout
    # both clients, in alice's sessions, read the runtime file first (cron's skopeo would read docker's)
    assert users_of(check)["alice"]["registries"][R] == {"state": "shadowed", "file": runtime_file}
    assert file_states(world, files) == before

    refresh = world.run_document(agent_script, parameters("refresh", users="auto"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert file_state(world, runtime_file) == FileState(
        auth_json({R: {"auth": FRESH}}), 0o600, uid_of(world, "alice")
    ), "what podman login writes, with the fresh token"
    assert file_state(world, runtime_file + ".ecr-fleet-auth.bak") == FileState(
        stale, 0o600, uid_of(world, "alice")
    )
    assert_token_confined(refresh, world, TOKEN_A)
    # /run is a tmpfs of its own (not in the overlay's list): there too, only the runtime file holds it
    run_files = [
        path for path in world.sandbox.path("/run").rglob("*") if path.is_file() and not path.is_symlink()
    ]
    holding = [
        path
        for path in run_files
        if FRESH.encode() in path.read_bytes() or TOKEN_A.encode() in path.read_bytes()
    ]
    assert [str(path).rsplit("/run/", 1)[1] for path in holding] == [
        f"user/{uid_of(world, 'alice')}/containers/auth.json"
    ]
    assert pulls(world, cases) == [True, True, True]
    check = world.run_document(agent_script, parameters("check", users="auto"))
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "ok"), check.stdout

    helper = world.run_document(agent_script, parameters("helper", users="auto"))

    assert helper.result["outcome"] == "changed", helper.stdout
    for path in files:
        assert json.loads(world.sandbox.path(path).read_bytes()) == {
            "auths": {},
            "credHelpers": {R: "ecr-login"},
        }
    assert pulls(world, cases) == [True, True, True], "through the credential helper"
    check = world.run_document(agent_script, parameters("check", users="auto"))
    assert users_of(check)["alice"]["registries"][R]["state"] == "helper", check.stdout


def test_a_stale_token_in_the_users_containers_config_is_shadowing_too(
    instance_with, agent_script: str
) -> None:
    """The same kind, another file: skopeo without a session reads /run/containers/<uid>/auth.json (it does
    not set XDG_RUNTIME_DIR, containers/image getPathToAuthWithOS), then ${XDG_CONFIG_HOME:-~/.config}/
    containers/auth.json: a stale token there answers before docker's fresh one."""
    world = instance_with("skopeo", users={"alice": False})
    world.run_document(agent_script, parameters("refresh", users="alice"))
    config = "/home/alice/.config/containers/auth.json"
    stale = auth_json({R: {"auth": b64("AWS:an-older-token")}})
    user_file(world, "alice", config, stale)
    assert pulls(world, [("alice", "skopeo", None)]) == [False]

    check = world.run_document(agent_script, parameters("check", users="auto"))
    assert check.result["reason"] == "token_shadowed", check.stdout
    assert users_of(check)["alice"]["registries"][R] == {
        "state": "shadowed",
        "file": "~/.config/containers/auth.json",
    }

    refresh = world.run_document(agent_script, parameters("refresh", users="auto"))
    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert file_state(world, config) == FileState(
        auth_json({R: {"auth": FRESH}}), 0o600, uid_of(world, "alice")
    )
    assert pulls(world, [("alice", "skopeo", None)]) == [True]


# ---------------------------------------------------------------- REGISTRY_AUTH_FILE and DOCKER_CONFIG


def test_registry_auth_file_from_etc_environment_is_where_the_containers_tools_read(
    instance_with, agent_script: str
) -> None:
    """containers/common GetDefaultAuthFile: REGISTRY_AUTH_FILE is podman's and skopeo's --authfile (skopeo
    cmd/skopeo/utils.go: its default), read first; podman refuses to pull while it does not exist
    (cmd/podman/images/pull.go os.Stat). /etc/environment is what pam_env gives every session and cron
    (pam_env.c). refresh creates it as podman login would (0600, containers/image's format), helper names
    the helper in it."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    named = "/srv/registry/alice-auth.json"
    world.add_environment(f'REGISTRY_AUTH_FILE="{named}"\n')
    world.sandbox.run(
        ["install", "-d", "-m", "0700", "-o", "alice", "-g", "alice", "/srv/registry"]
    ).check_returncode()
    env = {"REGISTRY_AUTH_FILE": named}
    cases = [("alice", "podman", env), ("alice", "skopeo", env)]
    assert pulls(world, cases) == [False, False]
    refused = world.probe("alice", "/home/alice", R, "podman", env)
    assert b"checking authfile" in refused.stderr or b"no such file" in refused.stderr, refused.stderr

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    uid = uid_of(world, "alice")
    assert file_state(world, named) == FileState(auth_json({R: {"auth": FRESH}}), 0o600, uid)
    assert file_state(world, "/home/alice/.docker/config.json") is None, "no client of hers reads it first"
    assert users_of(refresh)["alice"]["registries"][R]["file"] == named
    assert pulls(world, cases) == [True, True]

    helper = world.run_document(agent_script, parameters("helper", users="alice"))
    assert helper.result["outcome"] == "changed", helper.stdout
    assert json.loads(world.sandbox.path(named).read_bytes()) == {
        "auths": {},
        "credHelpers": {R: "ecr-login"},
    }
    assert pulls(world, cases) == [True, True]


def test_docker_config_for_podmans_user_units_is_podmans_authfile(instance_with, agent_script: str) -> None:
    """The same kind from another source: environment.d(5) sets DOCKER_CONFIG for alice's user units only
    (~/.config/environment.d/*.conf, ${HOME} expanded). podman takes $DOCKER_CONFIG/config.json as its
    --authfile (GetDefaultAuthFile), her login shells do not have it: both files are where a podman of hers
    reads first, and both get the token."""
    world = instance_with("podman", users={"alice": False})
    user_file(
        world,
        "alice",
        "/home/alice/.config/environment.d/50-docker.conf",
        "DOCKER_CONFIG=${HOME}/.config/units-docker\n",
        0o644,
    )
    # a Quadlet unit of hers (podman-systemd.unit(5)): she runs podman from user units
    user_file(world, "alice", "/home/alice/.config/containers/systemd/app.container", "[Container]\n", 0o644)
    units = {"DOCKER_CONFIG": "/home/alice/.config/units-docker"}
    cases = [("alice", "podman", units), ("alice", "podman", None)]
    assert pulls(world, cases) == [False, False]

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    uid = uid_of(world, "alice")
    docker_format = b'{\n\t"auths": {\n\t\t"%s": {\n\t\t\t"auth": "%s"\n\t\t}\n\t}\n}\n' % (
        R.encode(),
        FRESH.encode(),
    )
    assert file_state(world, "/home/alice/.config/units-docker/config.json") == FileState(
        docker_format, 0o600, uid
    )
    assert file_state(world, "/home/alice/.docker/config.json") == FileState(docker_format, 0o600, uid)
    assert pulls(world, cases) == [True, True]


def test_docker_config_from_a_profile_script_for_one_user(instance_with, agent_script: str) -> None:
    """docker/cli cli/config/config.go Dir(): docker reads and writes only $DOCKER_CONFIG/config.json. A
    profile script exporting it for user ci (a condition on $USER the agent evaluates) moves ci's docker
    to /srv/ci/.docker: that file is refreshed, ~ci/.docker is never created, and check does not call ci
    healthy before. An assignment computed by shell code is what the agent cannot know: reported
    (environment_unknown), the default kept."""
    world = instance_with("docker", users={"ci": True, "bob": True})
    world.sandbox.write(
        "/etc/profile.d/docker.sh",
        'if [ "$USER" = ci ]; then\n  export DOCKER_CONFIG=/srv/ci/.docker\nfi\n'
        '[ "$USER" = bob ] && export DOCKER_CONFIG=$(cat /etc/bob-docker-dir)\n',
    )
    world.sandbox.run(["install", "-d", "-m", "0755", "-o", "ci", "-g", "ci", "/srv/ci"]).check_returncode()
    ci_env = {"DOCKER_CONFIG": "/srv/ci/.docker"}

    check = world.run_document(agent_script, parameters("check", users="ci,bob"))
    assert users_of(check)["ci"]["registries"][R] == {"state": "none", "file": "/srv/ci/.docker/config.json"}
    assert check.result["reason"] == "environment_unknown", check.stdout
    assert "DOCKER_CONFIG is set in /etc/profile.d/docker.sh:4" in check.result["message"]

    refresh = world.run_document(agent_script, parameters("refresh", users="ci,bob"))

    assert refresh.result["outcome"] == "changed", refresh.stdout
    uid = uid_of(world, "ci")
    config = file_state(world, "/srv/ci/.docker/config.json")
    assert config is not None and (config.mode, config.uid) == (0o600, uid)
    assert json.loads(config.content) == {"auths": {R: {"auth": FRESH}}}
    assert world.sandbox.path("/srv/ci/.docker").stat().st_mode & 0o777 == 0o700
    assert not world.sandbox.path("/home/ci/.docker").exists()
    assert pulls(world, [("ci", "docker", ci_env), ("bob", "docker", None)]) == [True, True]

    # ci's cron jobs do not run profile scripts: with a crontab, ~ci/.docker is read too, and served
    world.sandbox.write("/var/spool/cron/crontabs/ci", "0 * * * * docker pull app\n", 0o600)
    again = world.run_document(agent_script, parameters("refresh", users="ci"))
    assert again.result["outcome"] == "changed", again.stdout
    assert json.loads(world.sandbox.path("/home/ci/.docker/config.json").read_bytes()) == {
        "auths": {R: {"auth": FRESH}}
    }
    assert pulls(world, [("ci", "docker", None), ("ci", "docker", ci_env)]) == [True, True]


# ---------------------------------------------------------------- rootless users, nerdctl


def test_auto_includes_users_of_rootless_clients(instance_with, agent_script: str) -> None:
    """Rootless docker's user unit (dockerd-rootless-setuptool.sh: ~/.config/systemd/user/docker.service)
    and rootless podman's storage (~/.local/share/containers) mark users who run clients outside the
    docker group; their clients read their own files (docker/cli Dir(); containers/image
    getAuthFilePaths). A user with neither is not managed."""
    world = instance_with(
        "docker", "podman", users={"alice": True, "dave": False, "erin": False, "carol": False}
    )
    user_file(world, "dave", "/home/dave/.config/systemd/user/docker.service", "[Service]\n", 0o644)
    world.sandbox.run(
        ["install", "-d", "-m", "0700", "-o", "erin", "-g", "erin", "/home/erin/.local/share/containers"]
    ).check_returncode()
    world.sandbox.run(["chown", "erin:", "/home/erin/.local", "/home/erin/.local/share"]).check_returncode()

    refresh = world.run_document(agent_script, parameters("refresh"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert [entry["user"] for entry in refresh.result["users"]] == ["root", "alice", "dave", "erin"]
    assert pulls(world, [("dave", "docker", None), ("erin", "podman", None), ("carol", "docker", None)]) == [
        True,
        True,
        False,
    ]
    assert not world.sandbox.path("/home/carol/.docker").exists()


def test_nerdctl_without_docker_is_served_not_refused(instance_with, agent_script: str) -> None:
    """containerd/nerdctl docs/registry.md: nerdctl reads $DOCKER_CONFIG/config.json (default ~/.docker)
    with docker/cli's own loader, credHelpers included. Its stand-in here is the real docker CLI under
    nerdctl's name (nerdctl is not packaged for Debian). The token is checked by nerdctl's login
    (pkg/cmd/login/login.go: a failed lookup first is tolerated; storing fails after the registry
    accepted). Only a host with no client at all is docker_missing."""
    world = instance_with("nerdctl")
    cases = [("root", "nerdctl", None), ("alice", "nerdctl", None)]

    refresh = world.run_document(agent_script, parameters("refresh", users="root,alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert refresh.result["host"]["clients"] == {"nerdctl": "2.1.3"}
    assert "accepted the token (nerdctl login)" in refresh.stderr
    assert pulls(world, cases) == [True, True]
    helper = world.run_document(agent_script, parameters("helper", users="root,alice"))
    assert helper.result["outcome"] == "changed", helper.stdout
    assert json.loads(world.sandbox.path("/home/alice/.docker/config.json").read_bytes())["credHelpers"] == {
        R: "ecr-login"
    }
    assert pulls(world, cases) == [True, True]

    bare = instance_with()
    for action in ("refresh", "helper"):
        run = bare.run_document(agent_script, parameters(action))
        assert (run.result["outcome"], run.result["reason"]) == ("failed", "docker_missing"), run.stdout


# ---------------------------------------------------------------- dual-stack


def test_a_dual_stack_registry_gets_its_token_through_the_dual_stack_api(
    instance_with, agent_script: str
) -> None:
    """ECR User Guide "Making requests to Amazon ECR registries": from IPv6 networks the registry is
    <registry-id>.dkr-ecr.<region>.on.aws and the API ecr.<region>.api.aws, which the AWS CLI chooses
    with AWS_USE_DUALSTACK_ENDPOINT=true (AWS SDKs and Tools reference, "Dual-stack and FIPS endpoints").
    The credential helper knows these names from 0.10.0 (ecr-login/api/client.go ecrPattern): Debian's
    0.6.0 answers "credentials not found" for them, so helper leaves them to refresh (helper_too_old)."""
    world = instance_with("docker")
    dual = sb.REGISTRY_A_DUALSTACK
    env = {k: v for k, v in world.instance_env().items() if k != "AWS_ENDPOINT_URL"}  # the real endpoints
    seen = world.proxy_log.stat().st_size

    refresh = world.run_document(agent_script, parameters("refresh", registries=dual, users="alice"), env=env)

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), (
        refresh.stdout + refresh.stderr
    )
    assert world.proxy_log.read_bytes()[seen:].decode().splitlines() == ["CONNECT ecr.eu-west-1.api.aws:443"]
    assert world.probe("alice", "/home/alice", dual).returncode == 0
    before = file_state(world, "/home/alice/.docker/config.json")

    helper = world.run_document(agent_script, parameters("helper", registries=dual, users="alice"), env=env)

    assert (helper.result["outcome"], helper.result["reason"]) == ("failed", "helper_too_old"), helper.stdout
    assert f"{dual} needs docker-credential-ecr-login 0.10.0+, found 0.6.0" in helper.result["message"]
    assert file_state(world, "/home/alice/.docker/config.json") == before
    assert world.probe("alice", "/home/alice", dual).returncode == 0
