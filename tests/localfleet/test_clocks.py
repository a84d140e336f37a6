"""The two clocks the engine runs on: events in time order, work off the schedule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from localfleet.clocks import SIMULATED_WALL_START, RealClock, SimulatedClock


def test_simulated_time_moves_only_when_someone_sleeps() -> None:
    clock = SimulatedClock(start=100.0)
    assert clock.monotonic() == 100.0
    assert clock.now() == SIMULATED_WALL_START

    clock.sleep(2.5)

    assert clock.monotonic() == 102.5
    assert clock.time() == SIMULATED_WALL_START.timestamp() + 2.5
    assert clock.slept == [2.5]


def test_simulated_actions_run_in_time_order_as_time_passes_them() -> None:
    clock = SimulatedClock(start=0.0)
    seen: list[tuple[str, float]] = []
    clock.call_at(5, lambda: seen.append(("five", clock.monotonic())))
    clock.call_at(1, lambda: seen.append(("one", clock.monotonic())))
    clock.call_at(1, lambda: clock.call_at(1, lambda: seen.append(("one again", clock.monotonic()))))
    clock.call_at(9, lambda: seen.append(("nine", clock.monotonic())))

    clock.sleep(6)

    assert seen == [("one", 1.0), ("one again", 1.0), ("five", 5.0)]
    assert clock.monotonic() == 6.0
    assert clock.pending() == 1


def test_settle_runs_only_what_is_due_and_cancelled_actions_never_run() -> None:
    clock = SimulatedClock(start=0.0)
    seen: list[str] = []
    clock.call_at(0, lambda: seen.append("now"))
    clock.call_at(3, lambda: seen.append("later"))
    clock.call_at(0, lambda: seen.append("cancelled")).cancel()

    clock.settle()

    assert seen == ["now"]
    assert clock.monotonic() == 0.0


def test_simulated_time_never_goes_back_when_an_action_sleeps_further() -> None:
    clock = SimulatedClock(start=0.0)
    clock.call_at(1, lambda: clock.sleep(10))  # a sleeper woken inside a request
    clock.sleep(2)
    assert clock.monotonic() == 11.0


def test_simulated_work_runs_inline() -> None:
    clock = SimulatedClock()
    results: list[int] = []
    clock.run_work(lambda: 6 * 7, results.append)
    assert results == [42]


def test_real_clock_runs_actions_when_due_on_its_own_thread() -> None:
    clock = RealClock()
    ran = threading.Event()
    where: list[str] = []
    try:
        began = time.monotonic()
        clock.call_at(
            clock.monotonic() + 0.05, lambda: (where.append(threading.current_thread().name), ran.set())
        )
        assert ran.wait(5)
        assert time.monotonic() - began >= 0.05
        assert where == ["real-clock"]
    finally:
        clock.close()


def test_real_clock_runs_work_on_its_pool_and_schedules_what_follows() -> None:
    clock = RealClock(workers=2)
    done = threading.Event()
    seen: list[tuple[str, str]] = []
    try:
        clock.run_work(
            lambda: threading.current_thread().name,
            lambda worker: (seen.append((worker, threading.current_thread().name)), done.set()),
        )
        assert done.wait(5)
        ((worker, follower),) = seen
        assert worker.startswith("real-clock-work")
        assert follower == "real-clock"
    finally:
        clock.close()


def test_a_closed_real_clock_runs_nothing_more() -> None:
    clock = RealClock()
    ran = threading.Event()
    clock.close()
    entry = clock.call_at(clock.monotonic(), ran.set)
    assert entry.cancelled
    assert not ran.wait(0.1)


def test_concurrent_work_takes_turns_and_overlaps_in_simulated_time() -> None:
    clock = SimulatedClock(start=0)
    seen: list[tuple[str, float]] = []
    finished: list[str] = []

    def work(name: str, naps: list[float]) -> Callable[[], str]:
        def run() -> str:
            for nap in naps:
                clock.sleep(nap)
                seen.append((name, clock.monotonic()))
            return name

        return run

    clock.call_at(5, lambda: seen.append(("action", clock.monotonic())))
    clock.run_concurrently(work("a", [10, 10]), finished.append)
    clock.run_concurrently(work("b", [3, 30]), finished.append)
    clock.sleep(100)
    # Each wakes when its own sleeps say, interleaved with the actions: overlapping, not in sequence.
    assert seen == [("b", 3), ("action", 5), ("a", 10), ("a", 20), ("b", 33)]
    assert finished == ["a", "b"] and clock.monotonic() == 100
    clock.sleep(1)  # all work done: the caller alone moves time again
    assert clock.monotonic() == 101


def test_concurrent_work_started_by_an_action_runs_beside_the_sleeper() -> None:
    clock = SimulatedClock(start=0)
    ended: list[float] = []
    clock.call_at(
        10, lambda: clock.run_concurrently(lambda: clock.sleep(50), lambda _: ended.append(clock.monotonic()))
    )
    clock.sleep(30)
    assert clock.monotonic() == 30 and ended == []
    clock.sleep(40)
    assert ended == [60] and clock.monotonic() == 70


def test_concurrent_sleepers_take_turns_and_time_moves_to_the_earliest_wake_up() -> None:
    # Three tasks on two threads: time passes as for real threads (the longest chain), not the sum,
    # and the order is the same on every run (earliest wake-up first, ties in the order they slept).
    clock = SimulatedClock(start=0.0)
    seen: list[tuple[str, float]] = []
    clock.call_at(4, lambda: seen.append(("action", clock.monotonic())))

    def task(name: str, *sleeps: float) -> Callable[[], str]:
        def run() -> str:
            for seconds in sleeps:
                clock.sleep(seconds)
                seen.append((name, clock.monotonic()))
            return name

        return run

    results = clock.concurrently([task("a", 5, 5), task("b", 3, 10), task("c", 1)], 2)

    assert results == ["a", "b", "c"]
    assert seen == [("b", 3.0), ("action", 4.0), ("a", 5.0), ("a", 10.0), ("c", 11.0), ("b", 13.0)]
    assert clock.monotonic() == 13.0
    clock.sleep(1)  # back to one thread: sleeping moves time itself again
    assert clock.monotonic() == 14.0


def test_a_concurrent_task_that_raises_is_raised_once_the_others_have_ended() -> None:
    clock = SimulatedClock(start=0.0)
    ended: list[str] = []

    def fails() -> None:
        raise ValueError("boom")

    def sleeps() -> None:
        clock.sleep(30)
        ended.append("slept")

    with pytest.raises(ValueError, match="boom"):
        clock.concurrently([fails, sleeps], 2)
    assert ended == ["slept"]


def test_a_clock_that_does_not_hand_over_at_settle_keeps_other_threads_due_now_in_their_places() -> None:
    """``settle_hands_over=False``: a thread that looks at the state (settle) runs on until it sleeps;
    the others due at the same instant run then, and simulated time is the same as with hand-overs."""
    for hands_over in (True, False):
        clock = SimulatedClock(start=0.0, settle_hands_over=hands_over)
        seen: list[tuple[str, float]] = []

        def task(name: str, clock: SimulatedClock = clock, seen: list[tuple[str, float]] = seen) -> str:
            for step in range(3):
                seen.append((f"{name}{step}", clock.monotonic()))
                clock.settle()
            clock.sleep(5)
            seen.append((f"{name} woke", clock.monotonic()))
            return name

        assert clock.concurrently([lambda: task("a"), lambda: task("b")], 2) == ["a", "b"]
        assert clock.monotonic() == 5.0
        assert {moment for name, moment in seen if name.endswith("woke")} == {5.0}
        steps = [name for name, _ in seen if not name.endswith("woke")]
        if hands_over:
            assert steps == ["a0", "b0", "a1", "b1", "a2", "b2"]
        else:
            assert steps == ["a0", "a1", "a2", "b0", "b1", "b2"]
