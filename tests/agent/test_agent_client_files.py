"""Files the containers clients read first, in the host states acceptance found (issue 19, second round),
run as SSM runs the document with Debian 12's podman 4.3.1 and skopeo 1.9.3 (containers/image 5.23.1),
the real registry, the AWS CLI against moto and the real credential helper.

Each test asserts the bytes, mode and owner of the files the clients read and whether each user's own
client pulls afterwards, in the session environment named."""

from __future__ import annotations

import base64
import json
import time

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
    parameters,
    pulls,
    start_session,
    uid_of,
    user_file,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A


def entry_of(run: sb.AgentRun, user: str) -> dict[str, object]:
    (entry,) = [entry for entry in run.result["users"] if entry["user"] == user]  # type: ignore[union-attr]
    registries = entry["registries"]
    assert isinstance(registries, dict)
    return registries[R]  # type: ignore[no-any-return]


# ------------------------------ F3: an empty file in the read order


@pytest.mark.parametrize("where", ["runtime", "config"])
def test_an_empty_file_in_the_containers_read_order_is_mended_by_refresh_and_helper(
    instance_with, agent_script: str, where: str
) -> None:
    """containers/image pkg/docker/config/config.go: getCredentialsWithHomeDir walks getAuthFilePaths
    ($XDG_RUNTIME_DIR/containers/auth.json, ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, docker's
    file, ~/.dockercfg) and returns the first error findAuthentication gives; readJSONFile's
    json.Unmarshal of an empty file is "unexpected end of JSON input", so an empty file anywhere before
    the one holding the token stops every pull of podman and skopeo, whatever the later files hold.
    The file holds nothing to lose: refresh writes the login there (what podman login would write) and
    helper names ecr-login there, so both clients pull; `refresh` never reports ok while a client of
    the user cannot load its file, and `check` agrees with it afterwards. The whole kind: the file first
    in the order (the session's runtime file) or after a missing one (the persistent config)."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    session = {"XDG_RUNTIME_DIR": start_session(world, "alice")}
    path = {
        "runtime": session["XDG_RUNTIME_DIR"] + "/containers/auth.json",
        "config": "/home/alice/.config/containers/auth.json",
    }[where]
    world.run_document(agent_script, parameters("refresh", users="alice"))
    user_file(world, "alice", path, b"")
    cases = [("alice", "podman", session), ("alice", "skopeo", session)]
    assert pulls(world, cases) == [False, False]
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert check.result["reason"] == "config_corrupt", check.stdout

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    alice = uid_of(world, "alice")
    written = file_state(world, path)
    assert written is not None and (written.mode, written.uid) == (0o600, alice)
    assert json.loads(written.content) == {"auths": {R: {"auth": FRESH}}}
    assert file_state(world, path + ".ecr-fleet-auth.bak") == FileState(b"", 0o600, alice)
    assert pulls(world, cases) == [True, True]
    assert_token_confined(refresh, world, TOKEN_A, ("/.docker/config.json", "/containers/auth.json"))
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "ok"), check.stdout

    user_file(world, "alice", path, b"")
    helper = world.run_document(agent_script, parameters("helper", users="alice"))

    assert (helper.result["outcome"], helper.result["reason"]) == ("changed", "ok"), helper.stdout
    written = file_state(world, path)
    assert written is not None and (written.mode, written.uid) == (0o600, alice)
    assert json.loads(written.content) == {"credHelpers": {R: "ecr-login"}}  # nothing else was there
    assert pulls(world, cases) == [True, True], "through the credential helper"
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["reason"], entry_of(check, "alice")["state"]) == ("ok", "helper"), check.stdout


# ------------------------------ F1: podman's runtime directory in /tmp


def older_login(world: sb.World, user: str, env: dict[str, str] | None) -> None:
    """The user's own `podman login` while the registry still took an older token (then it moves on)."""
    world.set_registry_password("an-older-token")
    client_login(world, user, "podman", "an-older-token", env)
    world.set_registry_password(TOKEN_A)


