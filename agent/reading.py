"""Reading a user's docker config as root, safely: no symlinks, the user's own files only, bounded."""

import errno
import os
import stat

from .config_file import BACKUP_NAME, CONFIG_DIR_NAME, CONFIG_NAME, DockerAuthFile
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
    """The user's docker config as docker would load it; refused (untouched) when unsafe or rejected."""
    dir_fd = open_config_dir(account)
    if dir_fd is None:
        return DockerAuthFile(model)
    try:
        return read_config_at(dir_fd, account, model)
    finally:
        os.close(dir_fd)


def read_config_at(dir_fd, account, model):
    path = os.path.join(account.config_dir, CONFIG_NAME)
    try:
        fd = os.open(CONFIG_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return DockerAuthFile(model, backup_mode=lax_backup_mode(dir_fd, account))
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
            # docker, running as the user, cannot read it: it warns, starts empty, and a login overwrites it.
            raise AgentError(CONFIG_CORRUPT, "%s is not readable by %s" % (path, account.name))
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    try:
        return DockerAuthFile(model, raw, stat.S_IMODE(info.st_mode), lax_backup_mode(dir_fd, account))
    except ConfigRejected as error:
        raise AgentError(CONFIG_CORRUPT, "docker cannot load %s: %s" % (path, error)) from None


def lax_backup_mode(dir_fd, account):
    """The mode of our backup beside the config when group or others may read it (older agents kept
    the config's mode), else None."""
    try:
        info = os.stat(BACKUP_NAME, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode) and info.st_uid == account.uid and info.st_mode & 0o077:
        return stat.S_IMODE(info.st_mode)
    return None
