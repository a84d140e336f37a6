"""Issue 20: no action ever leaves anyone who could pull before unable to pull after, across the
whole host-state corpus (tests/agent/host_states.py), run as SSM runs the document.

For each state: check, then refresh, then helper, on the same instance; before and after each,
whether every user (root, alice and bob, managed; carol, not) can pull each of the state's
registries from a login shell and from cron (crontab(5): PATH=/usr/bin:/bin), and so can every
reader holding a user's file by a bind mount in its own mount namespace, and kubelet (its view of
root's file: auths only). Anyone who could pull before an action can after it. The tests naming
each state's own outcome are beside it in host_states.py; this one asks only "never worse". The
hosts with other clients are test_agent_never_worse_clients.py's.
"""

from __future__ import annotations

import pytest

from localfleet.harnesses import single_instance as sb
from tests.agent.host_states import CORPUS, HostState, assert_never_worse

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("state", CORPUS, ids=[state.name for state in CORPUS])
def test_no_action_leaves_anyone_who_could_pull_unable_to(
    instance: sb.World, agent_script: str, state: HostState
) -> None:
    assert_never_worse(instance, agent_script, state)
