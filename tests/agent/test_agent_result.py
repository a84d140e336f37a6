"""The result line, the lock, the top-level run and the shell shim."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from ecr_fleet_auth_cdk.document.script import ENTRYPOINT_SH
from tests.conftest import require

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def big_result(agent: ModuleType, users: int, registries: int) -> dict[str, object]:
    report = agent.Report("check")
    report.host = {
        "os": "amzn-2023",
        "arch": "x86_64",
        "docker": "25.0.3",
        "aws_cli": "2.15.0",
        "helper": None,
    }
    for index in range(users):
        user = report.user(f"user{index:02d}")
        for number in range(registries):
            registry = f"{100000000000 + number}.dkr.ecr.eu-west-1.amazonaws.com"
            user.registries[registry] = {"state": "logged_in", "expires_at": "2026-11-27T18:00:00Z"}
    return report.result()


def test_result_line_is_one_compact_json_line(agent: ModuleType) -> None:
    line = agent.result_line(big_result(agent, users=1, registries=1))
    assert "\n" not in line and ", " not in line
    assert json.loads(line)["users"][0]["user"] == "user00"


@pytest.mark.parametrize(("users", "registries"), [(50, 1), (3, 20), (1, 20), (50, 20)])
def test_result_line_stays_within_the_limit_and_says_what_it_dropped(
    agent: ModuleType, users: int, registries: int
) -> None:
    result = big_result(agent, users, registries)
    line = agent.result_line(result)
    assert len(line.encode()) <= 2000
    parsed = json.loads(line)
    kept = len(parsed["users"])
    assert kept + parsed.get("users_truncated", 0) == users
    assert parsed["outcome"] == result["outcome"] and parsed["reason"] == result["reason"]
    if kept:
        assert parsed["users"] == result["users"][:kept], "the users kept are whole and in order"


def test_truncation_keeps_the_users_with_problems(agent: ModuleType) -> None:
    result = big_result(agent, users=50, registries=3)
    users = result["users"]
    assert isinstance(users, list)
    users[40]["reason"] = "config_corrupt"
    next(iter(users[45]["registries"].values()))["error"] = "login_failed"
    parsed = json.loads(agent.result_line(result))
    names = [user["user"] for user in parsed["users"]]
    assert "user40" in names and "user45" in names
    assert names == sorted(names), "the original order is kept"
    assert len(names) + parsed["users_truncated"] == 50


def test_outcome_follows_changes_and_problems(agent: ModuleType) -> None:
    report = agent.Report("refresh")
    assert (report.result()["outcome"], report.result()["reason"]) == ("unchanged", "ok")
    report.changes += 1
    assert report.result()["outcome"] == "changed"
    user = report.user("alice")
    report.problem("config_corrupt", "alice: bad json", user)
    report.problem("login_failed", "bob: 401")
    assert (report.result()["outcome"], report.result()["reason"]) == ("failed", "config_corrupt")
    assert user.as_dict()["reason"] == "config_corrupt"
    check = agent.Report("check")
    check.problem("config_corrupt", "alice: bad json")
    assert (check.result()["outcome"], check.result()["reason"]) == ("unchanged", "config_corrupt")


def test_an_unexpected_error_for_one_user_is_that_users_problem_and_the_others_go_on(
    agent: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """No per-user surprise (a bug, an OS error nobody foresaw) may stop the other users: it is
    reported as internal_error for that user, with its traceback on stderr, and the step goes on."""
    run = agent.Run.__new__(agent.Run)
    run.report = agent.Report("refresh")
    users = [(name, run.report.user(name), None) for name in ("alice", "bob", "carol")]
    seen = []

    def step(account: str, user: object, auth_file: object) -> None:
        seen.append(account)
        if account == "bob":
            raise RecursionError("maximum recursion depth exceeded")

    done = run.per_user(users, step)

    assert seen == ["alice", "bob", "carol"]
    assert [entry[0] for entry in done] == ["alice", "carol"]
    result = run.report.result()
    assert (result["outcome"], result["reason"]) == ("failed", "internal_error")
    assert result["message"] == "bob: unexpected RecursionError"
    assert [user.get("reason") for user in result["users"]] == [None, "internal_error", None]
    assert "RecursionError" in capsys.readouterr().err


def test_lock_admits_one_run_at_a_time(agent: ModuleType, tmp_path: Path) -> None:
    path = str(tmp_path / "agent.lock")
    first = agent.acquire_lock(path)
    try:
        assert first is not None
        assert agent.acquire_lock(path) is None
    finally:
        os.close(first)
    again = agent.acquire_lock(path)
    assert again is not None
    os.close(again)


def test_lock_refuses_a_symlink(agent: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "target").write_text("")
    (tmp_path / "agent.lock").symlink_to(tmp_path / "target")
    with pytest.raises(OSError, match="symbolic links"):
        agent.acquire_lock(str(tmp_path / "agent.lock"))


def ssm_environ(**overrides: str) -> dict[str, str]:
    values = {
        "SSM_Action": "check",
        "SSM_Registries": REGISTRY,
        "SSM_Users": "auto",
        "SSM_HelperVersion": "0.12.0",
        "SSM_ReleaseBaseUrl": "https://mirror.example.com",
        "PATH": os.environ.get("PATH", ""),
    }
    values.update(overrides)
    return values


def test_run_reports_invalid_parameters_as_failed(agent: ModuleType, tmp_path: Path) -> None:
    result = agent.run(ssm_environ(SSM_Users="a b"), lock_path=str(tmp_path / "l"), state_dir=str(tmp_path))
    assert (result["outcome"], result["reason"]) == ("failed", "invalid_parameter")
    assert "Users" in result["message"]


def test_run_while_locked_is_skipped(agent: ModuleType, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root")
    lock = str(tmp_path / "agent.lock")
    held = agent.acquire_lock(lock)
    try:
        result = agent.run(ssm_environ(), lock_path=lock, state_dir=str(tmp_path))
    finally:
        os.close(held)
    assert (result["outcome"], result["reason"]) == ("skipped", "locked")


@pytest.mark.parametrize(
    ("os_release", "manager"),
    [
        ({"ID": "amzn", "VERSION_ID": "2"}, "yum"),
        ({"ID": "amzn", "VERSION_ID": "2023"}, "dnf"),
        ({"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "20.04"}, "apt"),
        ({"ID": "debian", "VERSION_ID": "11"}, "apt"),
        ({"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "8.9"}, None),
        ({}, None),
    ],
)
def test_package_manager_per_distribution(
    agent: ModuleType, os_release: dict[str, str], manager: str
) -> None:
    assert agent.package_manager(os_release) == manager


def test_release_url_follows_the_official_layout(agent: ModuleType) -> None:
    base = "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com/"
    assert agent.release_url(base, "0.9.1", "arm64") == (
        "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com"
        "/0.9.1/linux-arm64/docker-credential-ecr-login"
    )
    assert agent.release_arch("x86_64") == "amd64"
    assert agent.release_arch("aarch64") == "arm64"
    assert agent.release_arch("s390x") is None


# ---------------------------------------------------------------- the shell shim


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_shim_without_python_prints_the_no_python_line(shell: str, tmp_path: Path) -> None:
    require(shutil.which(shell) is not None, shell)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    done = subprocess.run(
        [shutil.which(shell) or shell, str(ENTRYPOINT_SH)],
        env={"PATH": str(bin_dir), "SSM_Action": "refresh"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert (result["outcome"], result["reason"], result["action"]) == ("failed", "no_python", "refresh")
    assert "no Python" in done.stderr


def test_shim_never_echoes_an_unknown_action(tmp_path: Path) -> None:
    done = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT_SH)],
        env={"PATH": str(tmp_path), "SSM_Action": '"};rm -rf /;{"'},
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(done.stdout)["action"] is None


def test_shim_runs_the_agent_it_is_given(tmp_path: Path) -> None:
    fake_agent = tmp_path / "agent.py"
    fake_agent.write_text("import sys; print('ran with', sys.flags.isolated)\n")
    done = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT_SH)],
        env={"PATH": "/usr/bin:/bin", "ECR_FLEET_AUTH_AGENT_PY": str(fake_agent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ran with 1\n")
