"""Issue 20, item 3 (acceptance findings 2, 3, 5): the helper is proven as each real caller runs it,
before any credential is removed; run as SSM runs the document.

Every client runs a credHelpers entry the same way: docker-credential-<name> looked up on the
caller's PATH and run with the caller's environment (docker-credential-helpers
client.NewShellProgramFunc, used by docker/cli, nerdctl and containers/image). So the proof runs
the helper's `get` as the user, for each kind of session the user has, with what that session sets
for the AWS SDK and proxies (/etc/environment through pam_env for logins and cron: linux-pam
modules/pam_env; the profiles for login shells), never with the SSM agent's own variables, and on
each caller's PATH: cron's (crontab(5): /usr/bin:/bin), systemd units' default (systemd
src/basic/path-util.h DEFAULT_PATH: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin) and the
login PATH. Same sandbox as test_agent_proven_first.py.
"""

from __future__ import annotations

import json

import pytest

from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import DOCKER_CLI
from tests.agent.on_instance import (
    CRON_PATH,
    PROBE_REPOSITORY,
    PROBE_TAG,
    REAL_HELPER,
    configs,
    cron_pull,
    parameters,
    publish_newer_release,
    user_file,
    users_of,
    write_config,
)
from tests.agent.test_agent_proven_first import EUSC, R, logged_in

pytestmark = pytest.mark.integration

UNIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
DUAL = sb.REGISTRY_A_DUALSTACK
FAILING_PROFILE = "[profile sso-dev]\nregion = eu-west-1\ncredential_process = /bin/false\n"


def pulls_with(world: sb.World, user: str, env: dict[str, str], registry: str = R) -> bool:
    """A docker pull by the user with exactly this session's variables on top of the user's own."""
    home = "/root" if user == "root" else f"/home/{user}"
    full = {**world.user_env(user, home), **env}
    full = {name: value for name, value in full.items() if value}
    image = f"{registry}/{PROBE_REPOSITORY}:{PROBE_TAG}"
    argv = [DOCKER_CLI, "manifest", "inspect", "--insecure", image]
    return world.sandbox.run(argv, env=full, user=user).returncode == 0


@pytest.mark.parametrize("where", ["/etc/environment", "/home/alice/.profile"])
def test_the_helper_is_proven_with_the_aws_profile_the_users_sessions_set(
    instance: sb.World, agent_script: str, where: str
) -> None:
    """AWS_PROFILE=sso-dev set for alice's sessions (/etc/environment: pam_env gives it to logins
    and cron; ~/.profile: login shells), and that profile cannot produce credentials
    (credential_process = /bin/false). Her token works; the helper, run as her sessions run it,
    would fail (the SDK's shared config: AWS_PROFILE selects the profile). So it is not proven:
    helper_verify_failed naming the variable, her file byte for byte as before, she still pulls."""
    logged_in(instance, "alice", R)
    user_file(instance, "alice", "/home/alice/.aws/config", FAILING_PROFILE)
    if where == "/etc/environment":
        instance.add_environment("AWS_PROFILE=sso-dev\n")
    else:
        user_file(instance, "alice", where, "export AWS_PROFILE=sso-dev\n", 0o644)
    session = {"AWS_PROFILE": "sso-dev"}
    assert pulls_with(instance, "alice", session)
    before = configs(instance, ("alice",))

    run = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_verify_failed"), run.stderr
    assert "AWS_PROFILE=sso-dev" in str(run.result["message"])
    assert configs(instance, ("alice",)) == before
    assert users_of(run)["alice"]["registries"] == {R: {"state": "logged_in"}}
    assert pulls_with(instance, "alice", session)
    assert pulls_with(instance, "alice", {**session, "PATH": CRON_PATH})


def test_the_ssm_agents_proxy_is_not_the_callers(instance: sb.World, agent_script: str) -> None:
    """The proxy is set only in the SSM agent's unit (AWS's documented way to give the agent one),
    not in /etc/environment: cron jobs and login shells have none, and the ECR API is reachable here
    only through it. The helper proven with the agent's HTTPS_PROXY would answer, and cron's pulls
    would fail after; proven as cron runs it, it does not answer, so the working token stays."""
    instance.sandbox.write("/etc/environment", "")
    logged_in(instance, "alice", R)
    without_proxy = {"HTTPS_PROXY": "", "NO_PROXY": "", "PATH": CRON_PATH}
    assert pulls_with(instance, "alice", without_proxy)
    before = configs(instance, ("alice",))

    run = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_verify_failed"), run.stderr
    assert configs(instance, ("alice",)) == before
    assert pulls_with(instance, "alice", without_proxy)
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert users_of(check)["alice"]["registries"] == {R: {"state": "logged_in"}}


