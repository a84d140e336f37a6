"""The agent run exactly as SSM runs it, on a throwaway instance, against real parts.

Real: the document's shell step (`sh -c _script.sh`, root, no HOME, SSM_* env),
the docker CLI, a TLS registry with htpasswd auth under an ECR host name, the
AWS CLI against moto_server, Debian's docker-credential-ecr-login (through a
CONNECT proxy to a TLS moto). Stubbed: only dnf/yum/apt-get (tests/agent/stubs/), which cannot
run here.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os

import pytest

from ecr_fleet_auth.shared import contract
from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import HELPER_BIN
from tests.agent.old_pythons import OLDEST, old_python
from tests.agent.on_instance import (
    AGENT_OWN_FILES,
    REAL_HELPER,
    TOKEN_A,
    assert_token_confined,
    b64,
    config_of,
    files_written_during,
    home,
    install_package_managers,
    package_manager_calls,
    parameters,
    without_helper,
    write_config,
)
from tests.support.prerequisites import require

pytestmark = pytest.mark.integration


def test_refresh_logs_every_managed_user_in_and_a_rerun_changes_nothing(
    instance: sb.World, agent_script: str
) -> None:
    for user in ("root", "alice", "bob"):
        assert instance.probe(user, home(user)).returncode != 0, "probe must fail before refresh"
    untouched = instance.sandbox.changed_files()

    run = instance.run_document(agent_script, parameters("refresh"))

    assert run.returncode == 0, run.stderr
    result = run.result
    assert (result["outcome"], result["reason"], result["action"]) == ("changed", "ok", "refresh")
    assert [entry["user"] for entry in result["users"]] == [
        "root",
        "alice",
        "bob",
    ]  # carol: not in docker group
    for user in ("root", "alice", "bob"):
        assert instance.probe(user, home(user)).returncode == 0, f"{user} cannot pull after refresh"
        path = instance.sandbox.path(f"{home(user)}/.docker/config.json")
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.stat().st_uid == instance.sandbox.path(home(user)).stat().st_uid
    assert not instance.sandbox.path("/home/carol/.docker").exists()
    assert_token_confined(run, instance, TOKEN_A)
    assert len(run.stdout.encode()) <= 2000
    written = files_written_during(instance, untouched)
    assert written == {f"{home(user)}/.docker/config.json" for user in ("root", "alice", "bob")} | set(
        AGENT_OWN_FILES
    ), "the run wrote only the users' docker configs and the agent's own state"

    before = instance.sandbox.changed_files()
    again = instance.run_document(agent_script, parameters("refresh"))
    assert (again.result["outcome"], again.result["reason"]) == ("unchanged", "ok")
    after = instance.sandbox.changed_files()
    for user in ("root", "alice", "bob"):
        path = f"{home(user)}/.docker/config.json"
        assert after[path] == before[path], f"{path} was rewritten by an unchanged run"


def test_check_reports_states_and_leaves_every_file_byte_identical(
    instance: sb.World, agent_script: str
) -> None:
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    write_config(
        instance,
        "bob",
        json.dumps(
            {
                "auths": {sb.REGISTRY_A: {"auth": b64("AWS:stale")}},
                "credHelpers": {sb.REGISTRY_A: "ecr-login"},
            }
        ),
    )
    before = instance.sandbox.changed_files()

    run = instance.run_document(
        agent_script, parameters("check", registries=f"{sb.REGISTRY_A},public.ecr.aws")
    )

    assert run.returncode == 0, run.stderr
    result = run.result
    # bob's static auth beside the helper is a stale token: not a failure, but no longer "ok" either.
    assert (result["outcome"], result["reason"]) == ("unchanged", "stale_credentials")
    states = {entry["user"]: entry["registries"] for entry in result["users"]}
    assert states["alice"][sb.REGISTRY_A]["state"] == "logged_in"
    assert states["alice"][sb.REGISTRY_A]["expires_at"] == "2015-01-01T00:00:00Z"  # what moto hands out
    assert states["bob"][sb.REGISTRY_A] == {"state": "stale_auth"}
    assert states["root"][sb.REGISTRY_A] == {"state": "none"}
    assert states["alice"]["public.ecr.aws"] == {"state": "none"}
    host = result["host"]
    assert host["docker"] and host["aws_cli"] and host["helper"] and host["os"] == "debian-12"
    after = instance.sandbox.changed_files()
    # The only new files may be the script SSM wrote and the agent it unpacked; nothing else changed.
    assert {path: after[path] for path in before} == before
    assert all(
        "/orchestration/" in path or path == "/run/ecr-fleet-auth.lock" for path in set(after) - set(before)
    )


def test_rotated_registry_password_fails_until_the_next_refresh(
    instance: sb.World, agent_script: str
) -> None:
    instance.run_document(agent_script, parameters("refresh", users="alice"))
    assert instance.probe("alice", home("alice")).returncode == 0

    # The registry moves on to the token of a later moment (moto's second account stands in for it).
    token_b = sb.moto_token(sb.ACCOUNT_B)
    instance.set_registry_password(token_b)
    assert instance.probe("alice", home("alice")).returncode != 0, "stale credentials must stop working"

    env = instance.instance_env(moto_port=instance.moto_b_port)
    run = instance.run_document(agent_script, parameters("refresh", users="alice"), env=env)

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok")
    assert instance.probe("alice", home("alice")).returncode == 0
    assert_token_confined(run, instance, token_b)
    backup = instance.sandbox.path("/home/alice/.docker/config.json.ecr-fleet-auth.bak").read_bytes()
    assert base64.b64encode(f"AWS:{TOKEN_A}".encode()) in backup, (
        "the backup holds the config before the change"
    )


def test_helper_configures_credhelpers_keeping_everything_else(instance: sb.World, agent_script: str) -> None:
    original = {
        "auths": {
            sb.REGISTRY_A: {"auth": base64.b64encode(b"AWS:expired-token").decode()},
            "ghcr.io": {"auth": "Z2g6dG9rZW4="},
        },
        "credHelpers": {"gcr.io": "gcloud"},
        "detachKeys": "ctrl-e,e",
        "proxies": {"default": {"noProxy": "localhost"}},
    }
    old_bytes = json.dumps(original, indent=2).encode()
    write_config(instance, "alice", old_bytes, mode=0o640)
    assert instance.probe("alice", home("alice")).returncode != 0, "the expired static auth must fail"
    untouched = instance.sandbox.changed_files()

    run = instance.run_document(agent_script, parameters("helper", users="alice,bob"))
    written = files_written_during(instance, untouched)

    assert run.returncode == 0, run.stderr
    assert (run.result["outcome"], run.result["reason"]) == ("changed", "mode_tightened")
    config = config_of(instance, "alice")
    assert config["credHelpers"] == {"gcr.io": "gcloud", sb.REGISTRY_A: "ecr-login"}
    assert config["auths"] == {"ghcr.io": {"auth": "Z2g6dG9rZW4="}}
    assert config["detachKeys"] == "ctrl-e,e" and config["proxies"] == original["proxies"]
    path = instance.sandbox.path("/home/alice/.docker/config.json")
    assert path.stat().st_mode & 0o777 == 0o600, "it holds ghcr.io's credential: owner-only now"
    assert run.result["users"][0]["mode_tightened"] == {"config.json": "0640"}
    assert path.read_bytes() != old_bytes
    backup = instance.sandbox.path("/home/alice/.docker/config.json.ecr-fleet-auth.bak")
    assert (backup.read_bytes(), backup.stat().st_mode & 0o777) == (old_bytes, 0o600)
    assert config_of(instance, "bob") == {"credHelpers": {sb.REGISTRY_A: "ecr-login"}}
    # Only the docker configs (and alice's backup) change; the helper's own log (~/.ecr) is written
    # by the verification running as the user, never by root.
    assert {path for path in written if "/.ecr/" not in path} == {
        "/home/alice/.docker/config.json",
        "/home/alice/.docker/config.json.ecr-fleet-auth.bak",
        "/home/bob/.docker/config.json",
    }
    for user in ("alice", "bob"):
        assert instance.probe(user, home(user)).returncode == 0, f"{user} cannot pull through the helper"
    assert_token_confined(run, instance, TOKEN_A)  # the verification left no helper cache holding it

    before = instance.sandbox.changed_files()
    again = instance.run_document(agent_script, parameters("helper", users="alice,bob"))
    assert (again.result["outcome"], again.result["reason"]) == ("unchanged", "ok")
    after = instance.sandbox.changed_files()
    assert {path: after[path] for path in before if "/.docker/" in path} == {
        path: before[path] for path in before if "/.docker/" in path
    }
    check = instance.run_document(agent_script, parameters("check", users="alice"))
    assert check.result["users"][0]["registries"][sb.REGISTRY_A] == {"state": "helper"}


def test_unsafe_and_corrupt_configs_are_left_untouched_and_reported(
    instance: sb.World, agent_script: str
) -> None:
    extra_users = {"dave": True, "erin": True, "frank": True}
    for name in extra_users:
        instance.sandbox.run(["useradd", "-m", "-G", "docker", name]).check_returncode()
    corrupt = write_config(instance, "alice", b'{"auths": {')  # truncated JSON
    secret = instance.sandbox.path("/etc/ecr-fleet-auth-test/secret.json")
    secret.write_text('{"root": "only"}')
    link_target_before = secret.read_bytes()
    bob_dir = instance.sandbox.path("/home/bob/.docker")
    bob_dir.mkdir()
    os.chown(bob_dir, bob_dir.parent.stat().st_uid, bob_dir.parent.stat().st_uid)
    (bob_dir / "config.json").symlink_to("/etc/ecr-fleet-auth-test/secret.json")
    instance.sandbox.path("/home/dave/.docker").symlink_to("/etc/ecr-fleet-auth-test")
    foreign = write_config(instance, "erin", "{}")
    os.chown(foreign, 0, 0)  # owned by root, not by erin
    snapshot = {path: path.read_bytes() for path in (corrupt, foreign)}

    run = instance.run_document(
        agent_script, parameters("refresh", users="alice,bob,dave,erin,frank,nobody9")
    )

    assert run.returncode == 1
    result = run.result
    assert result["outcome"] == "failed"
    reasons = {entry["user"]: entry.get("reason") for entry in result["users"]}
    assert reasons == {
        "nobody9": "no_such_user",
        "alice": "config_corrupt",
        "bob": "config_unsafe",
        "dave": "config_unsafe",
        "erin": "config_unsafe",
        "frank": None,
    }
    assert result["reason"] == "no_such_user"
    assert {path: path.read_bytes() for path in snapshot} == snapshot
    assert secret.read_bytes() == link_target_before
    assert not instance.sandbox.path("/etc/ecr-fleet-auth-test/config.json").exists()
    assert instance.probe("frank", "/home/frank").returncode == 0, "the healthy user is still served"


def test_read_only_docker_config_is_reported_not_half_written(instance: sb.World, agent_script: str) -> None:
    path = write_config(instance, "alice", json.dumps({"auths": {}}))
    before = path.read_bytes()
    folder = f"{instance.sandbox.root}/home/alice/.docker"
    instance.sandbox.shell_in_namespace(
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    )

    run = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "config_unwritable")
    assert path.read_bytes() == before


def test_a_second_run_while_one_holds_the_lock_is_skipped(instance: sb.World, agent_script: str) -> None:
    lock = instance.sandbox.path("/run/ecr-fleet-auth.lock")
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run = instance.run_document(agent_script, parameters("refresh"))
    assert run.returncode == 0
    assert (run.result["outcome"], run.result["reason"]) == ("skipped", "locked")
    assert not instance.sandbox.path("/home/alice/.docker").exists()


@pytest.mark.parametrize(
    ("remove", "env_change", "reason"),
    [
        ("/usr/local/bin/docker", {}, "docker_missing"),
        ("/usr/local/bin/aws", {}, "aws_cli_missing"),
        (None, {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "no_credentials"),
    ],
)
def test_missing_tools_and_credentials_fail_with_their_reason(
    instance: sb.World, agent_script: str, remove: str | None, env_change: dict[str, None], reason: str
) -> None:
    if remove:
        instance.sandbox.run(["rm", "-f", remove]).check_returncode()
    env = {key: value for key, value in instance.instance_env().items() if key not in env_change}
    if env_change:  # and no root ~/.aws/credentials either: the instance has no role at all
        env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"

    run = instance.run_document(agent_script, parameters("refresh"), env=env)

    assert run.returncode == 1
    assert (run.result["outcome"], run.result["reason"]) == ("failed", reason)
    assert not instance.sandbox.path("/home/alice/.docker").exists()


def test_without_python_the_shim_still_prints_the_result_line(instance: sb.World, agent_script: str) -> None:
    instance.sandbox.run(["sh", "-c", "rm -f /usr/bin/python3* /usr/local/bin/python3*"]).check_returncode()

    run = instance.run_document(agent_script, parameters("check"))

    assert run.returncode == 1
    assert (run.result["outcome"], run.result["reason"], run.result["action"]) == (
        "failed",
        "no_python",
        "check",
    )


# ---------------------------------------------------------------- installing the helper

RHEL_OS_RELEASE = 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'


def test_release_binary_is_installed_from_the_mirror_after_its_checksum_matches(
    instance: sb.World, agent_script: str
) -> None:
    """The default HelperVersion is a pinned release: the mirror, like the release bucket, has
    versioned paths only (<base>/<X.Y.Z>/linux-<arch>/docker-credential-ecr-login and .sha256)."""
    without_helper(instance, RHEL_OS_RELEASE)
    instance.publish_release(contract.DEFAULT_HELPER_VERSION, "amd64", REAL_HELPER)
    assert sorted(os.listdir(instance.mirror_dir)) == [contract.DEFAULT_HELPER_VERSION]

    run = instance.run_document(
        agent_script, parameters("helper", users="alice", ReleaseBaseUrl=instance.mirror_url())
    )

    assert run.returncode == 0, run.stderr
    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok")
    installed = instance.sandbox.path("/usr/local/bin/docker-credential-ecr-login")
    assert installed.read_bytes() == REAL_HELPER
    assert installed.stat().st_mode & 0o777 == 0o755
    assert run.result["host"]["helper"] == "0.6.0"
    assert instance.probe("alice", home("alice")).returncode == 0


def test_release_binary_with_a_wrong_checksum_is_never_installed(
    instance: sb.World, agent_script: str
) -> None:
    without_helper(instance, RHEL_OS_RELEASE)
    tampered = REAL_HELPER + b"\x00tampered"
    instance.publish_release("9.9.9", "amd64", tampered, checksum=hashlib.sha256(REAL_HELPER).hexdigest())
    write_config(instance, "alice", "{}")

    run = instance.run_document(
        agent_script,
        parameters("helper", users="alice", HelperVersion="9.9.9", ReleaseBaseUrl=instance.mirror_url()),
    )

    assert run.returncode == 1
    assert (run.result["outcome"], run.result["reason"]) == ("failed", "checksum_mismatch")
    bin_dir = instance.sandbox.path("/usr/local/bin")
    assert not [name for name in os.listdir(bin_dir) if "docker-credential-ecr-login" in name]
    assert config_of(instance, "alice") == {}, "no config is changed when the install fails"


@pytest.mark.parametrize(
    ("os_release", "expected_calls"),
    [
        (
            'ID="amzn"\nVERSION_ID="2023"\n',
            [
                "dnf install -y --downloadonly --setopt=timeout=20 amazon-ecr-credential-helper",
                "dnf install -y --cacheonly amazon-ecr-credential-helper",
            ],
        ),
        (
            'ID="amzn"\nVERSION_ID="2"\n',
            [
                "yum install -y --downloadonly --setopt=timeout=20 amazon-ecr-credential-helper",
                "yum install -y --cacheonly amazon-ecr-credential-helper",
            ],
        ),
        (
            'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
            [
                "apt-get install -y --no-install-recommends --download-only -o DPkg::Lock::Timeout=120"
                " -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20 amazon-ecr-credential-helper",
                "apt-get install -y --no-install-recommends --no-download -o DPkg::Lock::Timeout=120"
                " amazon-ecr-credential-helper",
            ],
        ),
    ],
    ids=["dnf", "yum", "apt-get"],
)
def test_package_manager_install_paths(
    instance: sb.World, agent_script: str, os_release: str, expected_calls: list[str]
) -> None:
    """Downloads first (dnf and yum --downloadonly, apt-get --download-only: nothing installed, so
    stopping them is harmless), then the transaction from what was downloaded, offline (dnf and yum
    --cacheonly, apt-get --no-download), which the agent never stops."""
    without_helper(instance, os_release)
    install_package_managers(instance)

    run = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert run.returncode == 0, run.stderr
    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok")
    assert package_manager_calls(instance) == expected_calls
    assert instance.probe("alice", home("alice")).returncode == 0


def record_invocations(world: sb.World, program: str) -> None:
    """Replace program with a wrapper that logs who ran it and with which argv, then runs the real one."""
    real = f"{program}.real"
    world.sandbox.run(["mv", program, real]).check_returncode()
    world.sandbox.write(
        program,
        f'#!/bin/sh\necho "$(id -un) $(basename "$0") $*" >> /tmp/invocations.log\nexec {real} "$@"\n',
        0o755,
    )


def test_token_never_in_argv_and_user_steps_run_as_the_user(instance: sb.World, agent_script: str) -> None:
    instance.sandbox.write("/tmp/invocations.log", "", 0o666)
    for program in ("/usr/local/bin/docker", "/usr/local/bin/aws", HELPER_BIN):
        record_invocations(instance, program)

    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
    helper = instance.run_document(agent_script, parameters("helper", users="bob"))

    assert refresh.result["outcome"] == "changed" and helper.result["outcome"] == "changed"
    calls = instance.sandbox.path("/tmp/invocations.log").read_text().splitlines()
    assert "root aws ecr get-authorization-token --region eu-west-1 --output json" in calls
    # The token is checked once per registry by docker login as root (with a scratch config it
    # cannot store to); alice's config is then written by a process running as alice.
    assert [call for call in calls if " login " in call] == [
        f"root docker login --username AWS --password-stdin {sb.REGISTRY_A}"
    ]
    assert "bob docker-credential-ecr-login get" in calls
    assert not [call for call in calls if " sts " in call], "no identity lookup on the success path"
    token_forms = (TOKEN_A, base64.b64encode(f"AWS:{TOKEN_A}".encode()).decode())
    assert not [call for call in calls if any(form in call for form in token_forms)]
    assert_token_confined(refresh, instance, TOKEN_A)


def test_older_ssm_agents_without_parameter_env_vars_still_pass_the_parameters(
    instance: sb.World, agent_script: str
) -> None:
    run = instance.run_document(agent_script, parameters("refresh", users="bob"), agent_version="3.3.1142.0")

    assert (run.result["action"], run.result["outcome"]) == ("refresh", "changed")
    assert [entry["user"] for entry in run.result["users"]] == ["bob"]


def test_refresh_leaves_helper_managed_registries_alone_without_needing_the_aws_cli(
    instance: sb.World, agent_script: str
) -> None:
    config = write_config(instance, "alice", json.dumps({"credHelpers": {sb.REGISTRY_A: "ecr-login"}}))
    before = config.read_bytes()
    instance.sandbox.run(["rm", "-f", "/usr/local/bin/aws"]).check_returncode()

    run = instance.run_document(agent_script, parameters("refresh", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("unchanged", "ok")
    assert run.result["users"][0]["registries"][sb.REGISTRY_A] == {"state": "helper"}
    assert config.read_bytes() == before


def test_amazon_linux_2_enables_the_docker_extras_topic_when_yum_cannot_find_the_package(
    instance: sb.World, agent_script: str
) -> None:
    without_helper(instance, 'ID="amzn"\nVERSION_ID="2"\n')
    install_package_managers(instance)
    instance.sandbox.write("/opt/stub/needs-extras", "")

    run = instance.run_document(agent_script, parameters("helper", users="alice"))

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok")
    assert package_manager_calls(instance) == [
        "yum install -y --downloadonly --setopt=timeout=20 amazon-ecr-credential-helper",
        "amazon-linux-extras enable docker",
        "yum install -y --downloadonly --setopt=timeout=20 amazon-ecr-credential-helper",
        "yum install -y --cacheonly amazon-ecr-credential-helper",
    ]


# ---------------------------------------------------------------- old interpreters


@pytest.mark.parametrize(("version", "platform"), OLDEST)
def test_agent_runs_on_the_oldest_pythons_it_meets(
    instance: sb.World, agent_script: str, version: str, platform: str
) -> None:
    interpreter = old_python(version)
    require(interpreter is not None, f"a Python {version} interpreter (pyenv) standing in for {platform}")
    instance.sandbox.run(["ln", "-sf", str(interpreter), "/usr/local/bin/python3"]).check_returncode()

    refresh = instance.run_document(agent_script, parameters("refresh", users="alice"))
    helper = instance.run_document(agent_script, parameters("helper", users="bob"))
    check = instance.run_document(agent_script, parameters("check", users="alice,bob"))

    assert f"Python {version}" in instance.sandbox.run(["python3", "--version"]).stdout.decode()
    assert [run.result["outcome"] for run in (refresh, helper, check)] == [
        "changed",
        "changed",
        "unchanged",
    ], refresh.stderr + helper.stderr
    states = {entry["user"]: entry["registries"][sb.REGISTRY_A]["state"] for entry in check.result["users"]}
    assert states == {"alice": "logged_in", "bob": "helper"}
    assert instance.probe("alice", home("alice")).returncode == 0
    assert instance.probe("bob", home("bob")).returncode == 0


def test_a_token_the_registry_refuses_is_written_nowhere(instance: sb.World, agent_script: str) -> None:
    """docker login (as root, with a scratch config it cannot store to) is how the agent checks a new
    token: cli/command/registry/login.go reaches storeCredentials only after the registry accepted
    the login, so a refusal never gets as far as any user's file."""
    write_config(instance, "alice", json.dumps({"auths": {"ghcr.io": {"auth": b64("gh:token")}}}))
    before = instance.sandbox.path("/home/alice/.docker/config.json").read_bytes()
    instance.set_registry_password("a-password-moto-never-hands-out")

    run = instance.run_document(agent_script, parameters("refresh", users="alice,bob"))

    assert (run.result["outcome"], run.result["reason"]) == ("failed", "login_failed")
    assert "401" in str(run.result["message"]) or "unauthorized" in str(run.result["message"]).lower()
    assert instance.sandbox.path("/home/alice/.docker/config.json").read_bytes() == before
    assert not instance.sandbox.path("/home/bob/.docker").exists()
    assert_token_confined(run, instance, TOKEN_A)
    assert not [name for name in os.listdir(instance.sandbox.path("/run")) if "ecr-fleet-auth-login" in name]


