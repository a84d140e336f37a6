"""Executors: what runs a shell step on a simulated instance (``ssm.agent_interface``).

``CannedExecutor`` answers a fixed result that lasts ``delay`` seconds on the
engine's clock (thousands of instances cost nothing, on a real or a simulated
clock); ``SubprocessExecutor`` runs the script on this machine as the SSM agent
would. ``SandboxInstance`` (``sandbox_instance.py``) runs it inside an instance's
own root; ``CannedAgent`` (``canned_agent.py``) plays the product's agent.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from ..ssm.models.agent_interface import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult

# The agent's step environment: PATH set, HOME not (FACTS.md, "How the SSM agent runs a shell step").
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CannedExecutor:
    """Returns a fixed result that lasts ``delay`` seconds on the engine's clock.

    ``delay`` longer than the step's timeout gives a timed-out result at the
    timeout, as a real script would. ``last_script``/``last_env`` keep what the
    engine handed over, for tests that want to look at it.
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
            return ExecutionResult(
                STOPPED_PREEMPTIVELY_EXIT_CODE, "", "", timed_out=True, duration=timeout_seconds
            )
        return ExecutionResult(
            self.result.exit_code, self.result.stdout, self.result.stderr, duration=self.delay
        )


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
