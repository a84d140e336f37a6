"""Time as the runner sees it, so tests and benchmarks can run a long wait in milliseconds.

``concurrently`` runs a run's (account, region) pairs at once, each on its thread: on a
simulated clock the threads must take turns on simulated time, so the clock decides how.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Tasks in, their results out (in the tasks' order), on up to this many threads at once.
Concurrently = Callable[[Sequence[Callable[[], Any]], int], list[Any]]


def in_threads(tasks: Sequence[Callable[[], Any]], workers: int) -> list[Any]:
    """Each task's result, the tasks run on up to ``workers`` threads."""
    if len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks))), thread_name_prefix="pair") as pool:
        return list(pool.map(lambda task: task(), tasks))


@dataclass(frozen=True)
class Clock:
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    concurrently: Concurrently = in_threads


SYSTEM_CLOCK = Clock()
