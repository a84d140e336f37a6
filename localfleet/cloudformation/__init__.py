"""CloudFormation StackSets as the runner reads them: ListStackInstances.

- ``models``: an organization's stack sets and their stack instances (statuses, CallAs, pages);
- ``responses``: its wire, CloudFormation's query protocol (``StackSetsWire``).
"""

from .models import StackInstance, StackSet, StackSets
from .responses import StackSetsWire

__all__ = ["StackInstance", "StackSet", "StackSets", "StackSetsWire"]
