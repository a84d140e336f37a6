"""The agent's entry (agent/main.py): a result for every run, never an exception."""

from __future__ import annotations

import os
from pathlib import Path

from agent.lock import acquire_lock
from agent.main import run
from tests.agent.user_files import REGISTRY
from tests.support.prerequisites import require


def ssm_environ(**overrides: str) -> dict[str, str]:
    values = {
        "SSM_Action": "check",
        "SSM_Registries": REGISTRY,
        "SSM_Users": "auto",
        "SSM_HelperVersion": "0.12.0",
        "SSM_ReleaseBaseUrl": "https://mirror.example.com",
        "SSM_KeepUserDockerLogin": "false",
        "PATH": os.environ.get("PATH", ""),
    }
    values.update(overrides)
    return values


def test_run_reports_invalid_parameters_as_failed(tmp_path: Path) -> None:
    result = run(ssm_environ(SSM_Users="a b"), lock_path=str(tmp_path / "l"), state_dir=str(tmp_path))
    assert (result["outcome"], result["reason"]) == ("failed", "invalid_parameter")
    assert "Users" in result["message"]


def test_run_while_locked_is_skipped(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root")
    lock = str(tmp_path / "agent.lock")
    held = acquire_lock(lock)
    try:
        result = run(ssm_environ(), lock_path=lock, state_dir=str(tmp_path))
    finally:
        os.close(held)
    assert (result["outcome"], result["reason"]) == ("skipped", "locked")
