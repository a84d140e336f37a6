"""The shell shim (agent/entrypoint.sh): finds a Python, else still prints the one result line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ecr_fleet_auth_cdk.document.script import ENTRYPOINT_SH
from tests.support.prerequisites import require


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_shim_without_python_prints_the_no_python_line(shell: str, tmp_path: Path) -> None:
    require(shutil.which(shell) is not None, shell)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    done = subprocess.run(
        [shutil.which(shell) or shell, str(ENTRYPOINT_SH)],
        env={"PATH": str(bin_dir), "SSM_Action": "refresh"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert (result["outcome"], result["reason"], result["action"]) == ("failed", "no_python", "refresh")
    assert "no Python" in done.stderr


def test_shim_never_echoes_an_unknown_action(tmp_path: Path) -> None:
    done = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT_SH)],
        env={"PATH": str(tmp_path), "SSM_Action": '"};rm -rf /;{"'},
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(done.stdout)["action"] is None


def test_shim_runs_the_agent_it_is_given(tmp_path: Path) -> None:
    fake_agent = tmp_path / "agent.py"
    fake_agent.write_text("import sys; print('ran with', sys.flags.isolated)\n")
    done = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT_SH)],
        env={"PATH": "/usr/bin:/bin", "ECR_FLEET_AUTH_AGENT_PY": str(fake_agent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ran with 1\n")
