"""Writing a user's docker config as the user (agent/writing.py): atomic, backed up, owner-only secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.config_file import BACKUP_NAME
from agent.mounts import Mounts
from agent.outcomes import AgentError
from agent.reading import read_config
from agent.result import Report
from agent.writing import TEMP_SUFFIX, save_config, write_as_user
from tests.agent.mount_readers import bind_mounted_reader, seen_by
from tests.agent.user_files import NOBODY, REGISTRY, b64, make_config


class FakeRun:
    """What save_config needs of a run: the report it notes tightened modes in, the host's mounts."""

    def __init__(self) -> None:
        self.report = Report("helper")
        self.user = self.report.user("nobody")
        self.mounts = Mounts()


def save(account: Any, auth_file: Any) -> FakeRun:
    run = FakeRun()
    save_config(run, account, run.user, auth_file)
    return run


def helper_edit(auth_file: Any) -> Any:
    auth_file.use_helper(REGISTRY)
    return auth_file


def test_new_config_is_created_0600_by_the_user(model: Any, account: Any, home: Path) -> None:
    save(account, helper_edit(read_config(account, model)))
    path = home / ".docker" / "config.json"
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, NOBODY)
    assert stat.S_IMODE((home / ".docker").stat().st_mode) == 0o700
    assert json.loads(path.read_bytes()) == {"credHelpers": {REGISTRY: "ecr-login"}}
    assert not (home / ".docker" / BACKUP_NAME).exists(), "nothing to back up"


