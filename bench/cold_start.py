"""The runner's cold import, measured as Lambda starts it.

The handler is imported in fresh interpreters that see what the function sees: the
synthesized asset as task root (no compiled files: /var/task is read-only), the
Powertools layer's packages, the runtime's boto3, and the variables the template and
Lambda set, tracing included. Importing it inside the development virtualenv measures
something else: more packages to patch, and an X-Ray SDK that, outside Lambda, builds
botocore clients for its sampler at import.

The handler imports a path's modules at that path's first event (handler.py), so what Lambda's
init imports is the target; what each path's first event then adds is measured too and printed
beside it: the handler invoked once, in a fresh interpreter after its import, with an event of
that path that is refused (its modules imported, its models built, nothing sent).
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
import handler


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
print(time.perf_counter() - began)
"""
TARGET_SECONDS = 0.3
# The handler's own modules may add at most half the floor again (issue: "within 1.5x the floor").
TARGET_RATIO = 1.5


@dataclass
class ColdImports:
    seconds: list[float]
    floor_seconds: list[float]
    tracing: bool
    # Per path: its first event's seconds, after the handler's import (see the module's docstring).
    first_event_seconds: dict[str, list[float]]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def floor(self) -> float:
        return statistics.median(self.floor_seconds)

    @property
    def ratio(self) -> float:
        return self.median / self.floor

    @property
    def met(self) -> bool:
        return self.median < TARGET_SECONDS

    @property
    def ratio_met(self) -> bool:
        return self.ratio <= TARGET_RATIO

    def summary(self) -> str:
        tracing = "tracing active" if self.tracing else "tracing off"
        low, high = (round(value * 1000) for value in (min(self.seconds), max(self.seconds)))
        return (
            f"cold import of handler as Lambda starts it ({tracing}), "
            f"{len(self.seconds)} fresh interpreters: median {self.median * 1000:.0f} ms, "
            f"range {low}-{high} ms (target < {TARGET_SECONDS * 1000:.0f} ms); the floor (boto3 and "
            f"Powertools alone) {self.floor * 1000:.0f} ms: {self.ratio:.2f}x the floor "
            f"(target <= {TARGET_RATIO}x); then each path's first event adds (its modules and models, "
            "median): "
            + ", ".join(
                f"{path} {statistics.median(seconds) * 1000:.0f} ms"
                for path, seconds in self.first_event_seconds.items()
            )
        )


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
        first_event_seconds: dict[str, list[float]] = {path: [] for path in FIRST_EVENTS}
        for _ in range(runs):  # alternated, so that a busy moment of the machine weighs on both
            seconds.append(import_seconds(environment))
            floor_seconds.append(import_seconds(environment, FLOOR))
            for path, event in FIRST_EVENTS.items():
                first_event_seconds[path].append(import_seconds(environment, FIRST_EVENT, json.dumps(event)))
    return ColdImports(
        seconds,
        floor_seconds,
        tracing="POWERTOOLS_TRACE_DISABLED" not in environment.variables,
        first_event_seconds=first_event_seconds,
    )
