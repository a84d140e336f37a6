"""Writing a user's files as the user: atomic replaces, backups, owner-only modes for credentials.

The rule: a file is replaced atomically (temp file, fsync, rename), so a reader sees the old file or
the new one, never part of either; except a file some reader holds by its inode (mounted on its own
elsewhere, see mounts.py, or hard-linked), which a rename would leave behind on the old copy: that
one is updated in place (update_in_place_at), after the same backup.
"""

import errno
import functools
import os
import stat

from .as_user import run_as_user
from .config_file import BACKUP_NAME, CONFIG_NAME, DockerAuthFile
from .go_json import ConfigRejected
from .log import log
from .outcomes import INTERNAL_ERROR, READER_STALE, WRITTEN_IN_PLACE, AgentError

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


def pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def update_in_place_at(dir_fd, name, content, mode):
    """Rewrite name keeping its inode, with no moment a reader could find it empty or cut short.

    Never truncated first (an empty config.json is an error to containers/image: "unexpected end of
    JSON input"): a longer file is first grown with spaces (the old JSON, then whitespace: still whole
    to every JSON reader), so that the new JSON goes in with one write at offset 0 that changes no
    size (a write that grows a file shows readers the new bytes cut at the old size first); a
    shorter one is padded with spaces to the old length (old bytes after the new JSON would be an
    error to containers/image), synced, and only then is the padding cut off. A read() running during
    that one write may still return a mix of old and new bytes (Linux copies page-cache bytes with no
    lock against reads, and readers take none: docker/cli cli/config and containers/image do not):
    that reader's next read is whole. The price of keeping the inode, paid only where it is held."""
    fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if stat.S_IMODE(info.st_mode) != mode:  # owner-only before the secrets go in
            os.fchmod(fd, mode)
        if len(content) > info.st_size:  # grow first, with spaces: a reader sees the old JSON whole
            pwrite_all(fd, b" " * (len(content) - info.st_size), info.st_size)
        pwrite_all(fd, content + b" " * max(0, info.st_size - len(content)), 0)
        os.fsync(fd)
        if len(content) < info.st_size:
            os.ftruncate(fd, len(content))
            os.fsync(fd)
    finally:
        os.close(fd)


def write_as_user(account, name, content, mode, create_dir, *, in_place=False):
    """Replace ``name`` in the user's docker config dir (run as the user, see run_as_user); in place
    when asked, or when name turns out to be a mount point (rename: EBUSY)."""
    dir_fd = user_config_dir_fd(account, create=create_dir)
    try:
        remove_stale_temps(dir_fd)
        if not in_place:
            try:
                return replace_file_at(dir_fd, name, content, mode)
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise
                remove_stale_temps(dir_fd)
        update_in_place_at(dir_fd, name, content, mode)
    finally:
        os.close(dir_fd)


def held_by_inode(run, account, user):
    """Where the user's config is held by its inode (mounted on its own in some mount namespace, or
    hard-linked): those places need it written in place. Readers left on a copy an earlier rename
    replaced are reported (reader_stale): nothing written to this file reaches them any more."""
    path = os.path.join(account.config_dir, CONFIG_NAME)
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return []
    if not stat.S_ISREG(info.st_mode):
        return []
    live, stale = run.mounts.readers(path, info)
    if stale and user.name not in run.mounts.reported:
        run.mounts.reported.append(user.name)
        message = "%s: %s is mounted at %s on a copy replaced since (//deleted)" % (
            user.name,
            CONFIG_NAME,
            ", ".join(stale[:3]),
        )
        log(message)
        run.report.notices.append((READER_STALE, message))
    if info.st_nlink > 1:
        live.append("%d hard links" % info.st_nlink)
    return live


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
    held = held_by_inode(run, account, user) if auth_file.exists else []
    write = functools.partial(write_as_user, in_place=bool(held))
    run_as_user(account, write, account, CONFIG_NAME, content, mode, True)
    if held:
        message = "%s: %s is held by its inode (%s): written in place" % (
            user.name,
            CONFIG_NAME,
            ", ".join(held[:3]),
        )
        log(message)
        run.report.notices.append((WRITTEN_IN_PLACE, message))
        user.in_place = True
    written.mode = mode
    return written
