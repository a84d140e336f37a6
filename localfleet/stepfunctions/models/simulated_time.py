"""Putting an execution of moto's interpreter on simulated time: the clock seam of Step Functions.

moto's interpreter runs on real threads in real time: a Distributed Map starts ``MaxConcurrency``
worker threads, each takes the next item (in order: ``JobPool.next_job``) as soon as its last one
ended, and every Task, Wait and Retry waits in real seconds. The functions its Lambda tasks
reach here sleep on a ``SimulatedClock`` instead, and the children of a Map are many runners at
once. So ``SimulatedTimeline`` lets the interpreter decide everything it decides — which states run,
which items, how many children at once, what each returns, every Catch — and decides only *when*
each invocation happens in simulated time:

* the Map's children run one at a time in real time, in item order (``install`` wraps moto's
  ``DistributedItemProcessorWorker._eval_job``: a worker waits until its item is next), so a child
  runs alone and whatever it sleeps passes in simulated time only;
* each child starts, in simulated time, when a slot of the Map run frees: the Map run's
  ``MaxConcurrency`` slots (as moto parsed it: ``MapRunRecord.max_concurrency``) all free when the
  Map starts, and a child's slot frees when it ends, its successor taking the earliest free slot —
  what the interpreter's workers do in real time (a worker takes the next item the moment its child
  ends), with the children's durations as they passed on simulated time;
* a state outside a Map (the plan, the merge) starts when everything before it ended; a Retry's
  interval is added to its flow's time instead of slept (``retrier_decl.time``).

A function reached through ``LambdaTasks`` asks ``begin()`` when its invocation starts (a runner of
the bench builds the world of a child on a fresh clock at that moment) and says ``ran(seconds)``
when it ends. Children that share one world on one clock (the tests' small organizations) start
when that clock says — later than their slot, since they ran one after the other — and only their
durations count, so the execution's figures (``elapsed``) are the same. Assumed, and true of the
organization's state machine: nothing outside a Map runs while it runs, and one Lambda task per state.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as workers,
)

# A Distributed Map without MaxConcurrency runs up to 10,000 child executions at once (Step Functions
# Developer Guide, "Distributed Map state": MaxConcurrency).
UNLIMITED_CHILDREN = 10_000


class Patcher(Protocol):
    def setattr(self, target: Any, name: str, value: Any) -> None: ...


@dataclass
class _MapRun:
    """One Map run's slots (when each frees) and the next item to run."""

    slots: list[float]
    next_item: int = 0


@dataclass
class _Flow:
    """Where one line of states stands in simulated time (outside a Map, or one child from ``began``)."""

    now: float
    began: float = 0.0


@dataclass
class SimulatedTimeline:
    """An execution's simulated time from ``start``; ``elapsed`` once it ended."""

    start: float
    top: _Flow = field(init=False)
    latest: float = field(init=False)  # the end of the last invocation that ended
    children: int = 0  # children run
    child_seconds: list[float] = field(default_factory=list)  # each child's simulated duration
    _runs: dict[str, _MapRun] = field(default_factory=dict)
    _child: _Flow | None = None
    _turn: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.top = _Flow(self.start)
        self.latest = self.start

    @property
    def elapsed(self) -> float:
        return max(self.latest, self.top.now) - self.start

    # --- the functions' side -------------------------------------------------------------------
    def begin(self) -> float:
        """When the invocation about to run starts, in simulated time."""
        flow = self._flow()
        if flow is self.top:  # after everything before it, the Map's children included
            flow.now = max(flow.now, self.latest)
        return flow.now

    def ran(self, seconds: float) -> None:
        """The invocation that began last took ``seconds`` of simulated time."""
        flow = self._flow()
        flow.now += max(0.0, seconds)
        self.latest = max(self.latest, flow.now)

    def wait(self, seconds: float) -> None:
        """A Retry's interval: its flow goes on that much later (nothing sleeps)."""
        self._flow().now += max(0.0, seconds)

    def _flow(self) -> _Flow:
        return self._child if self._child is not None else self.top

    # --- the interpreter's side ------------------------------------------------------------------
    def install(self, patch: Patcher) -> None:
        """Wrap moto's distributed worker and retrier (undone with ``patch``)."""
        original = workers.DistributedItemProcessorWorker._eval_job
        timeline = self

        def eval_job(worker: Any, env: Any, job: Any) -> None:
            record = worker._map_run_record
            timeline._start_child(record.map_run_arn, int(record.max_concurrency), job.job_index)
            try:
                original(worker, env, job)
            finally:
                timeline._end_child(record.map_run_arn)

        patch.setattr(workers.DistributedItemProcessorWorker, "_eval_job", eval_job)
        patch.setattr(retrier_decl, "time", SimpleNamespace(sleep=self.wait))

    def _start_child(self, map_run: str, max_concurrency: int, item: int) -> None:
        with self._turn:
            run = self._runs.get(map_run)
            if run is None:  # the Map starts when everything before it ended
                at = max(self.top.now, self.latest)
                run = self._runs[map_run] = _MapRun([at] * (max_concurrency or UNLIMITED_CHILDREN))
            self._turn.wait_for(lambda: run.next_item == item and self._child is None)
            at = heapq.heappop(run.slots)
            self._child = _Flow(at, at)

    def _end_child(self, map_run: str) -> None:
        with self._turn:
            run, child = self._runs[map_run], self._child
            assert child is not None
            heapq.heappush(run.slots, child.now)
            self.latest = max(self.latest, child.now)
            self.children += 1
            self.child_seconds.append(child.now - child.began)
            run.next_item += 1
            self._child = None
            self._turn.notify_all()
