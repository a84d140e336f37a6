"""Reading a user's credential files as root, safely: no symlinks, the user's own files only, bounded."""

import errno
import os
import stat

from .config_file import AuthFile, DockerAuthFile, backup_name
from .docker_client import CONFIG_DIR_NAME, CONFIG_NAME
from .go_json import ConfigRejected
from .outcomes import CONFIG_CORRUPT, CONFIG_TOO_LARGE, CONFIG_UNSAFE, NO_HOME, AgentError

MAX_CONFIG_BYTES = 4 * 1024 * 1024


def open_config_dir(account):
    """fd of the user's .docker directory, or None if absent. Refuses symlinks and foreign owners.

    NO_HOME where docker, run by the user, could keep no config: the home is missing, or .docker is
    absent and the user may not create it (a service account whose home belongs to root)."""
    try:
        home_fd = os.open(account.home, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        reason = NO_HOME if error.errno == errno.ENOENT else CONFIG_UNSAFE
        raise AgentError(reason, "home %s of %s unusable: %s" % (account.home, account.name, error)) from None
    try:
        try:
            dir_fd = os.open(CONFIG_DIR_NAME, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=home_fd)
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise AgentError(
                    CONFIG_UNSAFE, "%s is a symlink or not a directory" % account.config_dir
                ) from None
            if not may_write(account, os.fstat(home_fd)):
                raise AgentError(
                    NO_HOME, "%s may not create %s in its home" % (account.name, account.config_dir)
                ) from None
            return None
    finally:
        os.close(home_fd)
    info = os.fstat(dir_fd)
    if info.st_uid != account.uid:
        os.close(dir_fd)
        raise AgentError(CONFIG_UNSAFE, "%s is not owned by %s" % (account.config_dir, account.name))
    return dir_fd


def may_write(account, info):
    """Whether the user may create entries in a directory of this stat (owner, group, other bits)."""
    if account.uid in (0, info.st_uid):
        return account.uid == 0 or bool(info.st_mode & 0o200)
    if info.st_gid in os.getgrouplist(account.name, account.gid):
        return bool(info.st_mode & 0o020)
    return bool(info.st_mode & 0o002)


def read_config(account, model):
    """~/.docker/config.json as docker would load it; refused (untouched) when unsafe or rejected."""
    auth_file = read_auth_file(account, os.path.join(account.config_dir, CONFIG_NAME))
    try:
        return DockerAuthFile(model, auth_file.raw, auth_file.mode, auth_file.backup_mode, auth_file.path)
    except ConfigRejected as error:
        raise AgentError(CONFIG_CORRUPT, "docker cannot load %s: %s" % (auth_file.path, error)) from None


def open_dir(account, directory):
    """fd of a directory holding one of the user's credential files, or None if absent. Refuses a symlink
    (at its last component) and a directory owned by anyone but the user."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.islink(directory):
            return None
        raise AgentError(CONFIG_UNSAFE, "%s is a symlink or not a directory" % directory) from None
    if os.fstat(dir_fd).st_uid != account.uid:
        os.close(dir_fd)
        raise AgentError(CONFIG_UNSAFE, "%s is not owned by %s" % (directory, account.name))
    return dir_fd


def unreachable(account, path):
    """The first directory above path the user may not search, or None: the user's clients then cannot
    open the file at all (EACCES), which is not the same as its not being there."""
    if account.uid == 0:
        return None
    groups = os.getgrouplist(account.name, account.gid)
    parts = path.split("/")
    for depth in range(2, len(parts)):
        directory = "/".join(parts[:depth])
        try:
            info = os.stat(directory)
        except OSError:
            return None  # missing: ENOENT for the user as for the agent
        if info.st_uid == account.uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid in groups:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return directory
    return None


def read_auth_file(account, path, legacy=False):
    """One of the user's credential files as written (an AuthFile; absent: one that does not exist);
    refused when unsafe, unreadable (by the user too) or not JSON. ~/.docker is opened as
    docker_config's rules say."""
    directory, name = os.path.split(path)
    blocked = unreachable(account, path)
    if blocked is not None:
        why = "%s cannot open %s: %s is not searchable by %s" % (account.name, path, blocked, account.name)
        raise AgentError(CONFIG_CORRUPT, why)
    in_home = directory == os.path.join(account.home, CONFIG_DIR_NAME)
    dir_fd = open_config_dir(account) if in_home else open_dir(account, directory)
    if dir_fd is None:
        return AuthFile(path, legacy=legacy)
    try:
        return read_file_at(dir_fd, account, path, legacy)
    finally:
        os.close(dir_fd)


def read_file_at(dir_fd, account, path, legacy):
    name = os.path.basename(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return AuthFile(path, backup_mode=lax_backup_mode(dir_fd, account, name), legacy=legacy)
        if error.errno == errno.ELOOP:
            raise AgentError(CONFIG_UNSAFE, "%s is a symlink" % path) from None
        raise AgentError(CONFIG_CORRUPT, "%s unreadable: %s" % (path, error.strerror)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise AgentError(CONFIG_UNSAFE, "%s is not a regular file" % path)
        if info.st_uid != account.uid:
            raise AgentError(CONFIG_UNSAFE, "%s is not owned by %s" % (path, account.name))
        if info.st_size > MAX_CONFIG_BYTES:
            sizes = (path, info.st_size, MAX_CONFIG_BYTES)
            raise AgentError(CONFIG_TOO_LARGE, "%s has %d bytes; the agent reads at most %d" % sizes)
        if not info.st_mode & stat.S_IRUSR:
            # The user's clients cannot read it: docker warns, starts empty, and a login overwrites it;
            # containers/image fails every lookup.
            raise AgentError(CONFIG_CORRUPT, "%s is not readable by %s" % (path, account.name))
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    mode, backup_mode = stat.S_IMODE(info.st_mode), lax_backup_mode(dir_fd, account, name)
    try:
        return AuthFile(path, raw, mode, backup_mode, legacy)
    except ConfigRejected as error:
        raise AgentError(CONFIG_CORRUPT, "no client can load %s: %s" % (path, error)) from None


def lax_backup_mode(dir_fd, account, name=CONFIG_NAME):
    """The mode of our backup beside the file when group or others may read it (older agents kept
    the file's mode), else None."""
    try:
        info = os.stat(backup_name(name), dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode) and info.st_uid == account.uid and info.st_mode & 0o077:
        return stat.S_IMODE(info.st_mode)
    return None
