"""Host states people running docker and ECR on EC2 have reported, run as SSM runs the document.

Each test puts a real state on a sandboxed instance (localfleet/harnesses/single_instance.py: the
real docker CLI, a TLS registry under the real ECR host name, the AWS CLI against moto, Debian's
credential helper 0.6.0), runs the synthesized document's shell step as the SSM agent does, and
asserts the bytes, mode and owner of every user's config afterwards and whether each user can pull.
What is right comes from what docker itself does with the file: the docstrings name the source, and
where it matters the test asks the real docker CLI too. Stand-ins only for what cannot run here:
docker-credential-pass (tests/agent/stubs/docker-credential-pass.py) and the package managers.
"""

from __future__ import annotations

import json
import shutil

import pytest

from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import DOCKER_CLI, HELPER_BIN, INSTANCE_PATH
from tests.agent.on_instance import (
    GHCR_AUTH,
    ISSUE_FEATURES,
    TOKEN_A,
    assert_token_confined,
    b64,
    backup_path,
    can_pull,
    clear_pass_calls,
    config_of,
    config_path,
    configs,
    docker_loads_config_of,
    file_state,
    home,
    install_package_managers,
    install_pass_standin,
    parameters,
    pass_calls,
    pass_store,
    users_of,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
MANAGED = ("root", "alice", "bob")
MOTO_ARN = "arn:aws:sts::123456789012:user/moto"


def reads(world: sb.World, user: str, inside: str) -> bool:
    return world.sandbox.run(["cat", inside], user=user).returncode == 0


# ---------------------------------------------------------------- a config docker cannot load

AUTH_WITHOUT_PASSWORD = json.dumps({"auths": {"ghcr.io": {"auth": GHCR_AUTH}, R: {"auth": b64("AWS")}}})


@pytest.mark.parametrize("content", [ISSUE_FEATURES, AUTH_WITHOUT_PASSWORD], ids=["features", "auth"])
def test_a_config_docker_cannot_load_is_config_corrupt_and_byte_identical_in_every_action(
    instance: sb.World, agent_script: str, content: str
) -> None:
    """docker/cli cli/config/configfile/file.go LoadFromReader: the typed decode fails (`features`
    is map[string]string, a bool is an UnmarshalTypeError) or decodeAuth refuses an auth without
    `user:` ("invalid auth configuration file"); cli/config/config.go LoadDefaultConfigFile then
    prints "WARNING: Error parsing config file" and carries on with the half-loaded struct, which a
    `docker login` saves back (credentials of other registries become `{}`; docker/cli #5075)."""
    write_config(instance, "alice", content)
    assert not docker_loads_config_of(instance, "alice"), "the real docker CLI rejects this file"
    before = configs(instance, ("alice",))

    for action in ("check", "refresh", "helper"):
        run = instance.run_document(agent_script, parameters(action))
        assert (run.result["outcome"], run.result["reason"]) == (
            "unchanged" if action == "check" else "failed",
            "config_corrupt",
        ), run.stderr
        assert users_of(run)["alice"]["reason"] == "config_corrupt"
        assert users_of(run)["alice"]["registries"] == {}
        assert "docker cannot load" in str(run.result["message"])
        assert configs(instance, ("alice",)) == before, f"{action} touched the file"

    assert can_pull(instance, MANAGED) == {"root": True, "alice": False, "bob": True}


def test_docker_itself_would_lose_the_other_registrys_credential(instance: sb.World) -> None:
    """Why the agent never lets docker rewrite such a file: docker's own login saves what it half
    loaded (file.go SaveToWriter encodes the empty user/password as "" for ghcr.io)."""
    path = write_config(instance, "alice", ISSUE_FEATURES)
    done = instance.sandbox.run(
        [DOCKER_CLI, "login", "--username", "AWS", "--password-stdin", R],
        env={"PATH": INSTANCE_PATH, "HOME": home("alice")},
        user="alice",
        stdin=TOKEN_A.encode(),
    )
    assert done.returncode == 0, done.stderr
    after = json.loads(path.read_bytes())
    assert after["auths"]["ghcr.io"] == {}
    assert after["features"] == {"buildkit": ""}


def test_a_config_docker_loads_is_managed_and_keeps_what_docker_would_drop(
    instance: sb.World, agent_script: str
) -> None:
    """file.go: Go's decoder matches `Auths` to `auths` (case-insensitive keys), ignores unknown keys
    (`myTool`, and `stackOrchestrator`, which docker dropped in 24.0) and reads only the first JSON
    value; docker's Save would write none of the unknown keys back. The agent keeps them all."""
    content = (
        '{"Auths": {"ghcr.io": {"auth": "' + GHCR_AUTH + '"}}, "myTool": {"level": 1.50}, '
        '"stackOrchestrator": "swarm"}\n'
    )
    write_config(instance, "alice", content)
    assert docker_loads_config_of(instance, "alice")

    run = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok"), run.stderr
    after = config_of(instance, "alice")
    assert after == {
        "Auths": {"ghcr.io": {"auth": GHCR_AUTH}, R: {"auth": b64(f"AWS:{TOKEN_A}")}},
        "myTool": {"level": 1.5},
        "stackOrchestrator": "swarm",
    }
    assert b'"level": 1.50' in instance.sandbox.path(config_path("alice")).read_bytes()
    assert docker_loads_config_of(instance, "alice")
    assert can_pull(instance, ("alice",)) == {"alice": True}


# ---------------------------------------------------------------- secrets never widen


def test_a_token_is_never_written_where_others_can_read_it(instance: sb.World, agent_script: str) -> None:
    """A home 0755, ~/.docker 0755 and a config 0644 holding another registry's credential: docker's
    own Save keeps the mode (file.go copyFilePermissions), so `docker login` would put the ECR token
    where carol, outside the docker group, reads it. The agent writes it owner-only and says so."""
    instance.sandbox.path(home("alice")).chmod(0o755)
    original = json.dumps({"auths": {"ghcr.io": {"auth": GHCR_AUTH}}})
    write_config(instance, "alice", original, mode=0o644, dir_mode=0o755)
    assert reads(instance, "carol", config_path("alice"))
    alice_uid = instance.sandbox.path(home("alice")).stat().st_uid

    run = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "mode_tightened"), run.stderr
    assert users_of(run)["alice"]["mode_tightened"] == {"config.json": "0644"}
    assert "was 0644, now 0600" in str(run.result["message"])
    config, backup = configs(instance, ("alice",))["alice"]
    assert config is not None and backup is not None
    assert (config.mode, config.uid, backup.mode, backup.uid) == (0o600, alice_uid, 0o600, alice_uid)
    assert backup.content == original.encode()
    assert json.loads(config.content)["auths"] == {
        "ghcr.io": {"auth": GHCR_AUTH},
        R: {"auth": b64(f"AWS:{TOKEN_A}")},
    }
    assert not reads(instance, "carol", config_path("alice"))
    assert not reads(instance, "carol", backup_path("alice"))
    assert can_pull(instance, ("alice",)) == {"alice": True}
    assert_token_confined(run, instance, TOKEN_A)


