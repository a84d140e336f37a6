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
import os
import signal
import stat
import subprocess

import pytest

from localfleet.harnesses import single_instance as sb
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
    users_of,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
OLD_TOKEN = sb.moto_token(sb.ACCOUNT_B)
KUBELET_FILE = "/var/lib/kubelet/config.json"
GHCR = {"auth": b64("gh-user:gh-token")}


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


KUBELET_UNIT = (
    "[Service]\nExecStart=/usr/bin/kubelet $KUBELET_EXTRA_ARGS\nEnvironmentFile=-/etc/default/kubelet\n"
)


def test_an_installed_kubelet_that_is_not_running_keeps_roots_file_auths_only(
    instance: sb.World, agent_script: str
) -> None:
    """kubelet installed (its binary, kubelet.service) but stopped at this moment (a restart, a node
    being drained): it reads root's file again when it starts. So helper treats it as running:
    root's file stays auths-only, its token renewed (acceptance finding 6)."""
    instance.sandbox.run(["cp", "/bin/sleep", "/usr/bin/kubelet"]).check_returncode()
    instance.sandbox.write("/lib/systemd/system/kubelet.service", KUBELET_UNIT)
    write_config(instance, "root", json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}))

    run = instance.run_document(agent_script, parameters("helper", users="root"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok"), run.stderr
    assert config_of(instance, "root") == {"auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}}
    assert kubelet_can_pull(instance, config_path("root"))


def test_kubelets_root_dir_from_its_extra_args_is_where_its_file_is_renewed(
    instance: sb.World, agent_script: str
) -> None:
    """--root-dir=/data/kubelet in KUBELET_EXTRA_ARGS (/etc/default/kubelet, the file the deb
    packages' drop-in reads): kubelet's preferred path is that root directory
    (cmd/kubelet/app/server.go SetPreferredDockercfgPath(RootDirectory)), so its config.json there is
    the one refresh renews and check lists under its path."""
    instance.sandbox.run(["cp", "/bin/sleep", "/usr/bin/kubelet"]).check_returncode()
    instance.sandbox.write("/lib/systemd/system/kubelet.service", KUBELET_UNIT)
    instance.sandbox.write("/etc/default/kubelet", "KUBELET_EXTRA_ARGS=--root-dir=/data/kubelet\n")
    own = "/data/kubelet/config.json"
    instance.sandbox.write(own, json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}), 0o600)

    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
    check = instance.run_document(agent_script, parameters("check", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stderr
    assert json.loads(instance.sandbox.path(own).read_bytes()) == {
        "auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}
    }
    assert users_of(check)[own]["registries"][R]["state"] == "logged_in"  # type: ignore[index]
    assert kubelet_can_pull(instance, own)


def test_a_running_kubelets_working_directory_file_is_renewed(instance: sb.World, agent_script: str) -> None:
    """Second in kubelet's search: config.json in its working directory (config.go workingDirPath,
    filepath.Abs of a relative name), /etc/kubernetes here (a unit's WorkingDirectory=)."""
    own = "/etc/kubernetes/config.json"
    instance.sandbox.write(own, json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}), 0o600)
    with kubelet_running(instance, cwd="/etc/kubernetes"):
        refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (refresh.result["outcome"], refresh.result["reason"]) == ("changed", "ok"), refresh.stderr
    assert json.loads(instance.sandbox.path(own).read_bytes()) == {
        "auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}
    }
    assert kubelet_can_pull(instance, own)


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


def test_nomads_json_client_config_is_read_too(instance: sb.World, agent_script: str) -> None:
    """Nomad loads *.json beside *.hcl from a configuration directory (nomad command/agent/config.go
    LoadConfigDir): the docker plugin's auth.config in /etc/nomad.d/client.json is seen as well, and
    so is the legacy client option "docker.auth.config" (acceptance finding 7)."""
    plugin = {"plugin": {"docker": {"config": {"auth": {"config": "/etc/docker/config.json"}}}}}
    instance.sandbox.write("/etc/nomad.d/client.json", json.dumps(plugin, indent=2))
    instance.sandbox.write(
        "/etc/nomad.d/legacy.hcl",
        'client {\n  options {\n    "docker.auth.config" = "/srv/nomad/auth.json"\n  }\n}\n',
    )

    run = instance.run_document(agent_script, parameters("check", users="alice"))

    assert run.result["reason"] == "reader_nomad", run.stderr
    assert "Nomad (/etc/nomad.d/client.json) reads /etc/docker/config.json" in run.stderr
    assert "Nomad (/etc/nomad.d/legacy.hcl) reads /srv/nomad/auth.json" in run.stderr


def test_a_running_nomad_agents_own_config_directory_is_read(instance: sb.World, agent_script: str) -> None:
    """`nomad agent -config=/opt/nomad/config` (a directory outside /etc/nomad.d, as systemd units
    of tarball installs have it): the running agent's -config places are read as well."""
    instance.sandbox.write(
        "/opt/nomad/config/docker.hcl",
        'plugin "docker" {\n  config {\n    auth {\n      config = "/opt/nomad/docker.json"\n    }\n  }\n}\n',
    )
    instance.sandbox.write("/usr/local/bin/nomad", "#!/bin/sh\nsleep 600\n", 0o755)
    process = subprocess.Popen(
        [*instance.sandbox.enter(), "/usr/local/bin/nomad", "agent", "-config=/opt/nomad/config"],
        start_new_session=True,
    )
    try:
        run = instance.run_document(agent_script, parameters("check", users="alice"))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    assert run.result["reason"] == "reader_nomad", run.stderr
    assert "Nomad (/opt/nomad/config/docker.hcl) reads /opt/nomad/docker.json" in run.stderr


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
