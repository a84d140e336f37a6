"""The runner's Logger, Metrics and Tracer, created once per process.

The stack sets POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE to the
contract's names; the defaults here are the same names, so a local run or a test
without that environment still emits metrics where the stack's alarm looks.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

from . import contract

T = TypeVar("T")

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", contract.METRIC_SERVICE)

logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", contract.METRIC_NAMESPACE),
    service=SERVICE,
)
# botocore is the only traced library the runner uses; patching all of them would import
# every one installed (requests, sqlite3, ...) at cold start.
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))

# Dry runs and rejected events emit no metrics on purpose (they would skew the alarm);
# Powertools would warn about that on every such invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def in_this_trace(task: Callable[[], T]) -> Callable[[], T]:
    """``task`` to run on another thread inside the invocation's X-Ray trace.

    The X-Ray SDK keeps the trace entity per thread: without it, a traced botocore call on a
    worker thread (a pair of an organization's run) finds no segment and logs an error."""
    if tracer.disabled:
        return task
    recorder: Any = tracer.provider  # the X-Ray SDK's recorder (Powertools' default provider)
    entity = recorder.get_trace_entity()

    def traced() -> T:
        recorder.set_trace_entity(entity)
        return task()

    return traced
