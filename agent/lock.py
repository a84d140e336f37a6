"""One run at a time on an instance: an exclusive lock on a root-only tmpfs."""

import errno
import fcntl
import os

# /run is a root-only tmpfs on every supported distribution, writable even when / is read-only.
LOCK_FILE = "/run/ecr-fleet-auth.lock"


def acquire_lock(path):
    """An fd holding an exclusive flock on path, or None when another run holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd
