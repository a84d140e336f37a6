"""What the agent's integration tests do on a sandboxed instance: users' files, stand-ins, assertions."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ecr_fleet_auth.shared import contract
from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import DOCKER_CLI, HELPER_BIN, INSTANCE_PATH
from localfleet.hosts.registry_server import PROBE_REPOSITORY, PROBE_TAG
from tests.agent.mount_readers import bind_mounted_reader

STUBS = Path(__file__).parent / "stubs"
STUB_DIR = "/opt/stub"
PACKAGE_MANAGERS = ("dnf", "yum", "apt-get", "amazon-linux-extras")
PASS_STANDIN = "/usr/local/bin/docker-credential-pass"
PASS_FOLDER = ".docker-credential-pass-standin"
REAL_HELPER = Path(HELPER_BIN).read_bytes() if Path(HELPER_BIN).exists() else b""
TOKEN_A = sb.moto_token(sb.ACCOUNT_A)
# The lock lives on /run, a tmpfs of its own (as on a real instance), so it is not among the files seen.
AGENT_OWN_FILES = ("/var/lib/ecr-fleet-auth/logins.json",)


def home(user: str) -> str:
    return "/root" if user == "root" else f"/home/{user}"


def config_path(user: str) -> str:
    return f"{home(user)}/.docker/config.json"


def backup_path(user: str) -> str:
    return f"{home(user)}/.docker/config.json.ecr-fleet-auth.bak"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FRESH = b64(f"AWS:{TOKEN_A}")  # a docker auth entry holding registry A's current token
GHCR_AUTH = b64("gh-user:gh-token")
# A config as the issue had it: another registry's login, a credential helper, docker's features.
ISSUE_FEATURES = (
    '{"auths":{"ghcr.io":{"auth":"' + GHCR_AUTH + '"}},"credHelpers":{"gcr.io":"gcloud"},'
    '"features":{"buildkit":true}}'
)


def parameters(
    action: str, registries: str = sb.REGISTRY_A, users: str = "auto", **extra: str
) -> dict[str, str]:
    values = {
        "Action": action,
        "Registries": registries,
        "Users": users,
        "HelperVersion": contract.DEFAULT_HELPER_VERSION,
        "ReleaseBaseUrl": "https://helper-mirror.test",
        "KeepUserDockerLogin": "false",
    }
    values.update(extra)
    return values


def config_of(world: sb.World, user: str) -> dict[str, object]:
    data = json.loads(world.sandbox.path(config_path(user)).read_bytes())
    assert isinstance(data, dict)
    return data


def write_config(
    world: sb.World, user: str, content: str | bytes, mode: int = 0o600, dir_mode: int = 0o700
) -> Path:
    """A pre-existing docker config owned by the user."""
    uid = world.sandbox.path(home(user)).stat().st_uid
    folder = world.sandbox.path(f"{home(user)}/.docker")
    folder.mkdir(exist_ok=True)
    os.chmod(folder, dir_mode)
    os.chown(folder, uid, uid)
    path = folder / "config.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    os.chmod(path, mode)
    os.chown(path, uid, uid)
    return path


@dataclass(frozen=True)
class FileState:
    """A file's bytes, permission bits and owner: what "left untouched" and "owner-only" are about."""

    content: bytes
    mode: int
    uid: int


def file_state(world: sb.World, inside: str) -> FileState | None:
    path = world.sandbox.path(inside)
    if not path.exists():
        return None
    info = path.lstat()
    return FileState(path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_uid)


def configs(world: sb.World, users: tuple[str, ...]) -> dict[str, tuple[FileState | None, FileState | None]]:
    """Every user's config.json and backup, as they are now."""
    return {
        user: (file_state(world, config_path(user)), file_state(world, backup_path(user))) for user in users
    }


def can_pull(world: sb.World, users: tuple[str, ...], registry: str = sb.REGISTRY_A) -> dict[str, bool]:
    return {user: world.probe(user, home(user), registry).returncode == 0 for user in users}


