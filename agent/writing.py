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
from .config_file import AuthFile, DockerAuthFile, backup_name
from .docker_client import CONFIG_NAME
from .docker_model import DockerModel
from .go_json import ConfigRejected
from .log import log
from .outcomes import INTERNAL_ERROR, READER_STALE, SECRET_READABLE, WRITTEN_IN_PLACE, AgentError

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


def write_as_user(directory, name, content, mode, create_dir, *, in_place=False):
    """Replace ``name`` in one of the user's credential directories (run as the user, see run_as_user);
    in place when asked, or when name turns out to be a mount point (rename: EBUSY)."""
    dir_fd = user_dir_fd(directory, create=create_dir)
    try:
        remove_stale_temps(dir_fd, name)
        if not in_place:
            try:
                return replace_file_at(dir_fd, name, content, mode)
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise
                remove_stale_temps(dir_fd, name)
        update_in_place_at(dir_fd, name, content, mode)
    finally:
        os.close(dir_fd)


def held_by_inode(run, account, user, path):
    """Where one of the user's files is held by its inode (mounted on its own in some mount namespace,
    or hard-linked): those places need it written in place. Readers left on a copy an earlier rename
    replaced are reported (reader_stale): nothing written to this file reaches them any more."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return []
    if not stat.S_ISREG(info.st_mode):
        return []
    live, stale = run.mounts.readers(path, info)
    if stale and path not in run.mounts.reported:
        run.mounts.reported.append(path)
        message = "%s: %s is mounted at %s on a copy replaced since (//deleted)" % (
            user.name,
            shown_name(account, path),
            ", ".join(stale[:3]),
        )
        log(message)
        run.report.notices.append((READER_STALE, message))
    if info.st_nlink > 1:
        live.append("%d hard links" % info.st_nlink)
    return live


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
    if written.holds_secrets() and mode & 0o077 and not keep_shared_mode(run, account, auth_file.path, mode):
        run.report.tightened(user, shown_name(account, auth_file.path), mode)
        mode = SECRET_FILE_MODE
    if auth_file.exists:
        backup = backup_name(name)
        run_as_user(account, write_as_user, directory, backup, auth_file.raw, SECRET_FILE_MODE, False)
        if auth_file.backup_mode is not None:
            run.report.tightened(
                user, shown_name(account, backup_name(auth_file.path)), auth_file.backup_mode
            )
    held = held_by_inode(run, account, user, auth_file.path) if auth_file.exists else []
    write = functools.partial(write_as_user, in_place=bool(held))
    run_as_user(account, write, directory, name, content, mode, create_dir)
    if held:
        message = "%s: %s is held by its inode (%s): written in place" % (
            user.name,
            shown_name(account, auth_file.path),
            ", ".join(held[:3]),
        )
        log(message)
        run.report.notices.append((WRITTEN_IN_PLACE, message))
        user.in_place = True
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


def shared_with(run, account, path):
    """Who else reads this file, when its mode lets them (making it owner-only would cut them off):
    other users whose clients read it, or "other users" for a file outside the user's home in a
    directory others may enter (a DOCKER_CONFIG or REGISTRY_AUTH_FILE set in /etc/environment)."""
    others = [name for name in getattr(run, "readers", {}).get(path, []) if name != account.name]
    try:
        mode, parent = os.stat(path).st_mode, os.stat(os.path.dirname(path)).st_mode
    except OSError:
        return []
    if not mode & 0o044:
        return []
    outside = not path.startswith(account.home.rstrip("/") + "/")
    return others or (["other users"] if outside and parent & 0o011 else [])


def keep_shared_mode(run, account, path, mode):
    """True (reported, secret_readable) when a file others read keeps the mode that lets them: the agent
    never leaves a reader worse off; its credentials stay readable by them, as their owner chose."""
    others = shared_with(run, account, path)
    if others:
        message = "%s: %s is %04o and read by %s too: mode kept, its credentials readable by them" % (
            account.name,
            shown_name(account, path),
            mode,
            ", ".join(others[:3]),
        )
        if (SECRET_READABLE, message) not in run.report.notices:
            log(message)
            run.report.notices.append((SECRET_READABLE, message))
    return bool(others)
