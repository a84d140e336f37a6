"""SSM Run Command, simulated: one engine and one model of commands and invocations.

- ``engine``: commands and invocations, moved on by events on a clock; statuses,
  rate control, timeouts and output limits.
- ``operations``: the service — documents, managed nodes (``managed_nodes``), their
  compliance (``compliance``: PutComplianceItems and its listings) and the operations
  boto3 calls; ``documents``: Command documents, their parameters and what a step runs;
  ``agent_interface``: what the engine asks of an instance.
- ``protocol``: the JSON 1.1 wire, validated and shaped by botocore's model.
- ``http_emulator``: the service over loopback HTTP on a real clock
  (``SsmEmulator``); in-process it is served by ``localfleet.transport``.
"""

from .agent_interface import STOPPED_PREEMPTIVELY_EXIT_CODE, ExecutionResult, Executor
from .http_emulator import SsmEmulator
from .managed_nodes import ManagedInstance, TagResolver
from .operations import RunCommandService
from .protocol import SsmWire

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