def test_a_config_without_credentials_keeps_its_mode_and_its_backup_is_owner_only(
    model: Any, account: Any, home: Path
) -> None:
    path = make_config(home, b'{"detachKeys": "ctrl-e,e"}', mode=0o644)
    run = save(account, helper_edit(read_config(account, model)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "nothing secret in it: the owner's choice stands"
    assert path.stat().st_uid == NOBODY
    backup = home / ".docker" / BACKUP_NAME
    assert backup.read_bytes() == b'{"detachKeys": "ctrl-e,e"}'
    assert (stat.S_IMODE(backup.stat().st_mode), backup.stat().st_uid) == (0o600, NOBODY)
    assert run.report.notices == []


def test_a_config_holding_credentials_is_made_owner_only_and_that_is_reported(
    model: Any, account: Any, home: Path
) -> None:
    original = json.dumps({"auths": {"ghcr.io": {"auth": b64("gh:secret")}}}).encode()
    path = make_config(home, original, mode=0o644)
    run = save(account, helper_edit(read_config(account, model)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    backup = home / ".docker" / BACKUP_NAME
    assert (backup.read_bytes(), stat.S_IMODE(backup.stat().st_mode)) == (original, 0o600)
    assert run.user.as_dict()["mode_tightened"] == {"config.json": "0644"}
    assert run.report.result()["reason"] == "mode_tightened"


def test_a_write_interrupted_before_the_rename_leaves_the_old_config(
    model: Any, account: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_config(home, b'{"old": true}')
    config = helper_edit(read_config(account, model))
    real_rename = os.rename

    def killed_before_config_rename(src: str, dst: str, **kwargs: Any) -> None:
        if dst == "config.json":
            os._exit(9)  # the process dies here, as a SIGKILL would leave it
        real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "rename", killed_before_config_rename)
    with pytest.raises(AgentError):
        save(account, config)
    monkeypatch.undo()
    assert path.read_bytes() == b'{"old": true}'
    leftovers = [name for name in os.listdir(home / ".docker") if name.endswith(TEMP_SUFFIX)]
    assert leftovers, "the interrupted write left its temp file"

    save(account, helper_edit(read_config(account, model)))
    assert json.loads(path.read_bytes()) == {"old": True, "credHelpers": {REGISTRY: "ecr-login"}}
    assert not [name for name in os.listdir(home / ".docker") if name.endswith(TEMP_SUFFIX)]


def test_writes_cannot_be_redirected_by_a_symlink_planted_after_the_check(
    model: Any, account: Any, home: Path, tmp_path: Path
) -> None:
    config = helper_edit(read_config(account, model))  # no .docker yet
    victim = tmp_path / "victim"
    victim.mkdir()
    (home / ".docker").symlink_to(victim)  # the user swaps in a symlink between read and write
    with pytest.raises(AgentError) as raised:
        save(account, config)
    assert raised.value.reason == "config_unsafe"
    assert os.listdir(victim) == []


# ---------------------------------------------------------------- a file held by its inode elsewhere


def test_a_config_bind_mounted_elsewhere_is_written_in_place_and_the_reader_sees_it(
    model: Any, account: Any, home: Path, tmp_path: Path
) -> None:
    """A single-file bind mount pins the inode (watchtower #596: after docker login's rename the
    container keeps `config.json//deleted`); written in place, the mount shows the new file at once."""
    original = json.dumps({"auths": {"ghcr.io": {"auth": b64("gh:secret")}}, "detachKeys": "ctrl-e,e"})
    path = make_config(home, original.encode(), mode=0o600)
    inode = path.stat().st_ino
    target = str(tmp_path / "container" / "config.json")
    with bind_mounted_reader(str(path), target) as pid:
        run = save(account, helper_edit(read_config(account, model)))
        content, seen_inode = seen_by(pid, target)
    info = path.stat()
    assert (info.st_ino, stat.S_IMODE(info.st_mode), info.st_uid) == (inode, 0o600, NOBODY)
    assert seen_inode == inode and content == path.read_bytes()
    assert json.loads(content)["credHelpers"] == {REGISTRY: "ecr-login"}
    assert (home / ".docker" / BACKUP_NAME).read_bytes() == original.encode(), "backed up first"
    assert run.user.as_dict()["in_place"] is True
    assert run.report.result()["reason"] == "written_in_place"
    assert f"{pid}:{target}" in run.report.result()["message"]


def test_a_hard_linked_config_is_written_in_place_so_every_name_sees_it(
    model: Any, account: Any, home: Path
) -> None:
    """A second name for the config (a hard link, say for a service that reads another path) is the
    same inode: a rename would leave that name on the old copy."""
    path = make_config(home, b'{"auths": {}}', mode=0o644)
    other = home / "service-config.json"
    os.link(path, other)
    save(account, helper_edit(read_config(account, model)))
    assert os.path.samefile(path, other)
    assert json.loads(other.read_bytes()) == {"auths": {}, "credHelpers": {REGISTRY: "ecr-login"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "no credentials in it: the mode stands"


@pytest.mark.parametrize("grows", [True, False], ids=["longer", "shorter"])
def test_an_in_place_write_never_leaves_the_file_empty_or_with_old_bytes_after_the_new_json(
    account: Any, home: Path, monkeypatch: pytest.MonkeyPatch, grows: bool
) -> None:
    """An empty config.json is an error to containers/image ("unexpected end of JSON input"), and old
    bytes after the new JSON are too ("invalid character ... after top-level value"): a truncating
    write, or a write of a shorter JSON over a longer one, would show one of them to a reader that
    reads meanwhile. After every write and truncation the agent makes, the file is one whole JSON
    document (old or new) and whitespace. What no writer can prevent is a reader whose read() runs
    during one of these calls: Linux copies page-cache bytes without a lock against reads (a tight
    loop of reads does catch such a mix now and then); writing.py's docstring says so."""
    long_text = json.dumps({"auths": {f"r{n}.example": {"auth": b64(f"u:{n}")} for n in range(40)}})
    short_text = json.dumps({"credHelpers": {REGISTRY: "ecr-login"}})
    old, new = (short_text, long_text) if grows else (long_text, short_text)
    path = make_config(home, old.encode())
    inode = path.stat().st_ino
    seen: list[object] = []
    real_pwrite, real_ftruncate = os.pwrite, os.ftruncate

    def look() -> None:
        seen.append(json.loads(path.read_bytes()))  # raises on a file no JSON reader would accept

    def pwrite(fd: int, data: Any, offset: int) -> int:
        done = real_pwrite(fd, data, offset)
        look()
        return done

    def ftruncate(fd: int, length: int) -> None:
        real_ftruncate(fd, length)
        look()

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    write_as_user(
        account.config_dir, "config.json", new.encode(), 0o600, False, in_place=True
    )  # here, not forked: seen
    assert seen and set(map(json.dumps, seen)) <= {json.dumps(json.loads(old)), json.dumps(json.loads(new))}
    assert path.read_bytes() == new.encode(), "padding cut off at the end"
    assert path.stat().st_ino == inode
