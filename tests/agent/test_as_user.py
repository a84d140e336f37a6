"""Acting as a user (agent/as_user.py): the kernel, not the agent's checks, bounds what a user step does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.as_user import run_as_user
from agent.outcomes import AgentError


def test_user_steps_run_with_the_users_uid_not_roots(account: Any, tmp_path: Path) -> None:
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o700)

    def write_into_root_dir() -> None:
        (root_only / "planted").write_text("x")

    with pytest.raises(AgentError) as raised:
        run_as_user(account, write_into_root_dir)
    assert raised.value.reason == "config_unwritable"
    assert not (root_only / "planted").exists()
