"""Writing a user's files as the user: atomic replaces, backups, owner-only modes for credentials."""

import errno
import os
import stat

from .as_user import run_as_user
from .config_file import BACKUP_NAME, CONFIG_NAME, DockerAuthFile
from .go_json import ConfigRejected
from .outcomes import INTERNAL_ERROR, AgentError

TEMP_PREFIX = ".config.json.ecr-fleet-auth."
TEMP_SUFFIX = ".tmp"
NEW_CONFIG_MODE = 0o600

# A file holding a credential (a config with tokens, any backup) is readable by its owner only.
SECRET_FILE_MODE = 0o600
NEW_CONFIG_DIR_MODE = 0o700


def user_config_dir_fd(account, create):
    """(As the user) fd of ~/.docker, created 0700 when asked; symlinks refused."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(account.config_dir, flags)
    except OSError as error:
        if error.errno != errno.ENOENT or not create:
            raise
    os.mkdir(account.config_dir, NEW_CONFIG_DIR_MODE)
    return os.open(account.config_dir, flags)


def remove_stale_temps(dir_fd):
    """Temp files left by a run killed mid-write are ours to delete; config.json was never touched."""
    for name in os.listdir(dir_fd):
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            os.unlink(name, dir_fd=dir_fd)


def replace_file_at(dir_fd, name, content, mode):
    """Write content to name atomically: temp file, fsync, rename; a crash leaves old or new, never half."""
    temp = "%s%d%s" % (TEMP_PREFIX, os.getpid(), TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def write_as_user(account, name, content, mode, create_dir):
    """Replace ``name`` in the user's docker config dir (run as the user, see run_as_user)."""
    dir_fd = user_config_dir_fd(account, create=create_dir)
    try:
        remove_stale_temps(dir_fd)
        replace_file_at(dir_fd, name, content, mode)
    finally:
        os.close(dir_fd)


def restrict_as_user(account, name):
    """Make ``name`` in the user's docker config dir owner-only (run as the user); symlinks refused."""
    dir_fd = user_config_dir_fd(account, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, SECRET_FILE_MODE)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def save_config(run, account, user, auth_file):
    """Back up, then atomically replace the user's config, as the user; the new file as docker reads it.

    Owner and mode are kept, except that a file holding credentials is never left readable by group
    or others (nor is its backup, which is always owner-only): it is made 0600 and that is reported.
    """
    content = auth_file.render()
    try:
        written = DockerAuthFile(auth_file.model, content, NEW_CONFIG_MODE)
    except ConfigRejected as error:  # our own edit must load in docker as we meant it
        raise AgentError(INTERNAL_ERROR, "edited config would not load in docker: %s" % error) from None
    mode = auth_file.mode if auth_file.exists else NEW_CONFIG_MODE
    if written.view.holds_secrets() and mode & 0o077:
        run.report.tightened(user, CONFIG_NAME, mode)
        mode = SECRET_FILE_MODE
    if auth_file.exists:
        run_as_user(account, write_as_user, account, BACKUP_NAME, auth_file.raw, SECRET_FILE_MODE, False)
        if auth_file.backup_mode is not None:
            run.report.tightened(user, BACKUP_NAME, auth_file.backup_mode)
    run_as_user(account, write_as_user, account, CONFIG_NAME, content, mode, True)
    written.mode = mode
    return written
