"""SSM Run Command, simulated: one engine and one model of commands and invocations.

- ``models``: the service's state and behaviour — ``engine`` (commands and invocations, moved on
  by events on a clock; statuses, rate control, timeouts and output limits), ``service``
  (``RunCommandService``: documents, managed nodes, their compliance and the operations boto3
  calls), ``documents`` (Command documents, their parameters and what a step runs),
  ``managed_nodes``, ``compliance_store`` (PutComplianceItems and its listings), ``agent_interface``
  (what the engine asks of an instance);
- ``responses``: its wire, JSON 1.1 validated and shaped by botocore's model (``SsmWire``);
- ``server``: the service over loopback HTTP on a real clock (``SsmEmulator``); in-process it is
  served by ``localfleet.transport``.
"""

from .models.agent_interface import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult, Executor
from .models.managed_nodes import ManagedInstance, TagResolver
from .models.service import RunCommandService
from .responses import SsmWire
from .server import SsmEmulator

__all__ = [
    "STOPPED_PREEMPTIVELY_EXIT_CODE",
    "ExecutionResult",
    "Executor",
    "ManagedInstance",
    "RunCommandService",
    "SsmEmulator",
    "SsmWire",
    "TagResolver",
]
