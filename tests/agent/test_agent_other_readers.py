"""Issue 20, item 4: readers of registry credentials other than users' docker, run as SSM runs the
document. Managed: kubelet's file (its own, else root's docker config), kept auths-only and renewed.
Reported with what to do: Nomad's `auth.config` file, a Swarm manager's services (agent/readers.py
says why each is managed or reported).

Same sandbox as test_agent_host_states.py. kubelet cannot run here: a process named kubelet (a copy
of sleep) stands in for its presence, and what kubelet can pull with is judged as kubelet reads the
file: its `auths` only (kubernetes pkg/credentialprovider/config.go DockerConfigJSON has Auths and
HttpHeaders, no credHelpers or credsStore), handed to the real docker CLI. A Swarm manager cannot run
here either: a docker CLI wrapper answers `docker info`'s Swarm fields as one would.
"""

from __future__ import annotations

import json
import stat

import pytest

from localfleet.deployment import single_instance as sb
from localfleet.hosts.overlay_sandbox import DOCKER_CLI
from tests.agent.on_instance import (
    TOKEN_A,
    b64,
    can_pull,
    config_of,
    config_path,
    file_state,
    kubelet_can_pull,
    kubelet_running,
    parameters,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
OLD_TOKEN = sb.moto_token(sb.ACCOUNT_B)
KUBELET_FILE = "/var/lib/kubelet/config.json"
GHCR = {"auth": b64("gh-user:gh-token")}


def users_of(run: sb.AgentRun) -> dict[str, dict[str, object]]:
    return {entry["user"]: entry for entry in run.result["users"]}  # type: ignore[union-attr]


def test_helper_keeps_roots_file_auths_only_for_kubelet_and_renews_it(
    instance: sb.World, agent_script: str
) -> None:
    """The issue's case: kubelet (self-managed) reads root's ~/.docker/config.json (no file of its
    own), auths only. helper would turn root's auths into credHelpers, which kubelet cannot use;
    instead root's file stays auths-only and its token is renewed; alice moves to the helper."""
    write_config(
        instance, "root", json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}, "ghcr.io": GHCR}})
    )
    write_config(instance, "alice", json.dumps({"auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}}))
    with kubelet_running(instance):
        assert not kubelet_can_pull(instance, config_path("root"))

        run = instance.run_document(agent_script, parameters("helper", users="root,alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok"), run.stderr
    root = config_of(instance, "root")
    assert set(root) == {"auths"}, "no credHelpers for kubelet's file"
    assert root["auths"] == {R: {"auth": b64(f"AWS:{TOKEN_A}")}, "ghcr.io": GHCR}
    assert users_of(run)["root"]["registries"][R]["state"] == "logged_in"  # type: ignore[index]
    assert config_of(instance, "alice")["credHelpers"] == {R: "ecr-login"}
    assert kubelet_can_pull(instance, config_path("root"))
    assert can_pull(instance, ("root", "alice")) == {"root": True, "alice": True}


def test_kubelets_own_file_is_renewed_by_refresh_and_helper_and_stays_auths_only(
    instance: sb.World, agent_script: str
) -> None:
    """Another of the kind: /var/lib/kubelet/config.json, first in kubelet's search, holds a stale
    token for a managed registry. refresh renews it (only the managed registries it holds; ghcr.io
    kept), helper too and never converts it; owner and mode kept; check reports it by its path."""
    instance.sandbox.write(
        KUBELET_FILE, json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}, "ghcr.io": GHCR}}), 0o600
    )
    with kubelet_running(instance):
        refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
        renewed = file_state(instance, KUBELET_FILE)
        instance.sandbox.write(
            KUBELET_FILE, json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}), 0o600
        )
        helper = instance.run_document(agent_script, parameters("helper", users="alice"))
        check = instance.run_document(agent_script, parameters("check", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stderr
    assert renewed is not None and (renewed.mode, renewed.uid) == (0o600, 0)
    assert json.loads(renewed.content) == {"auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}, "ghcr.io": GHCR}}
    assert (helper.result["outcome"], helper.result["reason"]) == ("changed", "ok"), helper.stderr
    assert json.loads(instance.sandbox.path(KUBELET_FILE).read_bytes()) == {
        "auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}
    }
    assert stat.S_IMODE(instance.sandbox.path(KUBELET_FILE).stat().st_mode) == 0o600
    assert users_of(check)[KUBELET_FILE]["registries"][R]["state"] == "logged_in"  # type: ignore[index]
    assert kubelet_can_pull(instance, KUBELET_FILE)
    assert can_pull(instance, ("alice",)) == {"alice": True}


def test_nomads_auth_config_file_is_reported_not_touched(instance: sb.World, agent_script: str) -> None:
    """Nomad's docker driver reads `auth { config = ... }` (hashicorp/nomad drivers/docker/utils.go):
    a file that is no managed user's config is not renewed by the agent; it says so (reader_nomad)
    and leaves the file as it is."""
    instance.sandbox.write(
        "/etc/nomad.d/client.hcl",
        'plugin "docker" {\n  config {\n    auth {\n      config = "/etc/docker/config.json"\n'
        "    }\n  }\n}\n",
    )
    instance.sandbox.write(
        "/etc/docker/config.json", json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}), 0o600
    )
    before = file_state(instance, "/etc/docker/config.json")

    run = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "reader_nomad"), run.stderr
    assert "/etc/docker/config.json" in str(run.result["message"])
    assert file_state(instance, "/etc/docker/config.json") == before


def test_a_swarm_manager_is_told_its_services_keep_their_own_copy(
    instance: sb.World, agent_script: str
) -> None:
    """`docker service create/update --with-registry-auth` stores the caller's credentials with the
    service and never renews them (moby #36126): on a manager the agent says so (reader_swarm)."""
    instance.sandbox.run(["mkdir", "-p", "/usr/local/libexec"]).check_returncode()
    instance.sandbox.run(["mv", DOCKER_CLI, "/usr/local/libexec/docker.real"]).check_returncode()
    wrapper = (
        "#!/bin/sh\n"
        'if [ "$1" = info ]; then echo "active true"; exit 0; fi\n'
        'exec /usr/local/libexec/docker.real "$@"\n'
    )
    instance.sandbox.write(DOCKER_CLI, wrapper, 0o755)

    run = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "reader_swarm"), run.stderr
    assert "--with-registry-auth" in str(run.result["message"])
    assert can_pull(instance, ("alice",)) == {"alice": True}
