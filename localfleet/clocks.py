"""Time for the simulator: one ``Clock`` protocol, a real clock and a simulated one.

The Run Command engine never reads the time or starts a thread itself. It asks its
clock what time it is, schedules what happens next ("at T, deliver this
invocation") and hands slow work (an executor running a script) to the clock. So
the same engine code produces the same statuses in both modes:

- ``RealClock``: ``time.monotonic``; one scheduler thread runs actions when they
  fall due; work runs on a thread pool and its completion is scheduled as an
  action. For real clients over HTTP (``make demo``, the end-to-end tests).
- ``SimulatedClock``: time moves only when someone sleeps on it; the actions due
  by then run, in time order, on the sleeper's thread, and work runs inline. For
  clients in this process under botocore (the runner's tests, the benchmarks): a
  ten-minute run takes milliseconds and every run is the same. Work a client runs
  at once (the runner's (account, region) pairs, each on its thread) goes through
  ``concurrently``: the threads take turns, one running at a time, and time moves
  only when every one of them sleeps, to the earliest wake-up: five threads each
  sleeping 5 s take 5 simulated seconds, not 25, and every run is still the same.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

T = TypeVar("T")
_log = logging.getLogger(__name__)

# Where simulated wall-clock time starts (any fixed moment: runs are reproducible).
SIMULATED_WALL_START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


class Scheduled:
    """An action waiting for its time; ``cancel`` keeps it from running."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (the engine's deadlines and schedules)."""
        ...

    def time(self) -> float:
        """Wall-clock time, epoch seconds (what the API shows: RequestedDateTime, ...)."""
        ...

    def now(self) -> datetime:
        """Wall-clock time as an aware UTC datetime."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, action: Callable[[], None]) -> Scheduled:
        """Run ``action`` once ``monotonic()`` reaches ``when`` (at once if it already has)."""
        ...

    def run_work(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        """Run ``work`` (it must not raise) off the schedule, then ``done`` with its result as an action."""
        ...

    def settle(self) -> None:
        """Run the actions already due before looking at the state they change."""
        ...

    def close(self) -> None:
        """Stop running actions; work already running finishes on its own."""
        ...


class RealClock:
    """Real time. A daemon thread runs due actions one at a time; work runs on up to ``workers`` threads."""

    def __init__(self, workers: int = 256) -> None:
        self.workers = workers
        self._queue: list[tuple[float, int, Scheduled]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def call_at(self, when: float, action: Callable[[], None]) -> Scheduled:
        entry = Scheduled(action)
        with self._changed:
            if self._closed:
                entry.cancel()
                return entry
            heapq.heappush(self._queue, (when, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="real-clock", daemon=True)
                self._thread.start()
            self._changed.notify()
        return entry

    def run_work(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        with self._changed:
            if self._closed:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="real-clock-work")
            future = self._pool.submit(work)

        def finished(completed: Future[T]) -> None:
            if not completed.cancelled():
                result = completed.result()
                self.call_at(self.monotonic(), lambda: done(result))

        future.add_done_callback(finished)

    def settle(self) -> None:
        pass  # the scheduler thread runs actions as they fall due

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._queue.clear()
            self._changed.notify_all()
            pool, thread = self._pool, self._thread
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed:
                    if self._queue and self._queue[0][0] <= time.monotonic():
                        break
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._changed.wait(timeout)
                if self._closed:
                    return
                _, _, entry = heapq.heappop(self._queue)
            if not entry.cancelled:
                try:
                    entry.action()
                except Exception:  # a broken action must not stop the clock
                    _log.exception("scheduled action failed")


class SimulatedClock:
    """Time that moves only when someone sleeps; the actions due by then run first, in time order.

    ``slept`` records every sleep (the runner's own and, through
    ``simulate_botocore_time``, botocore's back-off).
    """

    def __init__(self, start: float = 1000.0, wall_start: datetime = SIMULATED_WALL_START) -> None:
        self.start = self._now = start
        self.wall_start = wall_start
        self.slept: list[float] = []
        self._queue: list[tuple[float, int, Scheduled]] = []
        self._order = itertools.count()
        self._turns: _Turns | None = None  # while ``concurrently`` runs
        self._local = threading.local()  # the worker (its number) this thread is, inside ``concurrently``

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self.wall_start.timestamp() + (self._now - self.start)

    def now(self) -> datetime:
        return self.wall(self._now)

    def wall(self, moment: float) -> datetime:
        """Wall-clock time at a monotonic moment."""
        return self.wall_start + timedelta(seconds=moment - self.start)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        worker: int | None = getattr(self._local, "worker", None)
        if self._turns is None or worker is None:
            self.advance(max(0.0, seconds))
        else:  # one of ``concurrently``'s threads: the others take their turns meanwhile
            self._turns.sleep(worker, self._now + max(0.0, seconds))

    def concurrently(self, tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
        """Each task's result, the tasks run on up to ``workers`` threads that take turns.

        One thread runs at a time, until it sleeps or finishes; then the thread whose
        wake-up is earliest goes on (in the order they slept, on a tie), time moving to its
        wake-up first. So simulated time passes as it would for real threads, and a run is
        reproducible. A task's exception is raised here once every task has ended. One task, or a
        call from inside a task (a second run started while the first waits), runs the tasks one
        after the other on the calling thread.
        """
        if self._turns is not None or len(tasks) <= 1:
            return [task() for task in tasks]
        count = max(1, min(workers, len(tasks)))
        pending = list(enumerate(tasks))
        results: dict[int, T] = {}
        errors: list[BaseException] = []
        turns = _Turns(self, count)

        def work(worker: int) -> None:
            self._local.worker = worker
            turns.wait_for_turn(worker)
            try:
                while pending:
                    index, task = pending.pop(0)
                    try:
                        results[index] = task()
                    except BaseException as error:  # handed to the caller
                        errors.append(error)
            finally:
                self._local.worker = None
                turns.finish()

        threads = [
            threading.Thread(target=work, args=(worker,), name=f"simulated-{worker}", daemon=True)
            for worker in range(count)
        ]
        self._turns = turns
        try:
            for thread in threads:
                thread.start()
            turns.wait_until_finished()
        finally:
            self._turns = None
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return [results[index] for index in range(len(tasks))]

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every action that falls due on the way."""
        target = self._now + seconds
        self._run_until(target)
        self._now = max(self._now, target)

    def call_at(self, when: float, action: Callable[[], None]) -> Scheduled:
        entry = Scheduled(action)
        heapq.heappush(self._queue, (when, next(self._order), entry))
        return entry

    def run_work(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        done(work())

    def settle(self) -> None:
        self._run_until(self._now)

    def close(self) -> None:
        self._queue.clear()

    def pending(self) -> int:
        """Actions still scheduled (cancelled ones included)."""
        return len(self._queue)

    def _run_until(self, target: float) -> None:
        # Re-entrant: an action may schedule more (run in this same loop when due), and a
        # sleeper woken inside a request may advance time itself; time never goes back.
        while self._queue and self._queue[0][0] <= target:
            when, _, entry = heapq.heappop(self._queue)
            self._now = max(self._now, when)
            if not entry.cancelled:
                entry.action()


class _Turns:
    """Whose turn it is among ``SimulatedClock.concurrently``'s threads, and when each wakes."""

    def __init__(self, clock: SimulatedClock, count: int) -> None:
        self.clock = clock
        self.changed = threading.Condition()
        self.order = itertools.count()
        # Workers waiting for their turn: (wake-up, order, worker). All start now, in number order.
        self.waiting: list[tuple[float, int, int]] = [
            (clock.monotonic(), next(self.order), w) for w in range(count)
        ]
        heapq.heapify(self.waiting)
        self.running = count
        self.current: int | None = None
        with self.changed:
            self._hand_on()

    def wait_for_turn(self, worker: int) -> None:
        with self.changed:
            while self.current != worker:
                self.changed.wait()

    def sleep(self, worker: int, wake: float) -> None:
        with self.changed:
            heapq.heappush(self.waiting, (wake, next(self.order), worker))
            self._hand_on()
            while self.current != worker:
                self.changed.wait()

    def finish(self) -> None:
        with self.changed:
            self.running -= 1
            self._hand_on()

    def wait_until_finished(self) -> None:
        with self.changed:
            while self.running:
                self.changed.wait()

    def _hand_on(self) -> None:
        """The earliest sleeper goes on, once time has moved to its wake-up (actions due run here)."""
        if self.waiting:
            wake, _, worker = heapq.heappop(self.waiting)
            if wake > self.clock.monotonic():
                self.clock.advance(wake - self.clock.monotonic())
            self.current = worker
        else:
            self.current = None
        self.changed.notify_all()
