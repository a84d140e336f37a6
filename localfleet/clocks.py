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
  ten-minute run takes milliseconds and every run is the same.

Work that runs *beside* its caller for a while — a Lambda invocation started by an
event source mapping while another is still running — is ``run_concurrently``: a
thread of its own on a ``RealClock``; on a ``SimulatedClock`` a thread that takes
turns with the others, one at a time: a thread runs until it sleeps on the clock,
then the next thing due (an action, or another thread's wake-up) runs. So concurrent
invocations overlap in simulated time exactly as their sleeps say, and every run is
still the same. ``concurrently`` runs a list of tasks that way (the runner's
(account, region) pairs, each on its thread) and waits for the last: five threads each
sleeping 5 s take 5 simulated seconds, not 25.
"""

from __future__ import annotations

import contextvars
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

    def run_concurrently(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        """Run ``work`` (it must not raise) beside the caller, sleeping on this clock as it needs;
        then ``done`` with its result as an action."""
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

    def run_concurrently(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        self.run_work(work, done)  # real time: a thread of the pool is beside the caller

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


class _Turn:
    """A thread's right to run while threads take turns on a ``SimulatedClock``; ``ready``: where its
    thread waits for it (one condition a thread, so handing the turn wakes that thread only, not every
    thread waiting on the clock)."""

    def __init__(self) -> None:
        self.ready = threading.Condition()


class _WakeUp(Scheduled):
    """Due: the thread holding ``turn`` goes on (its sleep is over, or its work starts)."""

    def __init__(self, turn: _Turn) -> None:
        super().__init__(lambda: None)
        self.turn = turn


class SimulatedClock:
    """Time that moves only when someone sleeps; the actions due by then run first, in time order.

    ``slept`` records every sleep (the runner's own and, through
    ``simulate_botocore_time``, botocore's back-off).

    With work running concurrently (``run_concurrently``), threads take turns: exactly one
    runs at any moment (the one holding the turn); a sleeper puts its wake-up in the queue
    at the time it sleeps until and runs what falls due before it — an action inline, another
    thread's wake-up by handing that thread the turn and waiting for its own. Nothing runs
    in parallel, so actions need no locks and the order is the queue's order.
    """

    def __init__(self, start: float = 1000.0, wall_start: datetime = SIMULATED_WALL_START) -> None:
        self.start = self._now = start
        self.wall_start = wall_start
        self.slept: list[float] = []
        self._queue: list[tuple[float, int, Scheduled]] = []
        self._order = itertools.count()
        self._holder: _Turn | None = None  # who runs, while work runs concurrently
        self._mine = threading.local()
        self._beside = 0  # concurrent work started and not finished

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
        self.advance(max(0.0, seconds))

    def concurrently(self, tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
        """Each task's result; the tasks run on up to ``workers`` threads beside the caller
        (``run_concurrently``), which waits on this clock until the last one ends.

        The threads take turns as any concurrent work does, so simulated time passes as it
        would for real threads and a run is reproducible. A task's exception is raised here
        once every task has ended. One task runs on the calling thread.
        """
        if len(tasks) <= 1:
            return [task() for task in tasks]
        # Each task sees the caller's context variables, as threads of one process see its environment
        # (a Lambda invocation's trace header, say: ``in_process_runner``).
        pending = [(index, _in_context(task)) for index, task in enumerate(tasks)]
        results: dict[int, T] = {}
        errors: list[BaseException] = []
        running = [max(1, min(workers, len(tasks)))]
        caller = self._turn()

        def work() -> None:
            while pending:
                index, task = pending.pop(0)
                try:
                    results[index] = task()
                except BaseException as error:  # handed to the caller
                    errors.append(error)

        def finished(_: None) -> None:
            running[0] -= 1
            if not running[0]:  # the last thread ended: the caller goes on, now
                self._push(self._now, _WakeUp(caller))

        for _ in range(running[0]):
            self.run_concurrently(work, finished)
        self._run_until(self._now, caller)  # returns at the caller's wake-up, whenever that is
        if errors:
            raise errors[0]
        return [results[index] for index in range(len(tasks))]

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, running every action that falls due on the way."""
        target = self._now + seconds
        waking: _Turn | None = None
        if self._beside:  # others may run meanwhile: this thread's wake-up takes its place in the queue
            waking = self._turn()
            self._push(target, _WakeUp(waking))
        self._run_until(target, waking)
        self._now = max(self._now, target)

    def call_at(self, when: float, action: Callable[[], None]) -> Scheduled:
        entry = Scheduled(action)
        heapq.heappush(self._queue, (when, next(self._order), entry))
        return entry

    def run_work(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        done(work())

    def run_concurrently(self, work: Callable[[], T], done: Callable[[T], None]) -> None:
        """``work`` on a thread of its own that starts at its turn: once the caller sleeps."""
        if self._holder is None:
            self._holder = self._turn()  # the caller runs now: it holds the turn
        turn = _Turn()
        self._beside += 1

        def body() -> None:
            self._mine.turn = turn
            self._wait_for(turn)
            try:
                result = work()
            except BaseException:  # work must not raise; if it does, the clock must not stop
                _log.exception("concurrent work failed")
                self._beside -= 1
            else:
                self._beside -= 1
                self.call_at(self._now, lambda: done(result))
            self._leave()

        self._push(self._now, _WakeUp(turn))
        threading.Thread(target=body, name="simulated-concurrent-work", daemon=True).start()

    def settle(self) -> None:
        self._run_until(self._now)

    def close(self) -> None:
        self._queue.clear()

    def pending(self) -> int:
        """Actions still scheduled (cancelled ones included)."""
        return len(self._queue)

    def _run_until(self, target: float, waking: _Turn | None = None) -> None:
        # Re-entrant: an action may schedule more (run in this same loop when due), and a
        # sleeper woken inside a request may advance time itself; time never goes back.
        # ``waking``: the caller's own wake-up is in the queue (work runs concurrently).
        while self._queue and (waking is not None or self._queue[0][0] <= target):
            when, _, entry = heapq.heappop(self._queue)
            self._now = max(self._now, when)
            if entry.cancelled:
                continue
            if isinstance(entry, _WakeUp):
                if entry.turn is waking:
                    return
                if waking is None:  # work started beside the caller since it began to sleep
                    waking = self._turn()
                    self._push(target, _WakeUp(waking))
                self._hand(entry.turn)
                self._wait_for(waking)
                return  # whoever ran our wake-up moved time to it
            entry.action()

    def _push(self, when: float, entry: Scheduled) -> None:
        heapq.heappush(self._queue, (when, next(self._order), entry))

    def _turn(self) -> _Turn:
        turn: _Turn | None = getattr(self._mine, "turn", None)
        if turn is None:
            turn = self._mine.turn = _Turn()
        return turn

    def _hand(self, turn: _Turn | None) -> None:
        if turn is None:
            self._holder = None
            return
        with turn.ready:
            self._holder = turn
            turn.ready.notify()

    def _wait_for(self, turn: _Turn) -> None:
        with turn.ready:
            turn.ready.wait_for(lambda: self._holder is turn)

    def _leave(self) -> None:
        """A thread whose work is done runs what is due until it can hand the turn to another."""
        while self._queue:
            when, _, entry = heapq.heappop(self._queue)
            self._now = max(self._now, when)
            if entry.cancelled:
                continue
            if isinstance(entry, _WakeUp):
                self._hand(entry.turn)
                return
            entry.action()
        self._hand(None)  # nobody waits on the clock


def _in_context(task: Callable[[], T]) -> Callable[[], T]:
    """``task``, to run in a copy of the current thread's context variables."""
    context = contextvars.copy_context()
    return lambda: context.run(task)
