"""The runner's Lambda runtime, locally: how Lambda starts the handler, its context, its X-Ray daemon.

- ``environment``: a cold start of the synthesized asset as Lambda makes it (task
  root, layer and runtime packages only, the template's environment), one
  invocation per fresh interpreter;
- ``in_process``: the Lambda context for a handler called in this process;
- ``xray_daemon``: keeps the segments the X-Ray SDK sends, so traces can be read back.
"""

from .environment import (
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
from .in_process import InProcessContext
from .xray_daemon import XRayDaemon

__all__ = [
    "LAYER_PACKAGES",
    "RUNTIME_PACKAGES",
    "FunctionError",
    "InProcessContext",
    "InvokeResult",
    "LambdaEnvironment",
    "XRayDaemon",
    "asset_directory",
    "distributions",
    "import_names",
    "lambda_environment",
]
