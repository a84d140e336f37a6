"""A local simulated fleet: an SSM Run Command emulator and the executors its instances run."""

from .executors import CannedExecutor, ExecutionResult, Executor, SubprocessExecutor
from .fleet import ManagedInstance, TagResolver
from .ssm_emulator import SsmEmulator

__all__ = [
    "CannedExecutor",
    "ExecutionResult",
    "Executor",
    "ManagedInstance",
    "SsmEmulator",
    "SubprocessExecutor",
    "TagResolver",
]
