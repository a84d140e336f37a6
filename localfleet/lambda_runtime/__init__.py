"""The runner's Lambda runtime, locally: how Lambda starts the handler, its context, its X-Ray daemon.

- ``environment``: a cold start of the synthesized asset as Lambda makes it (task
  root, layer and runtime packages only, the template's environment), one
  invocation per fresh interpreter;
- ``in_process``: the Lambda context for a handler called in this process;
- ``xray_daemon``: keeps the segments the X-Ray SDK sends, so traces can be read back;
- ``event_source_mapping``: Lambda's SQS event source mapping (window, batch size, concurrency,
  ReportBatchItemFailures); ``recursion``: Lambda's recursive loop detection.

All of them in ``models``: Lambda has no wire of its own here (the runner never calls Lambda's API).
"""

from .models.environment import (
    LAYER_PACKAGES,
    RUNTIME_PACKAGES,
    FunctionError,
    InvokeResult,
    LambdaEnvironment,
    asset_directory,
    distributions,
    import_names,
    lambda_environment,
)
from .models.event_source_mapping import EsmSettings, EventSourceMapping, Invocation
from .models.in_process import InProcessContext
from .models.xray_daemon import XRayDaemon

__all__ = [
    "LAYER_PACKAGES",
    "RUNTIME_PACKAGES",
    "EsmSettings",
    "EventSourceMapping",
    "FunctionError",
    "InProcessContext",
    "Invocation",
    "InvokeResult",
    "LambdaEnvironment",
    "XRayDaemon",
    "asset_directory",
    "distributions",
    "import_names",
    "lambda_environment",
]