def docker_loads_config_of(world: sb.World, user: str) -> bool:
    """The real docker CLI's verdict on the user's config: it loads it unless it warns it cannot parse it."""
    done = world.sandbox.run(
        [DOCKER_CLI, "context", "ls"], env={"PATH": INSTANCE_PATH, "HOME": home(user)}, user=user
    )
    return b"WARNING: Error" not in done.stderr


def assert_token_confined(
    run: sb.AgentRun, world: sb.World, token: str, allowed: tuple[str, ...] = ("/.docker/config.json",)
) -> None:
    """The token (raw or as docker's base64 auth) is in no output and in no file but users' config.json
    (and, where docker keeps it in a credential store, that store)."""
    forms = [token, base64.b64encode(f"AWS:{token}".encode()).decode()]
    for form in forms:
        assert form not in run.stdout
        assert form not in run.stderr
    for path, (content, mode, *_rest) in world.sandbox.changed_files().items():
        if any(form.encode() in content for form in forms):
            assert path.endswith(allowed), f"token found in {path}"
            assert stat.S_IMODE(mode) & 0o077 == 0, f"{path} holds the token and others may read it"


def files_written_during(world: sb.World, before: dict[str, tuple[bytes, int, int, int]]) -> set[str]:
    """Paths created or changed since the snapshot, except the script SSM itself wrote."""
    after = world.sandbox.changed_files()
    changed = {path for path, state in after.items() if before.get(path) != state}
    return {path for path in changed if "/document/orchestration/" not in path}


# ---------------------------------------------------------------- stand-ins for what cannot run here


def without_helper(world: sb.World, os_release: str | None = None) -> None:
    world.sandbox.run(["rm", "-f", HELPER_BIN]).check_returncode()
    if os_release is not None:
        world.sandbox.path("/etc/os-release").unlink()
        world.sandbox.write("/etc/os-release", os_release)


def install_package_managers(
    world: sb.World, payload: bytes = REAL_HELPER, mirror: str | None = None
) -> None:
    """tests/agent/stubs/package-manager.sh as dnf, yum, apt-get and amazon-linux-extras (first on
    PATH), recording calls in /opt/stub/calls.log; installing the package installs `payload`. Their
    sources (apt's sources.list, yum's and dnf's .repo files) name `mirror` (default: the world's
    HTTPS mirror, which takes connections), as the agent probes a mirror before it starts one."""
    script = (STUBS / "package-manager.sh").read_bytes()
    for name in PACKAGE_MANAGERS:
        world.sandbox.write(f"/usr/local/sbin/{name}", script, 0o755)
    world.sandbox.write(f"{STUB_DIR}/payload", payload, 0o755)
    world.sandbox.write(f"{STUB_DIR}/calls.log", "", 0o644)
    base = mirror or world.mirror_url()
    world.sandbox.run(["sh", "-c", "rm -f /etc/apt/sources.list.d/* /etc/yum.repos.d/*"]).check_returncode()
    world.sandbox.write("/etc/apt/sources.list", f"deb {base}/debian bookworm main\n")
    world.sandbox.write("/etc/yum.repos.d/amazonlinux.repo", f"[amazonlinux]\nbaseurl={base}/al/$basearch\n")


def package_manager_calls(world: sb.World) -> list[str]:
    return world.sandbox.path(f"{STUB_DIR}/calls.log").read_text().splitlines()


def install_pass_standin(world: sb.World) -> None:
    """tests/agent/stubs/docker-credential-pass.py as docker-credential-pass (and a `pass` beside it)."""
    world.sandbox.write(PASS_STANDIN, (STUBS / "docker-credential-pass.py").read_bytes(), 0o755)


def pass_store(world: sb.World, user: str) -> dict[str, dict[str, str]]:
    path = world.sandbox.path(f"{home(user)}/{PASS_FOLDER}/store.json")
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def pass_calls(world: sb.World, user: str) -> list[str]:
    path = world.sandbox.path(f"{home(user)}/{PASS_FOLDER}/calls.log")
    return path.read_text().splitlines() if path.exists() else []


def clear_pass_calls(world: sb.World, user: str) -> None:
    path = world.sandbox.path(f"{home(user)}/{PASS_FOLDER}/calls.log")
    if path.exists():
        path.write_text("")


# ---------------------------------------------------------------- users' sessions and their own clients


