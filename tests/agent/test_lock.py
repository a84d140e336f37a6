"""One run at a time (agent/lock.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.lock import acquire_lock


def test_lock_admits_one_run_at_a_time(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.lock")
    first = acquire_lock(path)
    try:
        assert first is not None
        assert acquire_lock(path) is None
    finally:
        os.close(first)
    again = acquire_lock(path)
    assert again is not None
    os.close(again)


def test_lock_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("")
    (tmp_path / "agent.lock").symlink_to(tmp_path / "target")
    with pytest.raises(OSError, match="symbolic links"):
        acquire_lock(str(tmp_path / "agent.lock"))
