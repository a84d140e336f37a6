"""Issue 20 on issue 19's hosts: no action ever leaves anyone who could pull before unable to pull
after, on hosts whose users pull with podman (with or without podman-docker), skopeo or nerdctl, with
files named by DOCKER_CONFIG or REGISTRY_AUTH_FILE, rootless users, a containers auth.json
bind-mounted into a reader, kubelet beside podman (tests/agent/host_states.py CLIENT_CORPUS), run as
SSM runs the document.

Each state says who is asked (its `pullers`): each user's own client, as that user runs it, from a
login shell (with the session's XDG_RUNTIME_DIR where the state has one, the variables the user's
environment sets) and from cron, judged by the real client (`podman pull`, `skopeo inspect`,
`docker manifest inspect`; nerdctl's stand-in). Anyone who could pull before an action can after it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from localfleet.harnesses import single_instance as sb
from tests.agent.host_states import CLIENT_CORPUS, HostState, assert_never_worse
from tests.support.sandboxed_instance import DEFAULT_USERS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("state", CLIENT_CORPUS, ids=[state.name for state in CLIENT_CORPUS])
def test_no_action_leaves_any_client_that_could_pull_unable_to(
    instance_with: Callable[..., sb.World], agent_script: str, state: HostState
) -> None:
    assert state.clients is not None
    world = instance_with(*state.clients, users=dict(state.users) if state.users else DEFAULT_USERS)
    could = assert_never_worse(world, agent_script, state)
    # A state nobody could pull on before would prove nothing about keeping them able to.
    assert could, f"{state.name}: none of {[str(p) for p in state.pullers]} could pull before any action"
