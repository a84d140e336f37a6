"""Host states an acceptance run of issue 10 found mishandled, run as SSM runs the document.

Same sandbox as test_agent_host_states.py: the real docker CLI, a TLS registry under the real ECR
host name, the AWS CLI against moto, Debian's credential helper 0.6.0 (through a CONNECT proxy to a
TLS moto), and the document's shell step run as the SSM agent runs it. Users reach the "instance
role" as their own docker would (localfleet/harnesses/single_instance.py user_env: ~/.aws/credentials for
IMDS, no AWS credentials in the environment); the agent's own calls have it in the step's environment.
Each test asserts the bytes and modes of the configs afterwards and, where it matters, who can pull.
"""

from __future__ import annotations

import datetime
import json
import re
import stat

import pytest

from agent.docker_model import auth_digest
from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import DOCKER_CLI, HELPER_BIN
from tests.agent.on_instance import (
    GHCR_AUTH,
    ISSUE_FEATURES,
    TOKEN_A,
    b64,
    backup_path,
    can_pull,
    config_of,
    config_path,
    configs,
    docker_loads_config_of,
    file_state,
    home,
    install_package_managers,
    install_pass_standin,
    package_manager_calls,
    parameters,
    pass_store,
    users_of,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
LOGINS = "/var/lib/ecr-fleet-auth/logins.json"
PASS_FOLDER = ".docker-credential-pass-standin"


def outcome(run: sb.AgentRun) -> tuple[object, object]:
    return run.result["outcome"], run.result["reason"]


def reads(world: sb.World, user: str, inside: str) -> bool:
    return world.sandbox.run(["cat", inside], user=user).returncode == 0


def add_docker_user(world: sb.World, name: str) -> None:
    world.sandbox.run(["useradd", "-m", "-s", "/bin/sh", "-G", "docker", name]).check_returncode()
    world.give_instance_role(name)


def docker_says_its_version_is(world: sb.World, version_line: str) -> None:
    """The docker CLI answers `--version` with this line and is the real one for everything else."""
    world.sandbox.run(["mkdir", "-p", "/usr/local/libexec"]).check_returncode()
    world.sandbox.run(["mv", DOCKER_CLI, "/usr/local/libexec/docker.real"]).check_returncode()
    wrapper = (
        "#!/bin/sh\n"
        f'if [ "$1" = --version ]; then echo "{version_line}"; exit 0; fi\n'
        'exec /usr/local/libexec/docker.real "$@"\n'
    )
    world.sandbox.write(DOCKER_CLI, wrapper, 0o755)


def in_pass_folder(world: sb.World, user: str, name: str) -> None:
    """Create ~/<stand-in folder>/<name> (fail, fail-erase, hang) as the user."""
    folder = f"{home(user)}/{PASS_FOLDER}"
    world.sandbox.run(["mkdir", "-p", folder], user=user).check_returncode()
    world.sandbox.run(["touch", f"{folder}/{name}"], user=user).check_returncode()


# ---------------------------------------------------------------- 1, 8: which docker types which field


def test_docker_26_1_types_features_so_the_issues_config_is_corrupt_there(
    instance: sb.World, agent_script: str
) -> None:
    """docker/cli c5016c6d5b ("cli-plugins: Introduce support for hooks") added ConfigFile.Features
    (map[string]string) and is in v26.1.0: docker 26.1.5 half-loads this file (file.go LoadFromReader)
    and its next login would drop ghcr.io's credential, as docker 28 here does (see
    test_docker_itself_would_lose_the_other_registrys_credential)."""
    docker_says_its_version_is(instance, "Docker version 26.1.5, build a5ee5b1")
    write_config(instance, "alice", ISSUE_FEATURES)
    before = configs(instance, ("alice",))

    for action in ("check", "refresh", "helper"):
        run = instance.run_document(agent_script, parameters(action, users="alice"))
        assert run.result["host"]["docker"] == "26.1.5"  # type: ignore[index]
        assert outcome(run) == ("unchanged" if action == "check" else "failed", "config_corrupt"), run.stderr
        assert "features.buildkit: docker expects string" in str(run.result["message"])
        assert "already configured" not in str(run.result["message"])
        assert configs(instance, ("alice",)) == before, f"{action} touched the file"


def test_an_unreadable_docker_version_is_read_as_the_newest_docker(
    instance: sb.World, agent_script: str
) -> None:
    """`stackOrchestrator` is typed only by docker 18.06 to 23.0 (66a1c3bab9 removed it in v24.0.0):
    today's docker ignores a number there, and so does the agent when `docker --version` says nothing
    it can read. `features` is typed today, so the issue's file stays corrupt."""
    docker_says_its_version_is(instance, "Docker version dev-build, build unknown")
    content = '{"auths": {"ghcr.io": {"auth": "' + GHCR_AUTH + '"}}, "stackOrchestrator": 5}'
    write_config(instance, "alice", content)
    write_config(instance, "bob", ISSUE_FEATURES)
    assert docker_loads_config_of(instance, "alice")

    run = instance.run_document(agent_script, parameters("refresh", users="alice,bob"))

    assert run.result["host"]["docker"] == "unknown"  # type: ignore[index]
    assert users_of(run)["alice"].get("reason") is None, run.stderr
    assert users_of(run)["bob"]["reason"] == "config_corrupt"
    assert b'"stackOrchestrator": 5' in instance.sandbox.path(config_path("alice")).read_bytes()
    assert config_of(instance, "alice")["auths"] == {
        "ghcr.io": {"auth": GHCR_AUTH},
        R: {"auth": b64(f"AWS:{TOKEN_A}")},
    }
    assert can_pull(instance, ("alice", "bob")) == {"alice": True, "bob": False}


# ---------------------------------------------------------------- 2: a helper judged as the user runs it


def helper_config(world: sb.World, *users: str) -> None:
    for user in users:
        write_config(world, user, json.dumps({"credHelpers": {R: "ecr-login"}}))


def test_a_helper_only_root_may_execute_is_unavailable_and_left_as_the_admin_set_it(
    instance: sb.World, agent_script: str
) -> None:
    """docker, run by alice, execs docker-credential-ecr-login as alice (native_store.go via
    docker-credential-helpers client.go): a 0700 root-owned binary is EACCES for her. `helper` does
    not chmod a binary the host's admin restricted, and reinstalling would change nothing: it says so."""
    instance.sandbox.run(["chmod", "0700", HELPER_BIN]).check_returncode()
    install_package_managers(instance)
    helper_config(instance, "alice")
    before = configs(instance, ("alice",))
    assert can_pull(instance, ("alice",)) == {"alice": False}

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
    helper = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert outcome(check) == ("unchanged", "helper_unavailable")
    assert users_of(check)["alice"]["registries"] == {
        R: {"state": "helper_unavailable", "helper": "ecr-login"}
    }
    assert outcome(refresh) == ("failed", "helper_unavailable")
    assert outcome(helper) == ("failed", "helper_unavailable")
    for run in (check, refresh, helper):
        assert "Permission denied" in str(run.result["message"]), run.stderr
    assert package_manager_calls(instance) == []
    assert stat.S_IMODE(instance.sandbox.path(HELPER_BIN).stat().st_mode) == 0o700
    assert configs(instance, ("alice",)) == before
    assert can_pull(instance, ("alice",)) == {"alice": False}


def test_a_helper_only_on_the_agents_path_is_unavailable_and_helper_installs_one_users_find(
    instance: sb.World, agent_script: str
) -> None:
    """/usr/sbin is on SSM's (and root's) PATH, not on a user's login PATH (Debian /etc/profile):
    alice's docker never finds a helper there. `helper` installs one where it does (the package)."""
    instance.sandbox.run(["mv", HELPER_BIN, "/usr/sbin/docker-credential-ecr-login"]).check_returncode()
    install_package_managers(instance)
    helper_config(instance, "alice")
    assert can_pull(instance, ("alice",)) == {"alice": False}

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
    assert outcome(check) == ("unchanged", "helper_unavailable")
    assert outcome(refresh) == ("failed", "helper_unavailable")
    assert "No such file or directory" in str(check.result["message"])
    assert check.result["host"]["helper"] is None  # type: ignore[index]

    helper = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert outcome(helper) == ("changed", "ok"), helper.stderr
    assert any(call.startswith("apt-get install") for call in package_manager_calls(instance))
    assert users_of(helper)["alice"]["registries"] == {R: {"state": "helper"}}
    assert can_pull(instance, ("alice",)) == {"alice": True}


def test_a_helper_that_cannot_get_a_token_as_the_user_is_never_healthy(
    instance: sb.World, agent_script: str
) -> None:
    """The agent's own AWS credentials (here in the step's environment, as Default Host Management
    Configuration hands its role to Run Command, amazon-ssm-agent #610) are not alice's: her docker
    runs the helper with her environment and her files, and she has no credentials at all. `get` exits
    1, docker falls back to the file (nothing) and her pull fails. Nothing to install: the helper runs."""
    instance.sandbox.run(["rm", "-rf", f"{home('alice')}/.aws"]).check_returncode()
    install_package_managers(instance)
    helper_config(instance, "alice", "bob")
    before = configs(instance, ("alice", "bob"))

    check = instance.run_document(agent_script, parameters("check", users="alice,bob"))
    refresh = instance.run_document(agent_script, parameters("refresh", users="alice,bob"))
    helper = instance.run_document(agent_script, parameters("helper", users="alice,bob"))

    assert outcome(check) == ("unchanged", "helper_verify_failed")
    assert users_of(check)["alice"]["registries"] == {
        R: {"state": "helper_unavailable", "helper": "ecr-login"}
    }
    assert users_of(check)["bob"]["registries"] == {R: {"state": "helper"}}
    assert outcome(refresh) == ("failed", "helper_verify_failed")
    assert outcome(helper) == ("failed", "helper_verify_failed")
    assert "already configured for 0" not in str(helper.result["message"])
    assert package_manager_calls(instance) == []
    assert configs(instance, ("alice", "bob")) == before
    ecr_logs = [path for path in instance.sandbox.changed_files() if "/.ecr/" in path]
    assert ecr_logs == [], "the agent's probe of the helper wrote the helper's log into a home"
    assert can_pull(instance, ("alice", "bob")) == {"alice": False, "bob": True}


# ---------------------------------------------------------------- 3: the refresh margin and the schedule


def record_login(world: sb.World, user: str, auth: str, left: datetime.timedelta) -> None:
    expires = datetime.datetime.now(datetime.UTC) + left
    records = {user: {R: {"auth_sha256": auth_digest(auth), "expires_at": f"{expires:%Y-%m-%dT%H:%M:%SZ}"}}}
    world.sandbox.path("/var/lib/ecr-fleet-auth").mkdir(mode=0o700, exist_ok=True)
    world.sandbox.write(LOGINS, json.dumps(records), 0o600)


def test_refresh_renews_a_token_with_ten_hours_or_less_left(instance: sb.World, agent_script: str) -> None:
    """ECR tokens last 12 hours (GetAuthorizationToken expiresAt). With the default rate(6 hours) a
    token fetched at 00:03 meets the 06:00 run with 6 h left: it must be renewed then, since the next
    run comes after it expires. Ten hours: a re-run within 2 h of a good run changes nothing, and any
    schedule whose runs reach the instance less than 10 h apart renews every token in time."""
    old = b64("AWS:token-from-the-last-run")
    write_config(instance, "alice", json.dumps({"auths": {R: {"auth": old}}}))
    record_login(instance, "alice", old, datetime.timedelta(hours=10, minutes=5))
    before = configs(instance, ("alice",))

    fresh = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert outcome(fresh) == ("unchanged", "ok"), fresh.stderr
    assert configs(instance, ("alice",)) == before

    record_login(instance, "alice", old, datetime.timedelta(hours=9, minutes=55))
    due = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert outcome(due) == ("changed", "ok"), due.stderr
    assert config_of(instance, "alice") == {"auths": {R: {"auth": b64(f"AWS:{TOKEN_A}")}}}
    assert can_pull(instance, ("alice",)) == {"alice": True}


# ---------------------------------------------------------------- 4: nesting that docker accepts


def deep(depth: int) -> str:
    """alice's config with `depth` nested arrays under a key docker does not know."""
    return '{"x": ' + "[" * depth + "]" * depth + ', "auths": {"ghcr.io": {"auth": "' + GHCR_AUTH + '"}}}'


@pytest.mark.parametrize("depth", [600, 2000])
def test_nesting_docker_accepts_is_managed_and_kept_byte_for_byte(
    instance: sb.World, agent_script: str, depth: int
) -> None:
    """Go's encoding/json nests up to 10000 levels (scanner.go maxNestingDepth) and docker ignores
    the unknown key: the file is fine for docker, and the agent keeps the nested text as it was."""
    content = deep(depth)
    write_config(instance, "alice", content)
    assert docker_loads_config_of(instance, "alice")

    run = instance.run_document(agent_script, parameters("refresh"))

    assert outcome(run) == ("changed", "ok"), run.stderr
    after = instance.sandbox.path(config_path("alice")).read_bytes()
    nested = ("[" * depth + "]" * depth).encode()
    assert nested in after
    assert json.loads(after.replace(nested, b"[]"))["auths"] == {
        "ghcr.io": {"auth": GHCR_AUTH},
        R: {"auth": b64(f"AWS:{TOKEN_A}")},
    }
    assert docker_loads_config_of(instance, "alice")
    assert can_pull(instance, ("root", "alice", "bob")) == {"root": True, "alice": True, "bob": True}


def test_nesting_beyond_gos_limit_is_corrupt_for_that_user_and_the_others_are_served(
    instance: sb.World, agent_script: str
) -> None:
    write_config(instance, "alice", deep(10000))  # 10001 levels with the enclosing object
    assert not docker_loads_config_of(instance, "alice"), "docker: exceeded max depth"
    before = configs(instance, ("alice",))

    run = instance.run_document(agent_script, parameters("refresh"))

    assert outcome(run) == ("failed", "config_corrupt")
    assert "exceeded max depth" in str(run.result["message"])
    assert configs(instance, ("alice",)) == before
    assert can_pull(instance, ("root", "alice", "bob")) == {"root": True, "alice": False, "bob": True}


# ---------------------------------------------------------------- 5: a config larger than the agent reads


def test_a_config_larger_than_the_agent_reads_has_its_own_reason(
    instance: sb.World, agent_script: str
) -> None:
    """docker reads any size (file.go LoadFromReader on the whole file); the agent reads 4 MiB."""
    content = json.dumps({"auths": {"ghcr.io": {"auth": GHCR_AUTH}}, "myTool": "x" * (5 * 1024 * 1024)})
    write_config(instance, "alice", content)
    assert docker_loads_config_of(instance, "alice")
    before = configs(instance, ("alice",))

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert outcome(check) == ("unchanged", "config_too_large")
    assert outcome(refresh) == ("failed", "config_too_large")
    assert f"has {len(content)} bytes; the agent reads at most 4194304" in str(refresh.result["message"])
    assert configs(instance, ("alice",)) == before


# ---------------------------------------------------------------- 6: a readable secret


def test_a_config_others_can_read_is_reported_by_check_and_closed_by_refresh(
    instance: sb.World, agent_script: str
) -> None:
    instance.sandbox.path(home("alice")).chmod(0o755)
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    instance.sandbox.path(config_path("alice")).chmod(0o644)
    instance.sandbox.path(f"{home('alice')}/.docker").chmod(0o755)
    assert reads(instance, "carol", config_path("alice"))
    before = file_state(instance, config_path("alice"))
    assert before is not None

    check = instance.run_document(agent_script, parameters("check", users="alice"))

    assert outcome(check) == ("unchanged", "secret_readable")
    assert "config.json is 0644" in str(check.result["message"])
    assert file_state(instance, config_path("alice")) == before, "check only reports"

    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert outcome(refresh) == ("changed", "mode_tightened"), refresh.stderr
    assert users_of(refresh)["alice"]["mode_tightened"] == {"config.json": "0644"}
    after = file_state(instance, config_path("alice"))
    assert after is not None
    assert (after.content, after.uid, after.mode) == (before.content, before.uid, 0o600)
    assert not reads(instance, "carol", config_path("alice"))
    assert outcome(instance.run_document(agent_script, parameters("check", users="alice"))) == (
        "unchanged",
        "ok",
    )


def test_check_reports_a_backup_others_can_read(instance: sb.World, agent_script: str) -> None:
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    config = file_state(instance, config_path("alice"))
    assert config is not None
    instance.sandbox.write(backup_path("alice"), config.content, 0o644)
    instance.sandbox.run(["chown", "alice:", backup_path("alice")]).check_returncode()

    check = instance.run_document(agent_script, parameters("check", users="alice"))

    assert outcome(check) == ("unchanged", "secret_readable")
    assert stat.S_IMODE(instance.sandbox.path(backup_path("alice")).stat().st_mode) == 0o644


# ---------------------------------------------------------------- 7: accounts docker could keep no config for


def test_accounts_without_a_home_they_can_use_are_treated_alike_by_check_and_refresh(
    instance: sb.World, agent_script: str
) -> None:
    """A service account in the docker group whose home is root's (useradd -M -d /var/lib/svc) cannot
    create ~/.docker, so docker run by it keeps no config; one without a home has none either. With
    `auto` both are listed (no_home) without failing the run; named, they are a problem in every action."""
    instance.sandbox.run(["mkdir", "-p", "/var/lib/svc"]).check_returncode()
    instance.sandbox.run(["useradd", "-M", "-d", "/var/lib/svc", "-G", "docker", "svc"]).check_returncode()
    instance.sandbox.run(
        ["useradd", "-M", "-d", "/nonexistent/ghost", "-G", "docker", "ghost"]
    ).check_returncode()

    check = instance.run_document(agent_script, parameters("check"))
    refresh = instance.run_document(agent_script, parameters("refresh"))

    assert outcome(check) == ("unchanged", "ok"), check.stderr
    assert outcome(refresh) == ("changed", "ok"), refresh.stderr
    for run in (check, refresh):
        assert {name: users_of(run)[name].get("reason") for name in ("svc", "ghost", "alice")} == {
            "svc": "no_home",
            "ghost": "no_home",
            "alice": None,
        }
    assert not instance.sandbox.path("/var/lib/svc/.docker").exists()

    named_check = instance.run_document(agent_script, parameters("check", users="svc"))
    named_refresh = instance.run_document(agent_script, parameters("refresh", users="svc"))
    assert outcome(named_check) == ("unchanged", "no_home")
    assert outcome(named_refresh) == ("failed", "no_home")
    assert "svc may not create /var/lib/svc/.docker" in str(named_refresh.result["message"])


# ---------------------------------------------------------------- 9: a credential store that hangs


def test_a_hanging_credential_store_costs_one_short_timeout_per_user(
    instance: sb.World, agent_script: str
) -> None:
    """docker itself waits for a helper forever (docker-credential-helpers client.go); the agent gives
    each helper call a few seconds, and does not call a helper that hung again for that user."""
    install_pass_standin(instance)
    for user in ("alice", "bob"):
        write_config(instance, user, json.dumps({"auths": {}, "credsStore": "pass"}))
    in_pass_folder(instance, "alice", "hang")

    check = instance.run_document(agent_script, parameters("check", users="alice,bob"))

    assert outcome(check) == ("unchanged", "helper_unavailable")
    assert re.search(
        r"docker-credential-pass get as alice .*: no answer in time", str(check.result["message"])
    )
    assert users_of(check)["bob"]["registries"] == {R: {"state": "none"}}
    assert check.seconds < 30


def test_the_agent_stops_short_of_the_step_timeout_and_still_reports(
    instance: sb.World, agent_script: str
) -> None:
    """SSM kills the step at its timeout (executionTimeoutSeconds, exported to the agent by the
    document's script): five users whose stores hang would take longer than the smallest one, 30 s."""
    assert "\nECR_FLEET_AUTH_TIMEOUT=600\n" in agent_script, "the document tells the agent its timeout"
    script = agent_script.replace("\nECR_FLEET_AUTH_TIMEOUT=600\n", "\nECR_FLEET_AUTH_TIMEOUT=30\n")
    install_pass_standin(instance)
    names = ["alice", "bob", "dave", "erin", "frank"]
    for name in names[2:]:
        add_docker_user(instance, name)
    for name in names:
        write_config(instance, name, json.dumps({"auths": {}, "credsStore": "pass"}))
        in_pass_folder(instance, name, "hang")

    run = instance.run_document(script, parameters("refresh", users=",".join(names)))

    assert run.seconds < 30, "past the step's timeout SSM would have killed it, result line and all"
    assert outcome(run) == ("failed", "out_of_time")
    assert "stopped short of the 30 s step timeout" in str(run.result["message"])
    assert {users_of(run)[name]["reason"] for name in names} == {"helper_unavailable"}


# ---------------------------------------------------------------- 10: a stale token the store would not erase


def test_a_token_the_store_would_not_erase_is_reported_until_it_is_gone(
    instance: sb.World, agent_script: str
) -> None:
    """docker logout (logout.go) erases the registry from the store docker used; when the store's
    erase fails, the old token stays there: `helper` says so (not helper_unavailable, whose advice
    would loop), and `check` does not call the user ok while it is there."""
    install_pass_standin(instance)
    write_config(instance, "alice", json.dumps({"auths": {}, "credsStore": "pass"}))
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    in_pass_folder(instance, "alice", "fail-erase")

    helper = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert outcome(helper) == ("failed", "stale_credentials"), helper.stderr
    message = str(helper.result["message"])
    assert f"a token for {R} may still be in docker-credential-pass" in message
    assert "already configured for 0" not in message
    assert pass_store(instance, "alice") == {R: {"Username": "AWS", "Secret": TOKEN_A}}
    assert config_of(instance, "alice")["credHelpers"] == {R: "ecr-login"}
    assert can_pull(instance, ("alice",)) == {"alice": True}, "the helper serves the pulls meanwhile"

    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert outcome(check) == ("unchanged", "stale_credentials")
    assert users_of(check)["alice"]["registries"] == {R: {"state": "stale_auth"}}
    assert "docker-credential-pass" in str(check.result["message"])

    instance.sandbox.run(["rm", f"{home('alice')}/{PASS_FOLDER}/fail-erase"]).check_returncode()
    again = instance.run_document(agent_script, parameters("helper", users="alice"))
    assert outcome(again) == ("changed", "ok"), again.stderr
    assert pass_store(instance, "alice") == {}
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert outcome(check) == ("unchanged", "ok")
    assert users_of(check)["alice"]["registries"] == {R: {"state": "helper"}}


# ---------------------------------------------------------------- 11: nothing in the file is lost


def test_data_docker_never_reads_survives_every_rewrite(instance: sb.World, agent_script: str) -> None:
    """Go's json.Decoder reads the first value only, and a later `"auths": null` resets the map
    (file.go LoadFromReader): docker sees neither ghcr.io's entry nor the second document, and its own
    save would drop both. The agent keeps them where they are, adds its login after the null (where
    docker reads it), and its backups hold them too, rewrite after rewrite."""
    original = (
        '{"auths": {"ghcr.io": {"auth": "' + GHCR_AUTH + '"}}, "auths": null, "psFormat": "table"}\n'
        '{"notes": "kept by hand"}\n'
    ).encode()
    write_config(instance, "alice", original)
    assert docker_loads_config_of(instance, "alice")

    first = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert outcome(first) == ("changed", "ok"), first.stderr
    after = instance.sandbox.path(config_path("alice")).read_bytes()
    assert b'"auths": {"ghcr.io": {"auth": "' + GHCR_AUTH.encode() + b'"}}' in after
    assert after.endswith(b'}\n{"notes": "kept by hand"}\n')
    assert instance.sandbox.path(backup_path("alice")).read_bytes() == original
    assert docker_loads_config_of(instance, "alice")
    assert can_pull(instance, ("alice",)) == {"alice": True}

    instance.set_registry_password(sb.moto_token(sb.ACCOUNT_B))  # the next token: another rewrite
    env = instance.instance_env(moto_port=instance.moto_b_port)
    second = instance.run_document(agent_script, parameters("refresh", users="alice"), env=env)

    assert outcome(second) == ("changed", "ok"), second.stderr
    for path in (config_path("alice"), backup_path("alice")):
        text = instance.sandbox.path(path).read_bytes()
        assert GHCR_AUTH.encode() in text and b'{"notes": "kept by hand"}' in text, path
    assert can_pull(instance, ("alice",)) == {"alice": True}
