"""What runs a shell step on a simulated instance.

The emulator hands every executor the same thing the SSM agent's
``aws:runShellScript`` plugin would run: the step's ``runCommand`` lines joined
with newlines, the ``SSM_<Name>`` environment of ``ENV_VAR`` parameters, and
the step's execution timeout. Executors differ only in where the script runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# amazon-ssm-agent (agent/appconfig, unix): "Exit Code for a command that exits
# before completion (generally due to timeout or cancel)" = 128 + SIGKILL.
STOPPED_PREEMPTIVELY_EXIT_CODE = 137

# The agent's step environment: PATH set, HOME not (FACTS.md, "How the SSM agent runs a shell step").
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ExecutionResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False


class Executor(Protocol):
    """Runs one shell step. Must be safe to call from several threads at once."""

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult: ...


class CannedExecutor:
    """Returns a fixed result after ``delay`` seconds; thousands of instances cost nothing.

    ``delay`` longer than the step's timeout gives a timed-out result at the
    timeout, as a real script would. ``seen`` keeps the last script and env for
    tests that want to look at what the emulator handed over.
    """

    def __init__(self, stdout: str = "", stderr: str = "", exit_code: int = 0, delay: float = 0.0) -> None:
        self.result = ExecutionResult(exit_code=exit_code, stdout=stdout, stderr=stderr)
        self.delay = delay
        self.runs = 0
        self.last_script: str | None = None
        self.last_env: dict[str, str] = {}
        self._lock = threading.Lock()

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult:
        with self._lock:
            self.runs += 1
            self.last_script = script
            self.last_env = dict(env)
        if self.delay >= timeout_seconds:
            time.sleep(timeout_seconds)
            return ExecutionResult(STOPPED_PREEMPTIVELY_EXIT_CODE, "", "", timed_out=True)
        if self.delay > 0:
            time.sleep(self.delay)
        return self.result


class SubprocessExecutor:
    """Runs the step as the SSM agent does: ``sh -c <orchestration dir>/_script.sh``.

    Each run gets its own root-only (0700) orchestration directory under
    ``work_dir`` holding ``_script.sh`` (0700), removed afterwards unless
    ``keep_orchestration`` is set. The environment is ``base_env`` (PATH only by
    default — no HOME, like the agent's service environment) plus the
    ``SSM_<Name>`` variables. On timeout the whole process group is killed and
    the result carries exit code 137, as the agent reports.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str] | None = None,
        base_env: Mapping[str, str] | None = None,
        keep_orchestration: bool = False,
    ) -> None:
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.base_env = dict(base_env) if base_env is not None else {"PATH": DEFAULT_PATH}
        self.keep_orchestration = keep_orchestration

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult:
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        orchestration = Path(tempfile.mkdtemp(prefix="orchestration-", dir=self.work_dir))  # mode 0700
        try:
            script_path = orchestration / "_script.sh"
            script_path.write_text(script)
            script_path.chmod(0o700)
            return self._run_script(script_path, {**self.base_env, **env}, timeout_seconds)
        finally:
            if not self.keep_orchestration:
                shutil.rmtree(orchestration, ignore_errors=True)

    @staticmethod
    def _run_script(script_path: Path, env: dict[str, str], timeout_seconds: float) -> ExecutionResult:
        process = subprocess.Popen(
            ["sh", "-c", shlex.quote(str(script_path))],
            cwd=script_path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group, so a timeout kills every child too
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return ExecutionResult(
                STOPPED_PREEMPTIVELY_EXIT_CODE, _text(stdout), _text(stderr), timed_out=True
            )
        return ExecutionResult(process.returncode, _text(stdout), _text(stderr))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
