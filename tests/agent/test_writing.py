"""Writing a user's docker config as the user (agent/writing.py): atomic, backed up, owner-only secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.config_file import BACKUP_NAME
from agent.outcomes import AgentError
from agent.reading import read_config
from agent.result import Report
from agent.writing import TEMP_SUFFIX, save_config
from tests.agent.user_files import NOBODY, REGISTRY, b64, make_config


class FakeRun:
    """What save_config needs of a run: the report it notes tightened modes in."""

    def __init__(self) -> None:
        self.report = Report("helper")
        self.user = self.report.user("nobody")


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
