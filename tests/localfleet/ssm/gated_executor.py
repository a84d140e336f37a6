"""Executors that let a test hold invocations running and see how many overlap."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from localfleet.ssm import ExecutionResult


class GatedExecutor:
    """Blocks every run until ``release`` is set; records how many ran at once."""

    def __init__(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        self.release = threading.Event()
        self.running = 0
        self.peak = 0
        self.started = 0
        self._changed = threading.Condition()

    def run(self, script: str, env: Mapping[str, str], timeout_seconds: float) -> ExecutionResult:
        with self._changed:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
            self._changed.notify_all()
        self.release.wait(timeout=10)
        with self._changed:
            self.running -= 1
        return ExecutionResult(self.exit_code, "done\n", "")

    def wait_running(self, count: int, timeout: float = 5) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.running >= count, timeout)