@pytest.mark.parametrize("tmpdir", [None, "/home/alice/tmp"])
def test_podmans_runtime_directory_under_tmpdir_is_read_first_without_a_session(
    instance_with, agent_script: str, tmpdir: str | None
) -> None:
    """In a session pam_systemd did not open (`sudo -iu`, `su -`), XDG_RUNTIME_DIR is unset and
    /run/user/<uid> may not exist; rootless podman then sets XDG_RUNTIME_DIR itself (cmd/podman/registry
    /config.go setXdgDirs) to what pkg/util GetRuntimeDir gives: /run/user/<uid> only when it is the
    user's directory, else filepath.Join(os.TempDir(), "podman-run-<uid>") (containers/storage
    pkg/homedir GetRuntimeDir has the same fallback; os.TempDir() is $TMPDIR, else /tmp). containers/
    image getAuthFilePaths reads $XDG_RUNTIME_DIR/containers/auth.json first, so a token from an old
    `podman login` there shadows the fresh one in docker's file: check names it, refresh replaces it,
    helper names ecr-login there. The kind: /tmp, and a TMPDIR the user's profile exports."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    env = {"TMPDIR": tmpdir} if tmpdir else None
    if tmpdir:
        user_file(world, "alice", "/home/alice/.profile", 'export TMPDIR="$HOME/tmp"\n', 0o644)
        world.sandbox.run(
            ["install", "-d", "-m", "0700", "-o", "alice", "-g", "alice", tmpdir]
        ).check_returncode()
    first = world.run_document(agent_script, parameters("refresh", users="alice"))
    assert first.result["outcome"] == "changed", first.stdout
    assert not world.sandbox.path(f"/run/user/{uid_of(world, 'alice')}").exists()
    older_login(world, "alice", env)
    runtime_file = f"{tmpdir or '/tmp'}/podman-run-{uid_of(world, 'alice')}/containers/auth.json"
    stale = auth_json({R: {"auth": b64("AWS:an-older-token")}})
    assert file_state(world, runtime_file) == FileState(stale, 0o600, uid_of(world, "alice"))
    cases = [("alice", "podman", env), ("alice", "skopeo", env)]
    assert pulls(world, cases) == [False, True], "podman reads its runtime file, skopeo does not"

    check = world.run_document(agent_script, parameters("check", users="alice"))

    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "token_shadowed"), check.stdout
    assert entry_of(check, "alice")["state"] == "shadowed", check.stdout
    assert runtime_file in check.result["message"]
    assert file_state(world, runtime_file) == FileState(stale, 0o600, uid_of(world, "alice"))

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert file_state(world, runtime_file) == FileState(
        auth_json({R: {"auth": FRESH}}), 0o600, uid_of(world, "alice")
    )
    assert pulls(world, cases) == [True, True]
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "ok"), check.stdout

    helper = world.run_document(agent_script, parameters("helper", users="alice"))

    assert helper.result["outcome"] == "changed", helper.stdout
    assert json.loads(world.sandbox.path(runtime_file).read_bytes()) == {
        "auths": {},
        "credHelpers": {R: "ecr-login"},
    }
    assert pulls(world, cases) == [True, True], "through the credential helper"


# ------------------------------ F2: the user's own podman login after helper


def test_the_users_own_podman_login_after_helper_is_stored_through_it_or_reported(
    instance_with, agent_script: str
) -> None:
    """containers/common pkg/auth/auth.go Login writes GetDefaultAuthFile's file, else the primary one
    (containers/image getPathToAuth: $XDG_RUNTIME_DIR/containers/auth.json), through SetCredentials:
    where that file's credHelpers names the registry it calls setAuthToCredHelper, and ecr-login's
    `store` answers "not implemented" (amazon-ecr-credential-helper ecr-login/ecr.go Add) - the login
    fails as docker's does, and nothing shadows the helper. So `helper` names ecr-login in the runtime
    file too when the user has that directory. A runtime directory made later (a new session: a tmpfs)
    has no such file: the login there succeeds and its token is read before the helper
    (getCredentialsWithHomeDir: the first file with credentials wins); `check` reports it
    (token_shadowed), `refresh` replaces it, `helper` names ecr-login there again."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    runtime = start_session(world, "alice")
    session = {"XDG_RUNTIME_DIR": runtime}
    runtime_file = f"{runtime}/containers/auth.json"
    cases = [("alice", "podman", session), ("alice", "skopeo", session)]

    helper = world.run_document(agent_script, parameters("helper", users="alice"))

    assert helper.result["outcome"] == "changed", helper.stdout
    named = {"credHelpers": {R: "ecr-login"}}
    for path in (runtime_file, "/home/alice/.docker/config.json"):
        written = file_state(world, path)
        assert written is not None and (written.mode, written.uid) == (0o600, uid_of(world, "alice"))
        assert json.loads(written.content) == named, path
    assert pulls(world, cases) == [True, True]
    login = world.sandbox.run(
        ["podman", "login", "--username", "AWS", "--password-stdin", R],
        env=world.user_env("alice", "/home/alice", session),
        user="alice",
        stdin=TOKEN_A.encode(),
        pivot=True,
    )
    assert login.returncode != 0 and b"not implemented" in login.stderr, login.stderr
    assert json.loads(world.sandbox.path(runtime_file).read_bytes()) == named

    # a new session: its runtime directory is new and empty
    world.sandbox.run(["rm", "-rf", runtime]).check_returncode()
    start_session(world, "alice")
    older_login(world, "alice", session)
    assert pulls(world, cases) == [False, False]

    check = world.run_document(agent_script, parameters("check", users="alice"))

    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "token_shadowed"), check.stdout
    assert entry_of(check, "alice") == {"state": "shadowed", "file": runtime_file}, check.stdout

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert pulls(world, cases) == [True, True]
    helper = world.run_document(agent_script, parameters("helper", users="alice"))
    assert helper.result["outcome"] == "changed", helper.stdout
    assert json.loads(world.sandbox.path(runtime_file).read_bytes()) == {"auths": {}, **named}
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["reason"], entry_of(check, "alice")["state"]) == ("ok", "helper"), check.stdout


