"""Issue 20, item 2: a config some reader holds by its inode stays live, run as SSM runs the document.

Same sandbox as test_agent_host_states.py (the real docker CLI, a TLS registry under the ECR host
name, the AWS CLI against moto, Debian's credential helper 0.6.0). The reader is a process in the
instance in a mount namespace of its own where a user's config.json is bind-mounted on its own, as
`docker run -v /root/.docker/config.json:/config.json containrrr/watchtower` has it: a single-file
bind mount pins the inode it found, so a rename over the file (docker/cli configfile/file.go Save:
temp file + os.Rename; the agent's atomic write) leaves the container on the old copy for good and
its /proc/<pid>/mountinfo root ends `//deleted` (watchtower #451, #596). Each test asserts the bytes,
mode, owner and inode of the files afterwards and whether the host's user and the reader can pull.
"""

from __future__ import annotations

import json
import stat

import pytest

from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import DOCKER_CLI
from tests.agent.mount_readers import seen_by
from tests.agent.on_instance import (
    TOKEN_A,
    b64,
    backup_path,
    can_pull,
    config_path,
    inode,
    parameters,
    reader_can_pull,
    reader_of,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
OLD_TOKEN = sb.moto_token(sb.ACCOUNT_B)  # a token the registry no longer takes
WATCHTOWER_CONFIG = "/config/config.json"


def mode_owner_inode(world: sb.World, inside: str) -> tuple[int, int, int]:
    info = world.sandbox.path(inside).stat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_ino


def test_refresh_updates_a_bind_mounted_config_in_place_and_the_container_can_pull(
    instance: sb.World, agent_script: str
) -> None:
    """The issue's case: root's config bind-mounted into a watchtower-like reader. The agent finds
    the mount in the reader's mountinfo (root /root/.docker/config.json, same inode through
    /proc/<pid>/root), backs the file up, and rewrites it in place: same inode, owner and mode."""
    old = json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}, "detachKeys": "ctrl-e,e"}, indent=2)
    write_config(instance, "root", old)
    before = mode_owner_inode(instance, config_path("root"))
    with reader_of(instance, config_path("root"), WATCHTOWER_CONFIG) as reader:
        assert not reader_can_pull(instance, reader, "/config")

        run = instance.run_document(agent_script, parameters("refresh", users="root"))

        assert (run.result["outcome"], run.result["reason"]) == ("changed", "written_in_place"), run.stderr
        assert f"{reader}:{WATCHTOWER_CONFIG}" in str(run.result["message"])
        assert run.result["users"][0]["in_place"] is True  # type: ignore[index]
        assert mode_owner_inode(instance, config_path("root")) == before == (0o600, 0, before[2])
        content = instance.sandbox.path(config_path("root")).read_bytes()
        assert json.loads(content)["auths"] == {R: {"auth": b64(f"AWS:{TOKEN_A}")}}
        assert json.loads(content)["detachKeys"] == "ctrl-e,e"
        assert seen_by(reader, WATCHTOWER_CONFIG) == (content, before[2])
        assert instance.sandbox.path(backup_path("root")).read_bytes() == old.encode()
        assert reader_can_pull(instance, reader, "/config")
        assert can_pull(instance, ("root",)) == {"root": True}

        again = instance.run_document(agent_script, parameters("refresh", users="root"))
        assert (again.result["outcome"], again.result["reason"]) == ("unchanged", "ok")
        assert instance.sandbox.path(config_path("root")).read_bytes() == content


