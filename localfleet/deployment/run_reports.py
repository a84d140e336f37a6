"""The reports of the runs the real runner makes in this process, as ``runner.run`` returned them.

A batch of instance events answers SQS with its failures only, and a state machine's child with its
counts: the tests and the benchmarks read each run's whole report here instead."""

from __future__ import annotations

from typing import Any

from ..transport.botocore_in_process import Patcher


def record_reports(patch: Patcher) -> list[Any]:
    """Every ``Report`` ``ecr_fleet_auth.runner.run`` returns from now on, in order (undone with ``patch``).

    Call it once the process's environment is the runner's: the runner's Logger reads it at import."""
    from ecr_fleet_auth import runner  # noqa: PLC0415 - see above

    captured: list[Any] = []
    real = runner.run

    def run(*args: Any, **kwargs: Any) -> Any:
        report = real(*args, **kwargs)
        captured.append(report)
        return report

    patch.setattr(runner, "run", run)
    return captured
