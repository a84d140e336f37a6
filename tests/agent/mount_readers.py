"""A reader of a single file bind-mounted into its own mount namespace, as a container has it.

`unshare --mount` makes the namespace (as `docker run -v file:/config.json` does for a container),
`mount --bind` pins the file's inode there (proc(5) mountinfo; watchtower #451, #596). The reader is
a process that sleeps in that namespace; what it sees is read through /proc/<pid>/root.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence

from tests.support.prerequisites import require


@contextlib.contextmanager
def bind_mounted_reader(source: str, target: str, prefix: Sequence[str] = ()) -> Iterator[int]:
    """A process in a new mount namespace where ``source`` is bind-mounted on ``target`` (a file made
    for it); yields its pid and ends it afterwards. ``prefix`` runs it
    elsewhere (nsenter into an instance's namespace and root)."""
    require(os.geteuid() == 0, "root (unshare --mount, mount --bind)")
    script = (
        'mkdir -p "$(dirname "$2")" && touch "$2" && mount --bind "$1" "$2" && echo ready && exec sleep 600'
    )
    reader = subprocess.Popen(
        [*prefix, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", source, target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert reader.stdout is not None
        line = reader.stdout.readline()
        assert line == b"ready\n", reader.stderr.read() if reader.stderr else line
        yield reader.pid  # nsenter, unshare and sh each exec the next: one process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(reader.pid, signal.SIGKILL)
        reader.wait()


def seen_by(pid: int, target: str) -> tuple[bytes, int]:
    """(bytes, inode) of target as the reader sees it."""
    path = f"/proc/{pid}/root{target}"
    with open(path, "rb") as handle:
        return handle.read(), os.fstat(handle.fileno()).st_ino
