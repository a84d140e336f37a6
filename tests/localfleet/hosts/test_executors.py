"""Executors: what runs a step on a simulated host, and the agent played from a test's choice."""

from __future__ import annotations

from localfleet.clocks import SimulatedClock
from localfleet.hosts.canned_agent import LOCKED_RUN_SECONDS, CannedAgent, CannedRun, result_line
from localfleet.hosts.executors import CannedExecutor, SubprocessExecutor
from localfleet.ssm import ExecutionResult


def test_canned_executor_returns_its_result_and_records_the_call() -> None:
    executor = CannedExecutor(stdout="line\n", stderr="log\n", exit_code=2)

    result = executor.run("echo hi", {"SSM_Action": "check"}, 5)

    assert result == ExecutionResult(2, "line\n", "log\n", timed_out=False)
    assert (executor.runs, executor.last_script, executor.last_env) == (1, "echo hi", {"SSM_Action": "check"})


def test_canned_executor_slower_than_the_timeout_times_out() -> None:
    result = CannedExecutor(delay=10).run("true", {}, 0.01)

    assert result.timed_out
    assert result.exit_code == 137


def test_subprocess_executor_passes_env_and_exit_code() -> None:
    result = SubprocessExecutor().run('echo "$SSM_X"; echo err >&2; exit 4', {"SSM_X": "y"}, 5)

    assert result == ExecutionResult(4, "y\n", "err\n", timed_out=False)


def test_canned_executor_lasts_its_delay_on_the_engines_clock_without_sleeping() -> None:
    result = CannedExecutor(stdout="x", delay=30).run("true", {}, 600)

    assert (result.exit_code, result.stdout, result.timed_out, result.duration) == (0, "x", False, 30)


def test_canned_agent_plays_its_run_and_keeps_the_lock_while_it_lasts() -> None:
    clock = SimulatedClock(start=0.0)
    agent = CannedAgent(CannedRun(result_line("unchanged"), "log", exit_code=0, duration=50), clock)

    first = agent.run("agent", {}, 600)
    clock.sleep(10)
    second = agent.run("agent", {}, 600)
    clock.sleep(40)
    third = agent.run("agent", {}, 600)

    assert (first.stdout, first.stderr, first.duration) == (result_line("unchanged"), "log", 50)
    assert second == ExecutionResult(
        0, result_line("skipped", "locked", "another ecr-fleet-auth run is in progress") + "\n", "",
        duration=LOCKED_RUN_SECONDS,
    )  # fmt: skip
    assert third.duration == 50
    assert agent.runs == [(0.0, 50.0), (50.0, 100.0)]
    assert agent.locked_runs == 1


def test_canned_agent_outlasting_the_step_timeout_is_killed_without_its_result_line() -> None:
    agent = CannedAgent(CannedRun(duration=900), SimulatedClock(start=0.0))

    result = agent.run("agent", {}, 600)

    assert (result.exit_code, result.stdout, result.timed_out, result.duration) == (137, "", True, 600)
    assert agent.runs == [(0.0, 600.0)]