# ------------------------------ F4: a file several users read keeps its mode


@pytest.mark.parametrize(
    "case",
    [
        (("docker",), "DOCKER_CONFIG", "/opt/shared/docker/config.json", "docker"),
        (("podman", "skopeo"), "REGISTRY_AUTH_FILE", "/etc/containers/auth.json", "skopeo"),
    ],
)
def test_a_file_other_users_read_keeps_its_mode(
    instance_with, agent_script: str, case: tuple[tuple[str, ...], str, str, str]
) -> None:
    """/etc/environment (pam_env) gives every user's sessions the same DOCKER_CONFIG (docker/cli
    cli/config/config.go Dir: only $DOCKER_CONFIG/config.json is read) or REGISTRY_AUTH_FILE
    (containers/common pkg/auth GetDefaultAuthFile: skopeo's and podman's --authfile default): one
    root-owned 0644 file with a working token, from which alice pulls too. Making it owner-only
    (0600, root's) would cut alice off: a file other users read keeps its mode; that its credentials
    are readable by them is reported (secret_readable), in every action, and alice still pulls."""
    clients, variable, path, client = case
    world = instance_with(*clients, users={"alice": client == "docker"})
    value = path.rsplit("/", 1)[0] if variable == "DOCKER_CONFIG" else path
    world.sandbox.write("/etc/environment", f"{variable}={value}\n")
    world.sandbox.run(["install", "-d", "-m", "0755", path.rsplit("/", 1)[0]]).check_returncode()
    shared = auth_json({R: {"auth": FRESH}})
    world.sandbox.write(path, shared, 0o644)
    env = {variable: value}
    cases = [("root", client, env), ("alice", client, env)]
    assert pulls(world, cases) == [True, True]

    for action in ("check", "refresh", "helper"):
        run = world.run_document(agent_script, parameters(action, users="root,alice"))
        state = file_state(world, path)
        assert state is not None and (state.mode, state.uid) == (0o644, 0), (action, run.stdout)
        if action != "helper":  # (helper leaves no token in it)
            assert f"{path} is 0644 and read by alice too: mode kept" in run.stderr, (action, run.stderr)
        assert "now 0600" not in run.result["message"], run.stdout
        assert pulls(world, cases) == [True, True], action


# ------------------------------ F5: a token past its own expiry


def expired_ecr_token() -> str:
    """An ECR token as GetAuthorizationToken issues it: the password of AWS:<password> is base64 of JSON
    with "payload", "datakey", "version", "type" and "expiration" (epoch seconds); this one expired an
    hour ago (amazon-ecr-credential-helper and the AWS CLI pass it on unchanged)."""
    document = {"payload": "p" * 40, "datakey": "d" * 40, "version": "2", "type": "DATA_KEY"}
    document["expiration"] = int(time.time()) - 3600  # type: ignore[assignment]
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    "case",
    [
        (("docker",), "/home/alice/.docker/config.json", "auths", "docker"),
        (("skopeo",), "/home/alice/.dockercfg", "legacy", "skopeo"),
        (("skopeo",), "/home/alice/.config/containers/auth.json", "namespace", "skopeo"),
    ],
)
def test_a_token_past_its_own_expiry_is_reported_and_replaced(
    instance_with, agent_script: str, case: tuple[tuple[str, ...], str, str, str]
) -> None:
    """A token the agent did not write (no record of it) still says when it expires: check reports
    logged_in with that expires_at, expired, and reason token_expired, not ok; refresh writes the fresh
    token where the client reads first. The kind, in each family's places: docker's auths (docker/cli
    configfile GetAuthConfig), ~/.dockercfg (containers/image getAuthFilePaths' last, legacy format),
    and a registry/namespace key, read before the registry's own for images below it (containers/image
    findCredentialsInFile, containers-auth.json(5))."""
    clients, path, content, client = case
    world = instance_with(*clients, users={"alice": client == "docker"})
    auth = b64(f"AWS:{expired_ecr_token()}")
    document: object = {
        "auths": {"auths": {R: {"auth": auth}}},
        "legacy": {R: {"auth": auth}},  # ~/.dockercfg: the auths map itself
        "namespace": {"auths": {f"{R}/probe": {"auth": auth}}},
    }[content]
    user_file(world, "alice", path, json.dumps(document))
    cases = [("alice", client, None)]
    assert pulls(world, cases) == [False]

    check = world.run_document(agent_script, parameters("check", users="alice"))

    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "token_expired"), check.stdout
    entry = entry_of(check, "alice")
    assert (entry["state"], entry["expired"]) == ("logged_in", True), check.stdout
    assert str(entry["expires_at"]).endswith("Z")

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert pulls(world, cases) == [True]
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "ok"), check.stdout


