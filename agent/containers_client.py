"""Where podman, skopeo and buildah read a user's credentials: containers/image's files, in order.

containers/image pkg/docker/config/config.go getAuthFilePaths / getPathToAuthWithOS
(containers-auth.json(5)):
1. the "primary" file: the path the user named (--authfile, whose default is REGISTRY_AUTH_FILE, and
   for podman and buildah DOCKER_CONFIG/config.json: containers/common pkg/auth GetDefaultAuthFile;
   skopeo's default is REGISTRY_AUTH_FILE only, cmd/skopeo/utils.go), else
   $XDG_RUNTIME_DIR/containers/auth.json (left out when that directory does not exist), else
   /run/containers/<uid>/auth.json. Rootless podman and buildah set XDG_RUNTIME_DIR themselves when
   it is unset (podman cmd/podman/registry/config.go setXdgDirs with pkg/util GetRuntimeDir:
   /run/user/<uid> when it is the user's, else $TMPDIR/podman-run-<uid>; buildah with
   containers/storage GetRootlessRuntimeDir: /run/user/<uid>, else $TMPDIR/containers-user-<uid>);
   skopeo does not. Root's never do.
2. ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, 3. $DOCKER_CONFIG/config.json or
   ~/.docker/config.json, 4. ~/.dockercfg (legacy format): these only when the user named no path, or
   with containers/image before 5.24 (commit b3748aab "Don't use any default path fallbacks if the user
   specified a path"): podman before 4.4, skopeo before 1.11, buildah before 1.29 (their go.mod).
The first file with credentials for the registry answers; nothing falls back past it.
podman and buildah refuse to pull when the --authfile they were given does not exist (podman
cmd/podman/images/pull.go; containers/common CheckAuthFile): that file is required.
"""

import os
import stat

from . import docker_client
from .orders import FileRef, ReadOrder

AUTH_FILE = "containers/auth.json"
LEGACY_FILE = ".dockercfg"
ROOT_RUNTIME_FILE = "/run/containers/%d/auth.json"
USER_RUNTIME_DIR = "/run/user/%d"
# The first version whose containers/image (5.24.0) reads only the file the user named.
NO_FALLBACK_SINCE = {"podman": (4, 4, 0), "skopeo": (1, 11, 0), "buildah": (1, 29, 0)}
# Where rootless podman and buildah put their runtime directory when /run/user/<uid> is not theirs.
RUNTIME_FALLBACK = {"podman": "podman-run-%d", "buildah": "containers-user-%d"}


def user_path(client, environment):
    """The file the user named for this client (its --authfile default), or None."""
    if environment.get("REGISTRY_AUTH_FILE"):
        return environment.get("REGISTRY_AUTH_FILE")
    if client.name != "skopeo" and environment.get("DOCKER_CONFIG"):
        return os.path.join(environment.get("DOCKER_CONFIG"), docker_client.CONFIG_NAME)
    return None


def owns_runtime_dir(path, uid):
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and info.st_mode & 0o700 == 0o700


def runtime_file(client, account, environment):
    """The primary file when the user named none, or None when the client would leave it out."""
    runtime_dir = environment.get("XDG_RUNTIME_DIR")
    if not runtime_dir and account.uid != 0 and client.name in RUNTIME_FALLBACK:
        if owns_runtime_dir(USER_RUNTIME_DIR % account.uid, account.uid):
            runtime_dir = USER_RUNTIME_DIR % account.uid
        else:
            temp = environment.get("TMPDIR") or "/tmp"  # noqa: S108 - Go's os.TempDir()
            runtime_dir = os.path.join(temp, RUNTIME_FALLBACK[client.name] % account.uid)
    if not runtime_dir:
        return ROOT_RUNTIME_FILE % account.uid
    if environment.get("XDG_RUNTIME_DIR") and not os.path.isdir(runtime_dir):
        return None  # getAuthFilePaths warns and goes on without it
    return os.path.join(runtime_dir, AUTH_FILE)


def linked_in_home(path, account):
    """The file a symlink of the user's names, when the link, every directory to its target and the
    target are the user's, inside the user's home (`~/.config/containers/auth.json` ->
    `../../.docker/config.json`, a common setup): that file is what the client reads there, and what
    the agent reads and writes for it. Any other symlink stays as it is (and is refused: config_unsafe)."""
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode) or os.lstat(path).st_uid != account.uid:
            return path
        target = os.path.realpath(path)
        home = os.path.realpath(account.home).rstrip("/") + "/"
        parts = target[len(home) :].split("/") if target.startswith(home) else None
        if not parts or os.lstat(target).st_uid != account.uid or not stat.S_ISREG(os.lstat(target).st_mode):
            return path
        for depth in range(1, len(parts)):
            if os.lstat(home + "/".join(parts[:depth])).st_uid != account.uid:
                return path
    except OSError:
        return path
    return target


def falls_back(client, named):
    """Whether this client reads the default files after the one the user named."""
    if not named:
        return True
    since = NO_FALLBACK_SINCE[client.name]
    version = client.version_tuple
    return version is not None and version < since  # an unreadable version reads as the newest


def read_orders(client, account, environment):
    named = user_path(client, environment)
    docker_path = docker_client.config_path(environment, account.home)
    primary = named or runtime_file(client, account, environment)
    files = [FileRef(primary)] if primary else []
    config_path = None
    if falls_back(client, named):
        config_home = environment.get("XDG_CONFIG_HOME") or os.path.join(account.home, ".config")
        config_path = os.path.join(config_home, AUTH_FILE)
        files += [
            FileRef(config_path),
            FileRef(docker_path),
            FileRef(os.path.join(account.home, LEGACY_FILE), True),
        ]
    files = [FileRef(linked_in_home(ref.path, account), ref.legacy) for ref in files]
    files = [ref for index, ref in enumerate(files) if ref.path not in [seen.path for seen in files[:index]]]
    required = named if named and client.name != "skopeo" else None
    order = ReadOrder(
        client.name,
        "containers",
        files,
        docker_path,
        user_path=named,
        required=required,
        config_path=config_path,
    )
    return [order]
