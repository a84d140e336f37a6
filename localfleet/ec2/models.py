"""The EC2 instances of a simulated account: ids, reservations, tags and states.

The one EC2 stand-in of the tree (moto takes minutes to create 10,000 instances
and longer to describe them, see localfleet/README.md). It answers what the runner
asks of EC2 — DescribeInstances with tag, state and id filters — through
``responses.Ec2Wire``, in-process or over HTTP, and resolves SendCommand tag
targets for the local fleet.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# DescribeInstances filters answered (anything else is InvalidParameterValue).
FILTERS = ("instance-id", "instance-state-name", "tag-key")  # and tag:<key>


@dataclass
class Ec2Instance:
    instance_id: str
    reservation_id: str
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "running"


class Ec2Inventory:
    """Instances by id, in launch order; each ``launch`` is one reservation."""

    def __init__(self, first_number: int = 0) -> None:
        self.instances: dict[str, Ec2Instance] = {}
        self._numbers = itertools.count(first_number)
        self._reservations = itertools.count(1)
        self._lock = threading.Lock()

    def launch(
        self, count: int = 1, tags: Mapping[str, str] | None = None, state: str = "running"
    ) -> list[str]:
        """``count`` instances in one reservation, each with ``tags``; their ids."""
        with self._lock:
            reservation = _resource_id("r", next(self._reservations))
            launched = [
                Ec2Instance(_resource_id("i", next(self._numbers)), reservation, dict(tags or {}), state)
                for _ in range(count)
            ]
            for instance in launched:
                self.instances[instance.instance_id] = instance
        return [instance.instance_id for instance in launched]

    def set_state(self, instance_id: str, state: str) -> None:
        with self._lock:
            self.instances[instance_id].state = state

    def tag(self, instance_id: str, tags: Mapping[str, str]) -> dict[str, str]:
        """Create or overwrite ``tags`` (CreateTags); every tag of the instance after the change."""
        with self._lock:
            self.instances[instance_id].tags.update(tags)
            return dict(self.instances[instance_id].tags)

    def untag(self, instance_id: str, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self.instances[instance_id].tags.pop(key, None)

    def tagged(self, key: str, values: Sequence[str]) -> list[str]:
        """Ids of the instances carrying tag ``key`` with one of ``values`` (any value when empty)."""
        with self._lock:
            return [
                i.instance_id
                for i in self.instances.values()
                if key in i.tags and (not values or i.tags[key] in values)
            ]

    def matching(
        self, filters: Mapping[str, set[str]], instance_ids: Iterable[str] = ()
    ) -> list[Ec2Instance]:
        """The instances every filter accepts (values within one filter are alternatives)."""
        wanted = set(instance_ids)
        with self._lock:
            return [
                i
                for i in self.instances.values()
                if (not wanted or i.instance_id in wanted)
                and all(_accepts(i, n, v) for n, v in filters.items())
            ]


def _resource_id(prefix: str, number: int) -> str:
    """An id shaped like EC2's (``i-``/``r-`` and 17 hex digits), the same for the same number."""
    return f"{prefix}-0" + hashlib.sha256(f"{prefix}-{number}".encode()).hexdigest()[:16]


def _accepts(instance: Ec2Instance, name: str, values: set[str]) -> bool:
    if name == "instance-id":
        return instance.instance_id in values
    if name == "instance-state-name":
        return instance.state in values
    if name == "tag-key":
        return bool(values & set(instance.tags))
    if name.startswith("tag:"):
        return instance.tags.get(name[4:]) in values
    raise ValueError(name)
