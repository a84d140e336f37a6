"""The runner's cold import, measured as Lambda starts it.

The handler is imported in fresh interpreters that see what the function sees: the
synthesized asset as task root (no compiled files: /var/task is read-only), the
Powertools layer's packages, the runtime's boto3, and the variables the template and
Lambda set, tracing included. Importing it inside the development virtualenv measures
something else: more packages to patch, and an X-Ray SDK that, outside Lambda, builds
botocore clients for its sampler at import.

The handler defers each path's modules to that path's first event (handler.py), so two figures
are printed, each against the floor measured in the same round (interleaved pairs, so that a busy
moment of the machine weighs on both): Lambda's init alone (the handler's import: the 1.5x goal is
measured on this), and a cold invocation as a user meets it, init + the first event of each path
(the handler imported, then invoked once in the same fresh interpreter with an event of that path
that is refused: its modules imported, its models built, nothing sent). Each ratio is the median of
the per-pair ratios, with its spread.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from localfleet.lambda_runtime import LambdaEnvironment, asset_directory, lambda_environment
from localfleet.synthesized_stack import Template, synthesize

IMPORT = "import time; began = time.perf_counter(); import handler; print(time.perf_counter() - began)"
# What any Powertools function on this runtime imports and builds before its own code: boto3, and a
# Logger, Metrics and Tracer (patching botocore) as the runner's observability module makes them.
FLOOR = (
    "import time; began = time.perf_counter(); import boto3; "
    "from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "Logger(service='floor'); Metrics(namespace='floor', service='floor'); "
    "Tracer(service='floor', patch_modules=('botocore',)); print(time.perf_counter() - began)"
)
# One refused event per path: the handler imports that path and builds its models to refuse it.
FIRST_EVENTS = {
    "run": {"dry_run": "yes"},
    "instance events": {"Records": []},
    "state machine step": {"state_machine_step": "plan"},
}
FIRST_EVENT = """
import json, os, sys, time
# Lambda sets the trace header per invocation (a sampled one: the tracer records the invocation).
os.environ["_X_AMZN_TRACE_ID"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
began = time.perf_counter()
import handler
imported = time.perf_counter() - began


class Context:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    invoked_function_arn = f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{function_name}"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self):
        return 60_000


began = time.perf_counter()
try:
    handler.handler(json.loads(sys.argv[1]), Context())
    raise SystemExit("the event was not refused")
except Exception as error:
    if type(error).__name__ != "InvalidEvent":
        raise
print(imported + time.perf_counter() - began)
"""
TARGET_SECONDS = 0.3
# The handler's own modules may add at most half the floor again (issue: "within 1.5x the floor").
TARGET_RATIO = 1.5


@dataclass
class ColdImports:
    seconds: list[float]
    floor_seconds: list[float]
    tracing: bool
    # Per path: init + its first event, in one fresh interpreter (see the module's docstring).
    cold_invocation_seconds: dict[str, list[float]]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def floor(self) -> float:
        return statistics.median(self.floor_seconds)

    @property
    def ratios(self) -> list[float]:
        """Init alone over the floor, pair by pair."""
        return [init / floor for init, floor in zip(self.seconds, self.floor_seconds, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def cold_invocation_ratios(self, path: str) -> list[float]:
        """Init + the path's first event over the floor, pair by pair."""
        pairs = zip(self.cold_invocation_seconds[path], self.floor_seconds, strict=True)
        return [cold / floor for cold, floor in pairs]

    @property
    def met(self) -> bool:
        return self.median < TARGET_SECONDS

    @property
    def ratio_met(self) -> bool:
        return self.ratio <= TARGET_RATIO

    def summary(self) -> str:
        tracing = "tracing active" if self.tracing else "tracing off"
        lines = [
            f"cold start as Lambda starts the handler ({tracing}), {len(self.seconds)} interleaved rounds "
            "of fresh interpreters; median [min-max]:",
            f"  {'floor (boto3 + Powertools alone)':<40} {_ms(self.floor_seconds)}",
            f"  {'init: import handler':<40} {_ms(self.seconds)}  "
            f"{_ratio(self.ratios)} the floor  (goal <= {TARGET_RATIO}x; < {TARGET_SECONDS * 1000:.0f} ms)",
        ]
        for path, seconds in self.cold_invocation_seconds.items():
            label = f"init + first event: {path}"
            ratio = _ratio(self.cold_invocation_ratios(path))
            lines.append(f"  {label:<40} {_ms(seconds)}  {ratio} the floor")
        lines.append(
            "  (the init ratio meets its goal because each path's imports wait for its first event; "
            "a cold invocation pays both)"
        )
        return "\n".join(lines)


def _ms(seconds: list[float]) -> str:
    low, mid, high = (round(s * 1000) for s in (min(seconds), statistics.median(seconds), max(seconds)))
    return f"{mid:>4} ms [{low}-{high}]"


def _ratio(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"


def import_seconds(environment: LambdaEnvironment, code: str = IMPORT, *arguments: str) -> float:
    done = environment.run(code, *arguments)
    if done.returncode != 0:
        raise RuntimeError(f"the import failed in the Lambda environment:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def measure(runs: int, synthesized: tuple[Template, Path] | None = None) -> ColdImports:
    """``synthesized``: the default stack's template and the cdk.out it was synthesized to, if at hand."""
    with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-cold-start-") as workdir:
        if synthesized is None:
            outdir = Path(workdir) / "cdk.out"
            (template,) = synthesize(outdir=str(outdir)).values()
        else:
            template, outdir = synthesized
        environment = lambda_environment(
            template, asset_directory(template, outdir), Path(workdir) / "lambda"
        )
        import_seconds(environment)  # reads the files into the page cache, as a warm host has them
        seconds, floor_seconds = [], []
        cold_invocation_seconds: dict[str, list[float]] = {path: [] for path in FIRST_EVENTS}
        for _ in range(runs):  # alternated, so that a busy moment of the machine weighs on both
            seconds.append(import_seconds(environment))
            floor_seconds.append(import_seconds(environment, FLOOR))
            for path, event in FIRST_EVENTS.items():
                cold = import_seconds(environment, FIRST_EVENT, json.dumps(event))
                cold_invocation_seconds[path].append(cold)
    return ColdImports(
        seconds,
        floor_seconds,
        tracing="POWERTOOLS_TRACE_DISABLED" not in environment.variables,
        cold_invocation_seconds=cold_invocation_seconds,
    )