def test_helper_leaves_a_bind_mounted_config_auths_only_renewed_in_place_for_a_reader_without_the_helper(
    instance: sb.World, agent_script: str
) -> None:
    """The helper action and a file mounted into another mount namespace: the reader there (watchtower,
    a CI agent) resolves credentials with docker's own config code in its own image, which need not
    have docker-credential-ecr-login; credHelpers would send it to a program it cannot run (docker/cli
    cli/config/credentials: NewNativeStore for a credHelpers entry, exec of docker-credential-<name>
    on the container's PATH). So, as for kubelet (kubernetes pkg/credentialprovider/config.go reads
    `auths` only), the file stays auths-only: its token is renewed in place (same inode, mode,
    owner) and the message says which file was kept. The reader here runs docker with a PATH that
    has no helper, and pulls before and after."""
    write_config(instance, "alice", json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}))
    before = mode_owner_inode(instance, config_path("alice"))
    with reader_of(instance, config_path("alice"), WATCHTOWER_CONFIG) as reader:
        run = instance.run_document(agent_script, parameters("helper", users="alice"))

        assert (run.result["outcome"], run.result["reason"]) == ("changed", "written_in_place"), run.stderr
        assert "kept as logins for readers without the helper: /home/alice/.docker/config.json" in str(
            run.result["message"]
        )
        assert "helper already configured" not in str(run.result["message"])
        assert mode_owner_inode(instance, config_path("alice")) == before
        content = instance.sandbox.path(config_path("alice")).read_bytes()
        assert json.loads(content) == {"auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}}
        assert seen_by(reader, WATCHTOWER_CONFIG)[0] == content
        assert reader_can_pull(instance, reader, "/config", path="/image-bin")
        assert can_pull(instance, ("alice",)) == {"alice": True}


def test_a_hard_linked_config_is_written_in_place_and_the_other_name_stays_current(
    instance: sb.World, agent_script: str
) -> None:
    """Another reader that holds the inode: a hard link (a service pointed at another path, Nomad's
    `auth.config` say). A rename would leave that name on the old copy, as with a bind mount."""
    write_config(instance, "root", json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}))
    instance.sandbox.run(["mkdir", "-p", "/etc/nomad-docker"]).check_returncode()
    instance.sandbox.run(["ln", config_path("root"), "/etc/nomad-docker/config.json"]).check_returncode()

    run = instance.run_document(agent_script, parameters("refresh", users="root"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "written_in_place"), run.stderr
    assert "2 hard links" in str(run.result["message"])
    other = instance.sandbox.path("/etc/nomad-docker/config.json")
    assert other.read_bytes() == instance.sandbox.path(config_path("root")).read_bytes()
    assert other.stat().st_ino == inode(instance, config_path("root"))
    env = {**instance.user_env("root", "/root"), "DOCKER_CONFIG": "/etc/nomad-docker"}
    probe = f"{R}/probe/app:v1"
    done = instance.sandbox.run([DOCKER_CLI, "manifest", "inspect", "--insecure", probe], env=env)
    assert done.returncode == 0, done.stderr


def test_a_container_left_on_a_copy_docker_login_replaced_is_reported_with_its_mount(
    instance: sb.World, agent_script: str
) -> None:
    """After a `docker login` on the host (docker/cli Save: rename), the container's mount shows
    `/root/.docker/config.json//deleted` and keeps the old token: no write to the file reaches it.
    Every action says so (reader_stale, with the process and mount point); the host's file is
    current and left as it is."""
    write_config(instance, "root", json.dumps({"auths": {R: {"auth": b64(f"AWS:{OLD_TOKEN}")}}}))
    with reader_of(instance, config_path("root"), WATCHTOWER_CONFIG) as reader:
        login = instance.sandbox.run(
            [DOCKER_CLI, "login", "-u", "AWS", "--password-stdin", R],
            env=instance.user_env("root", "/root"),
            stdin=TOKEN_A.encode(),
        )
        assert login.returncode == 0, login.stderr
        after_login = instance.sandbox.path(config_path("root")).read_bytes()
        assert not reader_can_pull(instance, reader, "/config"), "the container kept the old copy"

        for action in ("check", "refresh"):
            run = instance.run_document(agent_script, parameters(action, users="root"))
            assert run.result["reason"] == "reader_stale", run.stderr
            assert f"{reader}:{WATCHTOWER_CONFIG}" in str(run.result["message"])
        assert instance.sandbox.path(config_path("root")).read_bytes() == after_login
        assert can_pull(instance, ("root",)) == {"root": True}
        assert not reader_can_pull(instance, reader, "/config")