def uid_of(world: sb.World, user: str) -> int:
    return world.sandbox.path(home(user)).stat().st_uid


def user_file(world: sb.World, user: str, inside: str, content: str | bytes, mode: int = 0o600) -> Path:
    """A file of the user's (and the directories above it that do not exist yet, 0700, the user's)."""
    uid = uid_of(world, user)
    path = world.sandbox.path(inside)
    missing = [parent for parent in path.parents if not parent.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, 0o700)
        os.chown(folder, uid, uid)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    os.chmod(path, mode)
    os.chown(path, uid, uid)
    return path


def start_session(world: sb.World, user: str) -> str:
    """/run/user/<uid> as pam_systemd makes it for a user's login session (0700, the user's): the
    XDG_RUNTIME_DIR of that user's sessions while it exists."""
    runtime = f"/run/user/{uid_of(world, user)}"
    world.sandbox.run(["install", "-d", "-m", "0700", "-o", user, "-g", user, runtime]).check_returncode()
    return runtime


def client_login(
    world: sb.World, user: str, client: str, password: str, env: dict[str, str] | None = None
) -> None:
    """The user's own `<client> login` to REGISTRY_A (the real client writes where it writes)."""
    program = {"podman": "podman", "skopeo": "skopeo", "docker": DOCKER_CLI}[client]
    done = world.sandbox.run(
        [program, "login", "--username", "AWS", "--password-stdin", sb.REGISTRY_A],
        env=world.user_env(user, home(user), env),
        user=user,
        stdin=password.encode(),
        pivot=client == "podman",
    )
    assert done.returncode == 0, done.stderr


def file_states(world: sb.World, paths: tuple[str, ...]) -> dict[str, FileState | None]:
    return {path: file_state(world, path) for path in paths}


def pulls(world: sb.World, cases: list[tuple[str, str, dict[str, str] | None]]) -> list[bool]:
    """Whether each (user, client, session environment) pulls: the user's own client, run by the user."""
    return [
        world.probe(user, home(user), sb.REGISTRY_A, client, env).returncode == 0
        for user, client, env in cases
    ]


# ---------------------------------------------------------------- readers in mount namespaces of their own


def reader_of(world: sb.World, source: str, target: str) -> contextlib.AbstractContextManager[int]:
    """A process in the instance, in a mount namespace of its own, where the instance's file `source`
    is bind-mounted on `target` (`docker run -v /root/.docker/config.json:/config.json`); its pid."""
    return bind_mounted_reader(source, target, prefix=world.sandbox.enter())


