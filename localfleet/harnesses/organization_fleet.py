"""An organization's fleet as the runner's tests and the organization benchmarks build it: each
(account, region) pair deployed as a member (the home pair is the runner's own, already there) and
given its instances. One recipe for both, so that a test and a benchmark build the same world."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..composition.simulated_organization import SimulatedOrganization
from ..hosts.canned_agent import CannedRun


def populate(
    org: SimulatedOrganization,
    pairs: Iterable[tuple[str, str]],
    *,
    document: tuple[str, Mapping[str, Any]],
    instances: int,
    tags: Callable[[int], Mapping[str, str]],
    agent: Callable[[int], CannedRun],
) -> None:
    """Deploy each of ``pairs`` but the home pair as a member holding ``document`` (name, content),
    then launch ``instances`` instances in it, the n-th tagged ``tags(n)`` and running ``agent(n)``."""
    home = (org.home_account, org.home_region)
    for account, region in pairs:
        if (account, region) != home:
            org.deploy_member(account, region, document=document)
        pair = org.pair(account, region)
        for number in range(instances):
            pair.launch(tags=tags(number), agent=agent(number))
