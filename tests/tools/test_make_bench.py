"""`make bench BENCH=<name> [options]`: each benchmark gets its own options, never the process's arguments."""

from __future__ import annotations

import sys
import types
from argparse import Namespace
from collections.abc import Sequence

import pytest

import bench.__main__ as bench_main
from bench import new_instances_bench


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[Namespace]:
    """``new_instances`` replaced by a benchmark that only parses its options as the real one does."""
    seen: list[Namespace] = []

    def main(argv: Sequence[str] | None = None) -> None:
        seen.append(new_instances_bench.parse_arguments(argv))

    fake = types.ModuleType("fake_new_instances_bench")
    fake.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_new_instances_bench", fake)
    monkeypatch.setattr(bench_main, "BENCHMARKS", {"new_instances": "fake_new_instances_bench"})
    return seen


def test_a_benchmark_named_alone_runs_with_its_defaults(
    parsed: list[Namespace], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m bench new_instances` (what `make bench BENCH=new_instances` runs): argparse without an
    argument list reads sys.argv, where the benchmark's own name is an unrecognized argument."""
    monkeypatch.setattr(sys, "argv", ["python -m bench", "new_instances"])
    assert bench_main.main() == 0
    assert parsed == [new_instances_bench.parse_arguments([])]


def test_options_after_a_name_go_to_that_benchmark(
    parsed: list[Namespace], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m bench", "new_instances", "--seed", "2", "--instances", "40"])
    assert bench_main.main() == 0
    assert (parsed[0].seed, parsed[0].instances) == (2, 40)


def test_the_organization_bench_counts_compliance_writes_apart_from_a_pairs_budget() -> None:
    """SSM API Reference, PutComplianceItems: one call records one resource's items (``ResourceId``),
    so the runner writes once per instance with a result (issue 22), outside the per-pair budget of
    the run's own calls, 3*ceil(N/50)+10: the benchmark counts those writes apart."""
    from collections import Counter  # noqa: PLC0415

    from bench.fleet import budget, pair_calls  # noqa: PLC0415

    ssm = Counter({"SendCommand": 4, "ListCommandInvocations": 8, "PutComplianceItems": 200})
    pair = types.SimpleNamespace(
        ssm_endpoint=types.SimpleNamespace(calls=ssm),
        ec2_endpoint=types.SimpleNamespace(calls=Counter({"DescribeInstances": 5})),
    )

    assert pair_calls(pair) == (17, 200)
    assert pair_calls(pair)[0] <= budget(200) == 22


def test_the_runner_bench_counts_compliance_writes_apart_with_the_same_rule() -> None:
    """docs/how-it-works/how-a-run-works.md: a run's compliance writes come on top of its calls and are
    counted apart. The runner benchmark's calls are named under their service (``ssm.SendCommand``); the
    same rule as the organization benchmark's takes the writes out of the figure the budget judges."""
    from collections import Counter  # noqa: PLC0415

    from bench.fleet import budget  # noqa: PLC0415
    from bench.runner_bench import Measurement  # noqa: PLC0415

    calls = Counter({"ec2.DescribeInstances": 1, "ssm.SendCommand": 1, "ssm.PutComplianceItems": 100})
    measured = Measurement(calls, 0.0, 0.0, {})

    assert (measured.total, measured.compliance_writes) == (2, 100)
    assert measured.total <= budget(100) < sum(calls.values())


@pytest.mark.parametrize("name", ["agent", "runner", "emulator"])
def test_help_after_a_benchmark_without_options_says_what_it_does(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/development/benchmarks.md: `--help` after a name says what that benchmark measures; one
    without options says so and exits 0, running nothing."""
    ran: list[str] = []
    fake = types.ModuleType(f"fake_{name}_bench", f"The {name} benchmark: what it measures.")
    fake.main = lambda: ran.append(name)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"fake_{name}_bench", fake)
    monkeypatch.setattr(bench_main, "BENCHMARKS", {name: f"fake_{name}_bench"})
    monkeypatch.setattr(sys, "argv", ["python -m bench", name, "--help"])

    assert bench_main.main() == 0
    printed = capsys.readouterr().out
    assert f"The {name} benchmark: what it measures." in printed
    assert f"{name} takes no options." in printed
    assert ran == []


def test_an_option_a_benchmark_does_not_take_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("fake_runner_bench")
    fake.main = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_runner_bench", fake)
    monkeypatch.setattr(bench_main, "BENCHMARKS", {"runner": "fake_runner_bench"})
    monkeypatch.setattr(sys, "argv", ["python -m bench", "runner", "--seed", "2"])

    with pytest.raises(SystemExit) as refused:
        bench_main.main()
    assert refused.value.code == 2
