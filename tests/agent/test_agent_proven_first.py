"""Issue 20, items 1 and 3: a credential is never removed before its replacement is proven, and the
helper is judged as docker's real callers run it; run as SSM runs the document.

Same sandbox as test_agent_host_states.py: the real docker CLI, a TLS registry answering to the ECR
names (also the EU sovereign cloud's, localfleet/harnesses/single_instance.py REGISTRY_EUSC), the AWS
CLI against moto, Debian's credential helper 0.6.0 as the distribution package. The pinned release
(0.12.0) cannot be had here: the mirror serves a stand-in for it (tests/agent/stubs/ecr-login-release.py,
0.12.0's name pattern and -v, tokens through the real 0.6.0), or the real 0.6.0 under 0.12.0's path.
Each test asserts the bytes, mode and owner of the files afterwards and who can pull, from a login
shell and from cron (crontab(5): PATH=/usr/bin:/bin).
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from ecr_fleet_auth.shared import contract
from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import HELPER_BIN
from tests.agent.on_instance import (
    REAL_HELPER,
    TOKEN_A,
    b64,
    can_pull,
    config_of,
    config_path,
    configs,
    cron_pull,
    parameters,
    publish_newer_release,
    users_of,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
EUSC = sb.REGISTRY_EUSC
RELEASE_BIN = "/usr/local/bin/docker-credential-ecr-login"


def logged_in(world: sb.World, user: str, *registries: str) -> None:
    """A working `docker login` to each registry in the user's file (what a script did last)."""
    auths = {registry: {"auth": b64(f"AWS:{TOKEN_A}")} for registry in registries}
    write_config(world, user, json.dumps({"auths": auths}, indent=2))


def test_a_packaged_helper_too_old_for_the_registry_leaves_the_working_token(
    instance: sb.World, agent_script: str
) -> None:
    """The issue's case. Debian 12's package is 0.6.0; its pattern (ecr-login/api/client.go v0.6.0)
    does not match `.amazonaws.eu`, so `get` answers "credentials not found" and docker would pull
    anonymously. The EU sovereign cloud's names need 0.11.0 (CHANGELOG, #1034); no release can be
    fetched (the mirror has none), so the registry keeps its token: helper_too_old, versions named,
    the file byte-identical, and refresh keeps managing the login."""
    logged_in(instance, "alice", EUSC)
    before = configs(instance, ("alice",))
    assert can_pull(instance, ("alice",), EUSC) == {"alice": True}
    denied = instance.sandbox.run(
        [HELPER_BIN, "get"], stdin=EUSC.encode(), env=instance.user_env("root", "/root")
    )
    assert b"credentials not found" in denied.stdout, "0.6.0 does not know this name"

    run = instance.run_document(
        agent_script,
        parameters("helper", registries=EUSC, users="alice", ReleaseBaseUrl=instance.mirror_url()),
    )

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_too_old"), run.stderr
    message = str(run.result["message"])
    assert f"{EUSC} needs docker-credential-ecr-login 0.11.0+, found 0.6.0" in message
    assert configs(instance, ("alice",)) == before
    assert users_of(run)["alice"]["registries"] == {EUSC: {"state": "logged_in"}}
    assert can_pull(instance, ("alice",), EUSC) == {"alice": True}
    assert not instance.sandbox.path(RELEASE_BIN).exists()

    refresh = instance.run_document(agent_script, parameters("refresh", registries=EUSC, users="alice"))
    assert refresh.result["outcome"] in ("changed", "unchanged"), refresh.stderr
    assert users_of(refresh)["alice"]["registries"][EUSC]["state"] == "logged_in"  # type: ignore[index]


