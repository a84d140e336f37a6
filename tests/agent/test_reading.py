"""Reading a user's docker config as root (agent/reading.py): as docker would load it, or refused, untouched
(symlinks, foreign owners, what is not a regular file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.outcomes import AgentError
from agent.reading import read_config
from tests.agent.user_files import NOBODY, make_config


def test_absent_config_reads_as_empty(model: Any, account: Any) -> None:
    config = read_config(account, model)
    assert (config.exists, config.view.auths, config.view.creds_store) == (False, {}, "")


def test_config_is_read_with_its_mode(model: Any, account: Any, home: Path) -> None:
    make_config(home, b'{"auths": {}}', mode=0o640)
    config = read_config(account, model)
    assert (config.view.auths, config.mode, config.raw) == ({}, 0o640, b'{"auths": {}}')


@pytest.mark.parametrize(
    "content",
    [
        b'{"auths": {',
        b"[1, 2]",
        b'"text"',
        b'{"auths": []}',
        b'{"credHelpers": "x"}',
        b"\xff\xfe",
        b'{"features": {"buildkit": true}}',
        b'{"auths": {"r": {"auth": "bm9jb2xvbg=="}}}',
    ],
)
def test_corrupt_configs_are_reported(model: Any, account: Any, home: Path, content: bytes) -> None:
    make_config(home, content)
    with pytest.raises(AgentError) as raised:
        read_config(account, model)
    assert raised.value.reason == "config_corrupt"


def test_a_config_its_owner_cannot_read_is_left_alone(model: Any, account: Any, home: Path) -> None:
    """docker runs as the user: it cannot open the file, warns, starts empty, and a login would
    overwrite it (config.go load returns the error; Save writes a fresh file)."""
    make_config(home, b'{"auths": {}}', mode=0o044)
    with pytest.raises(AgentError, match="not readable") as raised:
        read_config(account, model)
    assert raised.value.reason == "config_corrupt"


def test_symlinked_config_file_is_refused(model: Any, account: Any, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    (home / ".docker").mkdir()
    os.chown(home / ".docker", NOBODY, NOBODY)
    (home / ".docker" / "config.json").symlink_to(target)
    with pytest.raises(AgentError) as raised:
        read_config(account, model)
    assert raised.value.reason == "config_unsafe"


def test_symlinked_config_dir_is_refused(model: Any, account: Any, home: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (home / ".docker").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AgentError) as raised:
        read_config(account, model)
    assert raised.value.reason == "config_unsafe"


def test_config_owned_by_someone_else_is_refused(model: Any, account: Any, home: Path) -> None:
    make_config(home, b"{}", owner=0)
    with pytest.raises(AgentError, match="not owned") as raised:
        read_config(account, model)
    assert raised.value.reason == "config_unsafe"


def test_a_fifo_in_place_of_the_config_is_refused_without_blocking(
    model: Any, account: Any, home: Path
) -> None:
    (home / ".docker").mkdir()
    os.chown(home / ".docker", NOBODY, NOBODY)
    os.mkfifo(home / ".docker" / "config.json")
    os.chown(home / ".docker" / "config.json", NOBODY, NOBODY)
    with pytest.raises(AgentError) as raised:
        read_config(account, model)
    assert raised.value.reason == "config_unsafe"
