"""Running a tool (agent/commands.py): never past the run's deadline."""

from __future__ import annotations

import subprocess
import time

import pytest

import agent.commands
from agent.commands import run_command


def test_the_run_deadline_bounds_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent.commands, "DEADLINE", [time.monotonic() - 1])
    with pytest.raises(subprocess.TimeoutExpired):
        run_command(["true"], {})