def test_a_release_that_is_not_the_version_it_claims_is_not_installed(
    instance: sb.World, agent_script: str
) -> None:
    """Another of the kind: the mirror's file under 0.12.0 passes its sha256 but is 0.6.0 (its own
    -v says so). The agent checks what it downloaded before it replaces anything: nothing installed,
    the package's binary not moved aside, the token kept."""
    instance.publish_release(contract.DEFAULT_HELPER_VERSION, "amd64", REAL_HELPER)
    logged_in(instance, "alice", EUSC)
    before = configs(instance, ("alice",))

    run = instance.run_document(
        agent_script,
        parameters("helper", registries=EUSC, users="alice", ReleaseBaseUrl=instance.mirror_url()),
    )

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_too_old"), run.stderr
    assert "says it is 0.6.0" in str(run.result["message"])
    assert configs(instance, ("alice",)) == before
    assert not instance.sandbox.path(RELEASE_BIN).exists()
    assert instance.sandbox.path(HELPER_BIN).read_bytes() == REAL_HELPER
    assert not [n for n in os.listdir(instance.sandbox.path("/usr/local/bin")) if "ecr-login" in n]
    assert can_pull(instance, ("alice",), EUSC) == {"alice": True}


def test_the_pinned_release_replaces_a_too_old_package_for_every_caller(
    instance: sb.World, agent_script: str
) -> None:
    """With the release reachable, the agent installs it (sha256, then its -v: 0.12.0), moves the
    package's 0.6.0 aside with dpkg-divert (package upgrades then go to .distrib) and links
    /usr/bin/docker-credential-ecr-login to it, so a login shell and cron run the same helper. Then
    it proves the helper for each user and registry before it edits: both users, both registries."""
    publish_newer_release(instance)
    logged_in(instance, "alice", EUSC, R)
    logged_in(instance, "bob", R)

    run = instance.run_document(
        agent_script,
        parameters(
            "helper", registries=f"{EUSC},{R}", users="alice,bob", ReleaseBaseUrl=instance.mirror_url()
        ),
    )

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok"), run.stderr
    assert run.result["host"]["helper"] == "0.12.0"  # type: ignore[index]
    assert "replaced by release 0.12.0" in str(run.result["message"])
    link = instance.sandbox.path(HELPER_BIN)
    assert link.is_symlink() and os.readlink(link) == RELEASE_BIN
    assert instance.sandbox.path(HELPER_BIN + ".distrib").read_bytes() == REAL_HELPER
    diversions = instance.sandbox.run(["dpkg-divert", "--list", HELPER_BIN]).stdout.decode()
    assert f"local diversion of {HELPER_BIN} to {HELPER_BIN}.distrib" in diversions
    for user in ("alice", "bob"):
        assert config_of(instance, user)["credHelpers"] == {EUSC: "ecr-login", R: "ecr-login"}
        info = instance.sandbox.path(config_path(user)).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (
            0o600,
            instance.sandbox.path(f"/home/{user}").stat().st_uid,
        )
    assert config_of(instance, "alice")["auths"] == {}
    for registry in (EUSC, R):
        assert can_pull(instance, ("alice", "bob"), registry) == {"alice": True, "bob": True}
        assert cron_pull(instance, "alice", registry) and cron_pull(instance, "bob", registry)


def test_a_user_the_helper_cannot_serve_keeps_the_token_and_the_others_move(
    instance: sb.World, agent_script: str
) -> None:
    """The proof is per user: alice's own AWS credentials are gone (the helper runs as her, with
    her environment, and its `get` fails), so her working token stays, byte for byte, and the
    report says why (helper_verify_failed); bob's helper answers, so bob moves to it."""
    logged_in(instance, "alice", R)
    logged_in(instance, "bob", R)
    instance.sandbox.run(["rm", "-rf", "/home/alice/.aws"]).check_returncode()
    before = configs(instance, ("alice",))

    run = instance.run_document(agent_script, parameters("helper", users="alice,bob"))

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_verify_failed"), run.stderr
    assert f"alice@{R}" in str(run.result["message"])
    assert configs(instance, ("alice",)) == before
    assert users_of(run)["alice"]["registries"] == {R: {"state": "logged_in"}}
    assert config_of(instance, "bob")["credHelpers"] == {R: "ecr-login"}
    assert can_pull(instance, ("alice", "bob")) == {"alice": True, "bob": True}