def test_a_backup_an_older_agent_left_readable_is_made_owner_only(
    instance: sb.World, agent_script: str
) -> None:
    """Earlier versions kept the config's mode on the backup: a 0644 copy of a token. An unchanged
    run still closes it (and reports it), without rewriting anything else."""
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    config_before = file_state(instance, config_path("alice"))
    assert config_before is not None
    instance.sandbox.write(backup_path("alice"), config_before.content, 0o644)
    shutil.chown(instance.sandbox.path(backup_path("alice")), config_before.uid, config_before.uid)

    run = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "mode_tightened"), run.stderr
    assert users_of(run)["alice"]["mode_tightened"] == {"config.json.ecr-fleet-auth.bak": "0644"}
    backup = file_state(instance, backup_path("alice"))
    assert backup is not None and (backup.mode, backup.content) == (0o600, config_before.content)
    assert file_state(instance, config_path("alice")) == config_before
    assert not reads(instance, "carol", backup_path("alice"))


# ---------------------------------------------------------------- a helper that cannot run


def break_helper(world: sb.World, how: str) -> str:
    """Make the user's configured credential helper unusable; returns the helper's name."""
    if how == "store-missing":
        write_config(world, "alice", json.dumps({"auths": {}, "credsStore": "secretservice"}))
        return "secretservice"
    write_config(world, "alice", json.dumps({"credHelpers": {R: "ecr-login"}}))
    if how == "removed":
        world.sandbox.run(["rm", "-f", HELPER_BIN]).check_returncode()
    else:  # present but not a program this machine can run
        world.sandbox.write(HELPER_BIN, b"\x7fELF\x02\x01\x01 not really an executable", 0o755)
    return "ecr-login"


