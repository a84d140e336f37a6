"""Who else reads a user's file through a mount of that very file, in any mount namespace.

A bind mount of a single file (`docker run -v ~/.docker/config.json:/config.json`, a CI agent's
volume, a pod's subPath) pins the inode it found when it was made. A write by rename (temp file,
then rename over the name: what docker login and an atomic writer do) gives the name a new inode
and leaves every such mount on the old one for good; its mountinfo root then ends `//deleted`
(proc(5) /proc/<pid>/mountinfo; watchtower #451, #596). So a file mounted elsewhere is written in
place (writing.py), and a mount already left on a replaced copy is reported: only restarting that
reader, or mounting the directory instead, brings it back.

Found from /proc alone, as root: one process per mount namespace (/proc/<pid>/ns/mnt), its
mountinfo's mounts of a file by the same name, and the inode a stat through /proc/<pid>/root sees.
"""

import os
import re

DELETED = "//deleted"


def unescape(field):
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


class Mounts(object):
    """The file mounts of every mount namespace on the host, read once per run (lazily)."""

    def __init__(self, proc="/proc"):
        self.proc = proc
        self.found = None
        self.reported = []  # users whose stale readers were reported already

    def entries(self):
        """[(pid, mount point, root)]: mounts whose root is not a whole filesystem."""
        if self.found is None:
            self.found = []
            for pid in self.one_pid_per_namespace():
                try:
                    with open("%s/%s/mountinfo" % (self.proc, pid), encoding="utf-8", errors="replace") as f:
                        lines = f.read().splitlines()
                except OSError:  # the process ended meanwhile
                    continue
                for line in lines:
                    fields = line.split(" ")
                    if len(fields) > 4 and fields[3] != "/":
                        self.found.append((pid, unescape(fields[4]), unescape(fields[3])))
        return self.found

    def one_pid_per_namespace(self):
        seen = {}
        try:
            names = sorted((name for name in os.listdir(self.proc) if name.isdigit()), key=int)
        except OSError:
            return []
        for name in names:
            try:
                seen.setdefault(os.readlink("%s/%s/ns/mnt" % (self.proc, name)), name)
            except OSError:  # ended, or a kernel thread
                continue
        return list(seen.values())

    def readers(self, path, info):
        """(live, stale): the "<pid>:<mount point>" places where the file at path (of stat info) is
        mounted on its own, and those still showing a copy of it that a rename replaced."""
        name = os.path.basename(path)
        live, stale = [], []
        for pid, point, root in self.entries():
            if root.endswith(DELETED):
                # root is relative to its filesystem: /home/alice/... shows as /alice/... on a /home fs
                if os.path.basename(root[: -len(DELETED)]) == name and path.endswith(root[: -len(DELETED)]):
                    stale.append("%s:%s" % (pid, point))
                continue
            if os.path.basename(root) != name:
                continue
            try:
                seen = os.stat("%s/%s/root%s" % (self.proc, pid, point))
            except OSError:
                continue
            if (seen.st_dev, seen.st_ino) == (info.st_dev, info.st_ino):
                live.append("%s:%s" % (pid, point))
        return live, stale