def test_a_helper_off_crons_path_is_reported_and_linked_where_every_caller_finds_it(
    instance: sb.World, agent_script: str
) -> None:
    """The issue's case: the release binary in /usr/local/bin, and root's crontab runs docker pull;
    cron's PATH is /usr/bin:/bin (crontab(5)), docker finds no helper and pulls fail with "no basic
    auth credentials" (amazon-ecr-credential-helper #870, #117, #116, #52). check judges the helper
    with that PATH (helper_unavailable); helper links it into /usr/bin; then cron pulls work too."""
    instance.sandbox.run(["mv", HELPER_BIN, RELEASE_BIN]).check_returncode()
    for user in ("root", "alice"):
        write_config(instance, user, json.dumps({"credHelpers": {R: "ecr-login"}}))
    assert can_pull(instance, ("root", "alice")) == {"root": True, "alice": True}, "login shells find it"
    assert not cron_pull(instance, "root") and not cron_pull(instance, "alice")
    before = configs(instance, ("root", "alice"))

    check = instance.run_document(agent_script, parameters("check", users="root,alice"))

    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "helper_unavailable"), (
        check.stderr
    )
    assert "PATH /usr/bin:/bin" in str(check.result["message"])
    assert configs(instance, ("root", "alice")) == before

    helper = instance.run_document(agent_script, parameters("helper", users="root,alice"))

    assert (helper.result["outcome"], helper.result["reason"]) == ("changed", "ok"), helper.stderr
    assert "linked into /usr/bin" in str(helper.result["message"])
    assert os.readlink(instance.sandbox.path(HELPER_BIN)) == RELEASE_BIN
    assert configs(instance, ("root", "alice")) == before, "the configs were right already"
    assert cron_pull(instance, "root") and cron_pull(instance, "alice")
    assert can_pull(instance, ("root", "alice")) == {"root": True, "alice": True}


def test_keep_user_docker_login_makes_a_users_own_login_succeed_in_a_new_session(
    instance: sb.World, agent_script: str
) -> None:
    """Issue 20, item 6: scripts still run `aws ecr get-login-password | docker login ...`. Once
    credHelpers send the registry to ecr-login, docker login stores through it and the helper says
    "not implemented" (ecr-login/ecr.go Add), unless it is 0.9.0+ and AWS_ECR_IGNORE_CREDS_STORAGE
    is "true" where docker runs (#847; buildkite elastic-ci-stack #1671). With KeepUserDockerLogin the
    agent needs 0.9.0 (the package's 0.6.0 is replaced by the pinned release) and puts the variable
    in /etc/environment, which pam_env gives a new session (here `su -`, Debian's /etc/pam.d/su:
    pam_env.so readenv=1). The same login without it still fails, as the helper's README says."""
    publish_newer_release(instance)
    logged_in(instance, "alice", R)
    environment = instance.sandbox.path("/etc/environment").read_bytes()

    run = instance.run_document(
        agent_script,
        parameters("helper", users="alice", ReleaseBaseUrl=instance.mirror_url(), KeepUserDockerLogin="true"),
    )

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok"), run.stderr
    assert "keeps working" in str(run.result["message"])
    after = instance.sandbox.path("/etc/environment").read_bytes()
    assert after == environment.rstrip(b"\n") + (b"\n" if environment.strip() else b"") + (
        b"AWS_ECR_IGNORE_CREDS_STORAGE=true\n"
    )
    assert instance.sandbox.path("/etc/environment.ecr-fleet-auth.bak").read_bytes() == environment
    assert config_of(instance, "alice")["credHelpers"] == {R: "ecr-login"}
    login = f"printf %s {TOKEN_A} | /usr/local/bin/docker login -u AWS --password-stdin {R}"
    session = instance.sandbox.run(["su", "-", "alice", "-c", login], env=instance.user_env("root", "/root"))
    assert session.returncode == 0 and b"Login Succeeded" in session.stdout, session.stderr
    without = instance.sandbox.run(
        ["sh", "-c", login], env=instance.user_env("alice", "/home/alice"), user="alice"
    )
    assert without.returncode != 0 and b"not implemented" in without.stderr + without.stdout
    # docker's marker beside a credential store (no secret): the helper still serves the registry
    assert config_of(instance, "alice") == {"auths": {R: {}}, "credHelpers": {R: "ecr-login"}}
    assert can_pull(instance, ("alice",)) == {"alice": True}
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert users_of(check)["alice"]["registries"] == {R: {"state": "helper"}}
