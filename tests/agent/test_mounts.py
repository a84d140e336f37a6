"""Finding the readers that hold a user's file by its inode (agent/mounts.py), with real mounts.

A single-file bind mount made in a namespace of its own (`unshare --mount`, as a container runtime
does for `-v file:/path`) shows in that namespace's /proc/<pid>/mountinfo with the file's path as
its root; after a rename over the file the root ends `//deleted` and the mount keeps the old inode
(proc(5); the experiment in watchtower #596). Both are what Mounts.readers reports.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.mounts import Mounts, unescape
from tests.agent.mount_readers import bind_mounted_reader, seen_by


def test_a_file_bind_mounted_in_another_namespace_is_found_by_its_inode(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".docker" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_bytes(b"{}\n")
    other = tmp_path / "other" / "config.json"  # same name, another file: not a reader of ours
    other.parent.mkdir()
    other.write_bytes(b"{}\n")
    target = str(tmp_path / "container" / "config.json")
    with (
        bind_mounted_reader(str(config), target) as pid,
        bind_mounted_reader(str(other), str(tmp_path / "container" / "other.json")),
    ):
        live, stale = Mounts().readers(str(config), config.stat())
        assert (live, stale) == ([f"{pid}:{target}"], [])

        temp = config.with_name("config.json.new")
        temp.write_bytes(b'{"auths": {}}\n')
        os.rename(temp, config)  # what docker login does

        live, stale = Mounts().readers(str(config), config.stat())
        assert (live, stale) == ([], [f"{pid}:{target}"])
        assert seen_by(pid, target)[0] == b"{}\n", "the reader kept the old copy"


def test_a_file_nobody_mounts_has_no_readers(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(b"{}")
    assert Mounts().readers(str(config), config.stat()) == ([], [])


def test_mountinfo_fields_are_unescaped() -> None:
    r"""proc(5): "space, tab, newline and backslash are escaped as \040, \011, \012, \134"."""
    assert unescape(r"/home/a\040b/.docker/config.json") == "/home/a b/.docker/config.json"
    assert unescape(r"/x\134y") == "/x\\y"