def reader_can_pull(
    world: sb.World, pid: int, config_dir: str, registry: str = sb.REGISTRY_A, path: str | None = None
) -> bool:
    """Can the reader pull with the config its mount shows? docker in the reader's namespaces and
    root, as root, with DOCKER_CONFIG at the mount's directory (watchtower's `-e DOCKER_CONFIG`);
    `path`: the PATH of the reader's image (one without the credential helper, say)."""
    env = {**world.user_env("root", "/root"), "DOCKER_CONFIG": config_dir}
    if path is not None:
        env["PATH"] = path
    image = f"{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
    done = subprocess.run(
        [
            shutil.which("nsenter") or "nsenter",
            "-t",
            str(pid),
            "-m",
            "-n",
            "-r",
            "-w",
            DOCKER_CLI,
            "manifest",
            "inspect",
            "--insecure",
            image,
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


def reader_can_pull_with_authfile(
    world: sb.World, pid: int, authfile: str, registry: str = sb.REGISTRY_A
) -> bool:
    """Can a reader of a containers auth.json pull with the file its mount shows? skopeo in the
    reader's namespaces and root, as root, with `--authfile` at the mount (a CI job's
    REGISTRY_AUTH_FILE), root's HOME (its ~/.aws, for a helper) and no other file to fall back to:
    containers/image before 5.24 still reads ${XDG_CONFIG_HOME}/containers/auth.json and
    $DOCKER_CONFIG/config.json after a named file (getAuthFilePaths), so both point nowhere."""
    env = {
        **world.user_env("root", "/root"),
        "XDG_CONFIG_HOME": "/nonexistent",
        "DOCKER_CONFIG": "/nonexistent",
    }
    image = f"docker://{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
    nsenter = ["nsenter", "-t", str(pid), "-m", "-n", "-r", "-w"]
    done = subprocess.run(
        [*nsenter, "skopeo", "inspect", "--authfile", authfile, image],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


def auth_json(entries: dict[str, dict[str, str]], helpers: dict[str, str] | None = None) -> bytes:
    """A containers auth.json as containers/image writes it (modifyJSON: json.MarshalIndent with a tab,
    no final newline; credHelpers omitted when empty), ``entries`` registry -> its entry."""
    document: dict[str, object] = {"auths": entries}
    if helpers:
        document["credHelpers"] = helpers
    return json.dumps(document, indent="\t").encode()


def containers_auth(entries: dict[str, str], helpers: dict[str, str] | None = None) -> bytes:
    """``auth_json`` with ``entries`` registry -> token (AWS's user name)."""
    return auth_json({r: {"auth": b64(f"AWS:{token}")} for r, token in entries.items()}, helpers)


def users_of(run: sb.AgentRun) -> dict[str, dict[str, object]]:
    """The agent's result line, each user's entry by name."""
    return {entry["user"]: entry for entry in run.result["users"]}  # type: ignore[union-attr]


def inode(world: sb.World, inside: str) -> int:
    return world.sandbox.path(inside).stat().st_ino


# ---------------------------------------------------------------- helper releases and docker's callers

STANDIN_RELEASE = (STUBS / "ecr-login-release.py").read_bytes()
REAL_060_COPY = "/opt/ecr-fleet-auth-test/docker-credential-ecr-login-0.6.0"
# cron's environment for a job (crontab(5)): PATH=/usr/bin:/bin, HOME, LOGNAME and SHELL from passwd.
CRON_PATH = "/usr/bin:/bin"


def publish_newer_release(world: sb.World) -> None:
    """The pinned release on the mirror is tests/agent/stubs/ecr-login-release.py (a stand-in for
    0.12.0, which cannot be had here), with the real 0.6.0 it fetches tokens through beside it."""
    world.publish_release(contract.DEFAULT_HELPER_VERSION, "amd64", STANDIN_RELEASE)
    world.sandbox.write(REAL_060_COPY, REAL_HELPER, 0o755)


def cron_pull(world: sb.World, user: str, registry: str = sb.REGISTRY_A) -> bool:
    """A pull from the user's crontab (`/usr/local/bin/docker pull ...`): cron's PATH and HOME."""
    env = {**world.user_env(user, home(user)), "PATH": CRON_PATH, "LOGNAME": user, "SHELL": "/bin/sh"}
    image = f"{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
    done = world.sandbox.run([DOCKER_CLI, "manifest", "inspect", "--insecure", image], env=env, user=user)
    return done.returncode == 0


# ---------------------------------------------------------------- kubelet


@contextlib.contextmanager
def kubelet_running(world: sb.World, cwd: str = "/") -> Iterator[None]:
    """A process named kubelet in the instance (a copy of sleep), in the working directory `cwd`
    (a unit's WorkingDirectory=): kubelet itself cannot run here."""
    world.sandbox.run(["cp", "/bin/sleep", "/usr/local/bin/kubelet"]).check_returncode()
    process = subprocess.Popen(
        [*world.sandbox.enter(cwd), "/usr/local/bin/kubelet", "600"], start_new_session=True
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # its session: nsenter's child too
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def kubelet_can_pull(world: sb.World, inside: str, registry: str = sb.REGISTRY_A) -> bool:
    """kubelet's view of the file: its auths alone, as a docker config the real docker CLI pulls with."""
    auths = json.loads(world.sandbox.path(inside).read_bytes()).get("auths") or {}
    world.sandbox.write("/tmp/kubelet-view/config.json", json.dumps({"auths": auths}), 0o600)
    env = {**world.user_env("root", "/root"), "DOCKER_CONFIG": "/tmp/kubelet-view"}
    image = f"{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
    return (
        world.sandbox.run([DOCKER_CLI, "manifest", "inspect", "--insecure", image], env=env).returncode == 0
    )
