"""Writing a user's files as the user: atomic replaces, backups, owner-only modes for credentials."""

import errno
import os
import stat

from .as_user import run_as_user
from .config_file import AuthFile, DockerAuthFile, backup_name
from .docker_client import CONFIG_NAME
from .docker_model import DockerModel
from .go_json import ConfigRejected
from .outcomes import INTERNAL_ERROR, AgentError

TEMP_SUFFIX = ".tmp"


def temp_prefix(name):
    return ".%s.ecr-fleet-auth." % name


TEMP_PREFIX = temp_prefix(CONFIG_NAME)
NEW_CONFIG_MODE = 0o600

# A file holding a credential (a config with tokens, any backup) is readable by its owner only.
SECRET_FILE_MODE = 0o600
NEW_CONFIG_DIR_MODE = 0o700


def user_dir_fd(directory, create):
    """(As the user) fd of a directory of the user's credential files (~/.docker and the like), its last
    component created 0700 when asked (as docker and containers/image create theirs); symlinks refused."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(directory, flags)
    except OSError as error:
        if error.errno != errno.ENOENT or not create:
            raise
    os.mkdir(directory, NEW_CONFIG_DIR_MODE)
    return os.open(directory, flags)


def remove_stale_temps(dir_fd, name=CONFIG_NAME):
    """Temp files left by a run killed mid-write are ours to delete; the file itself was never touched."""
    for entry in os.listdir(dir_fd):
        if entry.startswith(temp_prefix(name)) and entry.endswith(TEMP_SUFFIX):
            os.unlink(entry, dir_fd=dir_fd)


def replace_file_at(dir_fd, name, content, mode):
    """Write content to name atomically: temp file, fsync, rename; a crash leaves old or new, never half."""
    temp = "%s%d%s" % (temp_prefix(name), os.getpid(), TEMP_SUFFIX)
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


def write_as_user(directory, name, content, mode, create_dir):
    """Replace ``name`` in one of the user's credential directories (run as the user, see run_as_user)."""
    dir_fd = user_dir_fd(directory, create=create_dir)
    try:
        remove_stale_temps(dir_fd, name)
        replace_file_at(dir_fd, name, content, mode)
    finally:
        os.close(dir_fd)


def restrict_as_user(directory, name):
    """Make ``name`` in one of the user's credential directories owner-only (run as the user); no symlinks."""
    dir_fd = user_dir_fd(directory, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, SECRET_FILE_MODE)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def reread(auth_file, content):
    """The edited bytes as every reader of the file reads them (ConfigRejected if one would not)."""
    if isinstance(auth_file, DockerAuthFile):
        return DockerAuthFile(auth_file.model, content, NEW_CONFIG_MODE, path=auth_file.path)
    written = AuthFile(auth_file.path, content, NEW_CONFIG_MODE, legacy=auth_file.legacy)
    for key in auth_file.views:
        if key == "containers":
            written.containers_view()
        else:
            written.docker_view(DockerModel(key[1]))
    return written


def save_config(run, account, user, auth_file, create_dir=True):
    """Back up, then atomically replace one of the user's credential files, as the user; the new file as
    its readers read it.

    Owner and mode are kept, except that a file holding credentials is never left readable by group
    or others (nor is its backup, which is always owner-only): it is made 0600 and that is reported.
    """
    content = auth_file.render()
    try:
        written = reread(auth_file, content)
    except ConfigRejected as error:  # our own edit must load in every client as we meant it
        raise AgentError(INTERNAL_ERROR, "edited %s would not load: %s" % (auth_file.path, error)) from None
    mode = auth_file.mode if auth_file.exists else NEW_CONFIG_MODE
    directory, name = auth_file.directory, auth_file.name
    if written.holds_secrets() and mode & 0o077:
        run.report.tightened(user, shown_name(account, auth_file.path), mode)
        mode = SECRET_FILE_MODE
    if auth_file.exists:
        backup = backup_name(name)
        run_as_user(account, write_as_user, directory, backup, auth_file.raw, SECRET_FILE_MODE, False)
        if auth_file.backup_mode is not None:
            run.report.tightened(
                user, shown_name(account, backup_name(auth_file.path)), auth_file.backup_mode
            )
    run_as_user(account, write_as_user, directory, name, content, mode, create_dir)
    written.mode = mode
    return written


def shown_name(account, path):
    """How the result names a file: docker's config by its name (as it always has), others by path, the
    home shown as ~."""
    if os.path.dirname(path) == account.config_dir:
        return os.path.basename(path)
    if path.startswith(account.home.rstrip("/") + "/"):
        return "~" + path[len(account.home.rstrip("/")) :]
    return path