# ------------------------------ F9: the file the user named does not exist


def test_a_missing_file_the_user_named_is_reported_and_refresh_creates_it(
    instance_with, agent_script: str
) -> None:
    """podman (cmd/podman/images/pull.go) and buildah stat their --authfile before anything else
    (containers/common pkg/auth CheckAuthFile: "checking authfile: stat ...: no such file or
    directory"), and its default is REGISTRY_AUTH_FILE (GetDefaultAuthFile): while the file the user
    named does not exist, podman pulls nothing, not even anonymously. check names it (config_corrupt,
    with the file), refresh creates it as podman login would, and podman pulls."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    user_file(world, "alice", "/home/alice/.bashrc", "export REGISTRY_AUTH_FILE=$HOME/auth/reg.json\n", 0o644)
    named = "/home/alice/auth/reg.json"
    env = {"REGISTRY_AUTH_FILE": named}
    cases = [("alice", "podman", env), ("alice", "skopeo", env)]
    assert pulls(world, cases) == [False, False]

    check = world.run_document(agent_script, parameters("check", users="alice"))

    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "config_corrupt"), check.stdout
    assert f"podman cannot pull: {named}, the file the user named, does not exist" in check.result["message"]
    assert entry_of(check, "alice")["error"] == "config_corrupt"
    assert file_state(world, named) is None

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert file_state(world, named) == FileState(
        auth_json({R: {"auth": FRESH}}), 0o600, uid_of(world, "alice")
    )
    assert pulls(world, cases) == [True, True]
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "ok"), check.stdout


# ------------------------------ F6: what ~/.bashrc sources, a case on the user


def test_docker_config_from_a_sourced_file_and_a_case_on_the_user_is_where_refresh_writes(
    instance_with, agent_script: str
) -> None:
    """docker/cli cli/config/config.go Dir(): only $DOCKER_CONFIG/config.json is read when it is set.
    ~/.bashrc's `. "$HOME/.env"` runs .env in the same shell (bash(1) `.`), and /etc/profile.d's
    `case "$USER" in ci) ...;; esac` applies to ci alone (bash(1) case): refresh writes where each
    user's docker reads, and each pulls with the session's environment."""
    world = instance_with("docker", users={"ci": True, "dev": True})
    user_file(world, "ci", "/home/ci/.env", "export DOCKER_CONFIG=/home/ci/dk\n", 0o644)
    user_file(world, "ci", "/home/ci/.bashrc", '. "$HOME/.env"\n', 0o644)
    world.sandbox.write(
        "/etc/profile.d/docker.sh", 'case "$USER" in\n  dev) export DOCKER_CONFIG=/srv/dev/.docker ;;\nesac\n'
    )
    world.sandbox.run(
        ["install", "-d", "-m", "0700", "-o", "dev", "-g", "dev", "/srv/dev"]
    ).check_returncode()
    cases = [
        ("ci", "docker", {"DOCKER_CONFIG": "/home/ci/dk"}),
        ("dev", "docker", {"DOCKER_CONFIG": "/srv/dev/.docker"}),
    ]
    assert pulls(world, cases) == [False, False]

    refresh = world.run_document(agent_script, parameters("refresh", users="ci,dev"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    for user, path in (("ci", "/home/ci/dk/config.json"), ("dev", "/srv/dev/.docker/config.json")):
        written = file_state(world, path)
        assert written is not None and (written.mode, written.uid) == (0o600, uid_of(world, user)), path
        assert json.loads(written.content) == {"auths": {R: {"auth": FRESH}}}
    assert pulls(world, cases) == [True, True]
    assert "environment_unknown" not in refresh.stderr


# ------------------------------ F8: auth.json a symlink to docker's file


def test_containers_auth_json_linked_to_dockers_file_in_the_same_home_is_that_file(
    instance_with, agent_script: str
) -> None:
    """containers/image readJSONFile opens the path (os.ReadFile follows symlinks), so a
    ~/.config/containers/auth.json that links to ../../.docker/config.json is docker's file read a
    second time: one file, the user's, in the user's home. The agent reads and writes the target for
    it (keeping the link as it is): refresh and helper serve it, check stops calling it unsafe. A link
    leaving the home or owned by someone else stays refused (config_unsafe)."""
    world = instance_with("podman", "skopeo", users={"alice": False})
    docker_file = "/home/alice/.docker/config.json"
    user_file(world, "alice", docker_file, json.dumps({"auths": {R: {"auth": b64("AWS:an-older-token")}}}))
    link = "/home/alice/.config/containers/auth.json"
    user_file(world, "alice", "/home/alice/.config/containers/placeholder", b"")
    world.sandbox.run(["ln", "-s", "../../.docker/config.json", link]).check_returncode()
    world.sandbox.run(["chown", "-h", "alice:alice", link]).check_returncode()
    cases = [("alice", "skopeo", None), ("alice", "podman", None)]
    assert pulls(world, cases) == [False, False]

    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert "config_unsafe" not in check.stdout, check.stdout

    refresh = world.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    assert world.sandbox.path(link).is_symlink()
    assert json.loads(world.sandbox.path(docker_file).read_bytes()) == {"auths": {R: {"auth": FRESH}}}
    assert pulls(world, cases) == [True, True]

    helper = world.run_document(agent_script, parameters("helper", users="alice"))
    assert helper.result["outcome"] == "changed", helper.stdout
    assert world.sandbox.path(link).is_symlink()
    assert json.loads(world.sandbox.path(docker_file).read_bytes())["credHelpers"] == {R: "ecr-login"}
    assert pulls(world, cases) == [True, True]
    check = world.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["reason"], entry_of(check, "alice")["state"]) == ("ok", "helper"), check.stdout


# ------------------------------ F10: one client, sessions reading different files


def test_a_client_whose_sessions_read_different_files_is_reported_per_session(
    instance_with, agent_script: str
) -> None:
    """systemd user units get environment.d(5)'s REGISTRY_AUTH_FILE (here ${HOME}/unit-auth.json), a login
    shell does not: the same podman reads the unit's file in one (GetDefaultAuthFile) and the default
    order in the other (getAuthFilePaths). check shows each (`clients`, per session kind) with its own
    file and state; refresh serves both, and podman pulls in both."""
    world = instance_with("podman", users={"svc": False})
    unit = f"[Container]\nImage={R}/probe/app:v1\n"
    user_file(world, "svc", "/home/svc/.config/containers/systemd/app.container", unit, 0o644)
    conf = "REGISTRY_AUTH_FILE=${HOME}/unit-auth.json\n"
    user_file(world, "svc", "/home/svc/.config/environment.d/50-auth.conf", conf, 0o644)
    user_file(world, "svc", "/home/svc/unit-auth.json", "{}")
    cases = [("svc", "podman", {"REGISTRY_AUTH_FILE": "/home/svc/unit-auth.json"}), ("svc", "podman", None)]

    check = world.run_document(agent_script, parameters("check", users="svc"))
    assert entry_of(check, "svc") == {"state": "none"}, "podman 4.3.1 reads on past the empty unit file"

    refresh = world.run_document(agent_script, parameters("refresh", users="svc"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stdout
    unit_file = json.loads(world.sandbox.path("/home/svc/unit-auth.json").read_bytes())
    assert unit_file == {"auths": {R: {"auth": FRESH}}}
    assert pulls(world, cases) == [True, True]
    check = world.run_document(agent_script, parameters("check", users="svc"))
    clients = entry_of(check, "svc").get("clients")
    assert isinstance(clients, dict), check.stdout
    by_session = {name.split("(")[1].rstrip(")"): state for name, state in clients.items()}
    assert (by_session["units"]["state"], by_session["units"]["file"]) == ("logged_in", "~/unit-auth.json"), (
        clients
    )
    login = next(state for name, state in by_session.items() if "login" in name)
    assert login["state"] == "logged_in" and login.get("file") != "~/unit-auth.json", clients