@pytest.mark.parametrize(
    ("switch", "expected_calls"),
    [
        ("fail-apt-get", 3),  # apt-get fails: download, update, download again (nothing to install)
        ("already-installed", 2),  # apt-get "installs" a package whose binary was deleted by hand
    ],
)
def test_the_release_binary_stands_in_when_the_package_manager_cannot_deliver_a_runnable_helper(
    instance: sb.World, agent_script: str, switch: str, expected_calls: int
) -> None:
    write_config(instance, "alice", json.dumps({"credHelpers": {sb.REGISTRY_A: "ecr-login"}}))
    without_helper(instance)
    install_package_managers(instance)
    instance.sandbox.write(f"/opt/stub/{switch}", "")
    instance.publish_release(contract.DEFAULT_HELPER_VERSION, "amd64", REAL_HELPER)

    run = instance.run_document(
        agent_script, parameters("helper", users="alice", ReleaseBaseUrl=instance.mirror_url())
    )

    assert (run.result["outcome"], run.result["reason"]) == ("changed", "ok"), run.stderr
    assert "via release binary" in str(run.result["message"])
    assert [call.split()[0] for call in package_manager_calls(instance)] == ["apt-get"] * expected_calls
    assert instance.sandbox.path("/usr/local/bin/docker-credential-ecr-login").read_bytes() == REAL_HELPER
    assert instance.probe("alice", home("alice")).returncode == 0