def test_an_older_helper_first_on_some_callers_path_keeps_the_token_and_is_named(
    instance: sb.World, agent_script: str
) -> None:
    """A stale 0.6.0 in /usr/local/sbin: first on root's login PATH and on systemd units' default
    PATH, not on cron's. The pinned release goes to /usr/local/bin and /usr/bin, but root's login
    shell and units would still run 0.6.0, which does not know the EU sovereign cloud's names
    (CHANGELOG 0.11.0, #1034). So the registry keeps its token (helper_too_old, the copy's path
    named), and root still pulls from a login shell, a unit and cron."""
    publish_newer_release(instance)
    instance.sandbox.write("/usr/local/sbin/docker-credential-ecr-login", REAL_HELPER, 0o755)
    logged_in(instance, "root", EUSC)
    before = configs(instance, ("root",))

    run = instance.run_document(
        agent_script,
        parameters("helper", registries=EUSC, users="root", ReleaseBaseUrl=instance.mirror_url()),
    )

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_too_old"), run.stderr
    message = str(run.result["message"])
    assert "found 0.6.0 at /usr/local/sbin/docker-credential-ecr-login" in message
    assert configs(instance, ("root",)) == before
    for env in ({}, {"PATH": UNIT_PATH}):
        assert pulls_with(instance, "root", env, EUSC)
    assert cron_pull(instance, "root", EUSC)


def test_keep_user_docker_login_that_cannot_be_kept_moves_no_registry(
    instance: sb.World, agent_script: str
) -> None:
    """KeepUserDockerLogin promises that users' own `docker login` keeps working once the helper serves
    a registry; that needs AWS_ECR_IGNORE_CREDS_STORAGE=true in /etc/environment (ecr-login/ecr.go Add,
    #847). /etc/environment is checked and written first: here a symlink (refused, config_unsafe) and
    then an administrator's own `false` (kept), so no registry moves and the user's file stays byte
    for byte (acceptance finding 9); the message does not claim a move."""
    publish_newer_release(instance)
    logged_in(instance, "alice", R)
    before = configs(instance, ("alice",))
    instance.sandbox.write("/etc/environment.real", "LANG=C\n")
    instance.sandbox.run(["ln", "-sf", "/etc/environment.real", "/etc/environment"]).check_returncode()
    extra = {"ReleaseBaseUrl": instance.mirror_url(), "KeepUserDockerLogin": "true"}

    linked = instance.run_document(agent_script, parameters("helper", users="alice", **extra))

    assert (linked.result["outcome"], linked.result["reason"]) == ("failed", "config_unsafe"), linked.stderr
    assert "registries left as they are" in str(linked.result["message"])
    assert "nothing was moved to the helper" in str(linked.result["message"])
    assert configs(instance, ("alice",)) == before
    assert instance.sandbox.path("/etc/environment.real").read_text() == "LANG=C\n"

    instance.sandbox.run(["rm", "/etc/environment"]).check_returncode()
    instance.sandbox.write("/etc/environment", "AWS_ECR_IGNORE_CREDS_STORAGE=false\n")
    refused = instance.run_document(agent_script, parameters("helper", users="alice", **extra))

    assert (refused.result["outcome"], refused.result["reason"]) == ("failed", "config_unsafe"), (
        refused.stderr
    )
    assert "AWS_ECR_IGNORE_CREDS_STORAGE=false: left as it is" in str(refused.result["message"])
    assert instance.sandbox.path("/etc/environment").read_text() == "AWS_ECR_IGNORE_CREDS_STORAGE=false\n"
    assert configs(instance, ("alice",)) == before


def test_messages_say_what_was_done(instance: sb.World, agent_script: str) -> None:
    """Acceptance finding 12: a helper run that moves nothing (0.6.0 too old for the EU sovereign
    cloud, no release to fetch) does not say "helper already configured" or that users' own logins
    now fail; a refresh that logs in to one of two registries (the other served by the helper) counts
    one registry."""
    logged_in(instance, "alice", EUSC)

    helper = instance.run_document(agent_script, parameters("helper", registries=EUSC, users="alice"))

    message = str(helper.result["message"])
    assert helper.result["reason"] == "helper_too_old", helper.stderr
    assert "already configured" not in message and "now fails" not in message
    assert "nothing was moved to the helper" in message

    write_config(instance, "alice", json.dumps({"credHelpers": {R: "ecr-login"}, "auths": {}}))
    refresh = instance.run_document(
        agent_script, parameters("refresh", registries=f"{R},{DUAL}", users="alice")
    )

    assert refresh.result["outcome"] == "changed", refresh.stderr
    assert "logged in 1 user to 1 registry" in str(refresh.result["message"])
