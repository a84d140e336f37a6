"""Issue 20: no action ever leaves anyone who could pull before unable to pull after, across the
whole host-state corpus (tests/agent/host_states.py), run as SSM runs the document.

For each state: check, then refresh, then helper, on the same instance; before and after each,
whether every user (root, alice and bob, managed; carol, not) can pull each of the state's
registries from a login shell and from cron (crontab(5): PATH=/usr/bin:/bin), and so can every
reader holding a user's file by a bind mount in its own mount namespace, and kubelet (its view of
root's file: auths only). Anyone who could pull before an action can after it. The tests naming
each state's own outcome are beside it in host_states.py; this one asks only "never worse".
"""

from __future__ import annotations

import contextlib
import os

import pytest

from localfleet.deployment import single_instance as sb
from tests.agent.host_states import CORPUS, HostState
from tests.agent.on_instance import (
    can_pull,
    config_path,
    cron_pull,
    kubelet_can_pull,
    kubelet_running,
    parameters,
    reader_can_pull,
    reader_of,
)

pytestmark = pytest.mark.integration

USERS = ("root", "alice", "bob", "carol")


def who_can_pull(world: sb.World, state: HostState, readers: dict[str, int]) -> set[str]:
    able = set()
    for registry in state.registries:
        able |= {f"{user}@{registry}" for user, ok in can_pull(world, USERS, registry).items() if ok}
        able |= {
            f"{user} (cron)@{registry}" for user in ("root", "alice") if cron_pull(world, user, registry)
        }
        for target, pid in readers.items():
            if reader_can_pull(world, pid, os.path.dirname(target), registry):
                able.add(f"reader {target}@{registry}")
        if state.kubelet and kubelet_can_pull(world, config_path("root"), registry):
            able.add(f"kubelet@{registry}")
    return able


@pytest.mark.parametrize("state", CORPUS, ids=[state.name for state in CORPUS])
def test_no_action_leaves_anyone_who_could_pull_unable_to(
    instance: sb.World, agent_script: str, state: HostState
) -> None:
    state.build(instance)
    extra = {"KeepUserDockerLogin": "true"} if state.name == "keep-user-login" else {}
    with contextlib.ExitStack() as stack:
        readers = {
            target: stack.enter_context(reader_of(instance, source, target))
            for source, target in state.readers
        }
        if state.kubelet:
            stack.enter_context(kubelet_running(instance))
        before = who_can_pull(instance, state, readers)
        for action in ("check", "refresh", "helper"):
            run = instance.run_document(
                agent_script,
                parameters(
                    action,
                    registries=",".join(state.registries),
                    ReleaseBaseUrl=instance.mirror_url(),
                    **extra,
                ),
            )
            assert len(run.stdout.splitlines()) == 1, run.stderr
            after = who_can_pull(instance, state, readers)
            lost = sorted(before - after)
            assert not lost, (
                f"{action} on {state.name}: {lost} could pull before and cannot now\n{run.stdout}{run.stderr}"
            )
            before = after