@pytest.mark.parametrize("how", ["removed", "not-runnable", "store-missing"])
def test_a_credential_helper_that_cannot_run_is_reported_never_healthy_and_helper_repairs_it(
    instance: sb.World, agent_script: str, how: str
) -> None:
    """file.go getConfiguredCredentialStore sends the registry to credHelpers[host], else credsStore;
    native_store.go Get runs docker-credential-<name> get. When that cannot run docker gets an error
    (and no token): the user cannot pull, whatever `auths` says."""
    helper = break_helper(instance, how)
    install_package_managers(instance)  # Debian here: `helper` reinstalls through apt-get
    before = configs(instance, ("alice",))
    assert can_pull(instance, ("alice",)) == {"alice": False}

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert (check.result["outcome"], check.result["reason"]) == ("unchanged", "helper_unavailable")
    assert users_of(check)["alice"]["registries"] == {R: {"state": "helper_unavailable", "helper": helper}}

    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
    assert (refresh.result["outcome"], refresh.result["reason"]) == ("failed", "helper_unavailable")
    assert f"docker-credential-{helper}" in str(refresh.result["message"])
    assert configs(instance, ("alice",)) == before
    assert can_pull(instance, ("alice",)) == {"alice": False}

    repair = instance.run_document(agent_script, parameters("helper", users="alice"))
    assert repair.result["outcome"] == "changed", repair.stderr
    assert repair.result["reason"] == "ok", repair.result
    assert users_of(repair)["alice"]["registries"] == {R: {"state": "helper"}}
    assert config_of(instance, "alice")["credHelpers"] == {R: "ecr-login"}
    assert can_pull(instance, ("alice",)) == {"alice": True}


