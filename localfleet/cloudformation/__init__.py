"""CloudFormation StackSets as the runner reads them: ListStackInstances."""

from .stack_sets import StackInstance, StackSet, StackSets, StackSetsWire

__all__ = ["StackInstance", "StackSet", "StackSets", "StackSetsWire"]