def test_a_static_auth_beside_the_helper_is_stale_and_docker_falls_back_to_it_only_when_the_helper_fails(
    instance: sb.World, agent_script: str
) -> None:
    """native_store.go Get: docker asks the helper; only when the helper errors does it return the
    file's entry for the host. So a static auth beside credHelpers (`stale_auth`) is a token lying
    in the file that docker uses the day the helper breaks, until it expires."""
    write_config(
        instance,
        "alice",
        json.dumps({"auths": {R: {"auth": b64("AWS:wrong")}}, "credHelpers": {R: "ecr-login"}}),
    )
    assert can_pull(instance, ("alice",)) == {"alice": True}, "the working helper wins over the wrong auth"
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert users_of(check)["alice"]["registries"] == {R: {"state": "stale_auth"}}

    write_config(
        instance,
        "alice",
        json.dumps({"auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}, "credHelpers": {R: "ecr-login"}}),
    )
    instance.sandbox.run(["rm", "-f", HELPER_BIN]).check_returncode()
    assert can_pull(instance, ("alice",)) == {"alice": True}, "docker fell back to the static auth"
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert check.result["reason"] == "helper_unavailable", "still not healthy: that token expires"


# ---------------------------------------------------------------- credential stores


@pytest.mark.parametrize(
    "config",
    [{"auths": {}, "credsStore": "pass"}, {"credHelpers": {R: "pass"}}],
    ids=["credsStore", "credHelpers"],
)
def test_a_credential_store_keeps_the_login_a_rerun_is_unchanged_and_helper_erases_it(
    instance: sb.World, agent_script: str, config: dict[str, object]
) -> None:
    """native_store.go Store: `docker login` hands the secret to docker-credential-<store> store and
    leaves `"<host>": {}` in the file; Get reads it back with `get`. docker-credential-helpers
    client/client.go is the protocol. logout.go erases host, http://host and https://host from the
    store docker used; `helper` does the same once the config names ecr-login."""
    install_pass_standin(instance)
    write_config(instance, "alice", json.dumps(config))
    expected_file = dict(config, auths={R: {}})

    first = instance.run_document(agent_script, parameters("refresh", users="alice"))
    assert (first.result["outcome"], first.result["reason"]) == ("changed", "ok"), first.stderr
    assert pass_store(instance, "alice") == {R: {"Username": "AWS", "Secret": TOKEN_A}}
    assert config_of(instance, "alice") == expected_file
    assert can_pull(instance, ("alice",)) == {"alice": True}, "docker reads the token from the store"
    allowed = ("/.docker/config.json", "/.docker-credential-pass-standin/store.json")
    assert_token_confined(first, instance, TOKEN_A, allowed)

    clear_pass_calls(instance, "alice")
    before = configs(instance, ("alice",))
    again = instance.run_document(agent_script, parameters("refresh", users="alice"))
    assert (again.result["outcome"], again.result["reason"]) == ("unchanged", "ok"), again.stderr
    assert configs(instance, ("alice",)) == before
    assert pass_calls(instance, "alice") == [f"get {R}"], "read, compared, not stored again"

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert users_of(check)["alice"]["registries"] == {
        R: {"state": "logged_in", "expires_at": "2015-01-01T00:00:00Z", "expired": True}
    }
    assert TOKEN_A not in check.stdout + check.stderr

    helper = instance.run_document(agent_script, parameters("helper", users="alice"))
    assert (helper.result["outcome"], helper.result["reason"]) == ("changed", "ok"), helper.stderr
    after = config_of(instance, "alice")
    assert after["credHelpers"] == {R: "ecr-login"} and R not in after.get("auths", {})  # type: ignore[operator]
    assert pass_store(instance, "alice") == {}, "the stale token left the store"
    assert f"erase {R}" in pass_calls(instance, "alice")
    assert can_pull(instance, ("alice",)) == {"alice": True}


def test_a_store_that_fails_is_never_called_healthy(instance: sb.World, agent_script: str) -> None:
    install_pass_standin(instance)
    write_config(instance, "alice", json.dumps({"auths": {}, "credsStore": "pass"}))
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    instance.sandbox.write(f"{home('alice')}/.docker-credential-pass-standin/fail", "")

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert users_of(check)["alice"]["registries"] == {R: {"state": "helper_unavailable", "helper": "pass"}}
    assert (refresh.result["outcome"], refresh.result["reason"]) == ("failed", "helper_unavailable")
    assert "password store is locked" in str(refresh.result["message"])


# ---------------------------------------------------------------- docker login after helper


def test_after_helper_a_users_own_docker_login_fails_and_the_report_says_so(
    instance: sb.World, agent_script: str
) -> None:
    """docker/cli login.go storeCredentials stores through GetCredentialsStore(host), which is now
    credHelpers[host] = ecr-login; amazon-ecr-credential-helper ecr-login/ecr.go Add answers "not
    implemented" (before 0.9, and after it unless AWS_ECR_IGNORE_CREDS_STORAGE=true is in the
    user's environment). Debian's helper is 0.6.0. Pulls need no login, and keep working."""
    helper = instance.run_document(agent_script, parameters("helper", users="alice"))
    assert "docker login to these now fails" in str(helper.result["message"])
    before = configs(instance, ("alice",))

    own_login = instance.sandbox.run(
        [DOCKER_CLI, "login", "--username", "AWS", "--password-stdin", R],
        env={"PATH": INSTANCE_PATH, "HOME": home("alice"), **instance.instance_env()},
        user="alice",
        stdin=TOKEN_A.encode(),
    )

    assert own_login.returncode != 0
    assert b"not implemented" in own_login.stderr
    assert configs(instance, ("alice",)) == before
    assert can_pull(instance, ("alice",)) == {"alice": True}


def test_after_helper_a_users_own_docker_login_to_another_registry_still_works(
    instance: sb.World, agent_script: str
) -> None:
    """Only the managed registries go to the helper (credHelpers is per host; no credsStore is set),
    so login.go stores any other registry's login in the file as before."""
    instance.run_document(agent_script, parameters("helper", users="alice"))

    own_login = instance.sandbox.run(
        [DOCKER_CLI, "login", "--username", "AWS", "--password-stdin", sb.REGISTRY_B],
        env={"PATH": INSTANCE_PATH, "HOME": home("alice"), **instance.instance_env()},
        user="alice",
        stdin=TOKEN_A.encode(),
    )

    assert own_login.returncode == 0, own_login.stderr
    config = config_of(instance, "alice")
    assert config["credHelpers"] == {R: "ecr-login"}
    assert config["auths"] == {sb.REGISTRY_B: {"auth": b64(f"AWS:{TOKEN_A}")}}
    assert can_pull(instance, ("alice",)) == {"alice": True}


# ---------------------------------------------------------------- which AWS identity the agent uses


def test_check_names_the_agents_aws_identity_and_failed_token_calls_name_it(
    instance: sb.World, agent_script: str
) -> None:
    """Under Default Host Management Configuration Run Command hands the agent the DHMC role, not
    the instance profile (amazon-ssm-agent #610): the report says which identity the calls use."""
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert check.result["host"]["identity"] == MOTO_ARN  # type: ignore[index]

    unreachable_ecr = {**instance.instance_env(), "AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:9"}
    failed = instance.run_document(agent_script, parameters("refresh", users="alice"), env=unreachable_ecr)
    assert (failed.result["outcome"], failed.result["reason"]) == ("failed", "token_failed")
    assert f"as {MOTO_ARN}" in str(failed.result["message"])

    no_role = {k: v for k, v in instance.instance_env().items() if not k.startswith("AWS_SECRET")}
    no_role.pop("AWS_ACCESS_KEY_ID")
    no_role["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"  # nor root's ~/.aws/credentials
    denied = instance.run_document(agent_script, parameters("refresh", users="alice"), env=no_role)
    assert (denied.result["outcome"], denied.result["reason"]) == ("failed", "no_credentials")
    assert "no AWS identity" in str(denied.result["message"])
