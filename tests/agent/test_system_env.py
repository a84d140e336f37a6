"""KeepUserDockerLogin's line in /etc/environment (agent/system_env.py).

pam_env.conf(5): /etc/environment holds simple KEY=VAL pairs on separate lines; what else is in it
(the distribution's PATH on Ubuntu, an admin's proxies) is kept. The helper honours only the exact
value "true" (amazon-ecr-credential-helper ecr-login/ecr.go: os.Getenv(...) == "true")."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.outcomes import AgentError
from agent.system_env import keep_user_docker_login

UBUNTU = (
    'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    ':/usr/games:/usr/local/games:/snap/bin"\n'
)


def test_the_line_is_added_and_everything_else_kept(tmp_path: Path) -> None:
    path = tmp_path / "environment"
    path.write_text(UBUNTU + "https_proxy=http://proxy:3128\n")
    os.chmod(path, 0o644)
    assert keep_user_docker_login(str(path)) is True
    assert path.read_text() == UBUNTU + "https_proxy=http://proxy:3128\nAWS_ECR_IGNORE_CREDS_STORAGE=true\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    backup = tmp_path / "environment.ecr-fleet-auth.bak"
    assert backup.read_text() == UBUNTU + "https_proxy=http://proxy:3128\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    before = path.stat()
    assert keep_user_docker_login(str(path)) is False, "already set: not written again"
    assert path.stat().st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize(
    "line", ['export AWS_ECR_IGNORE_CREDS_STORAGE="1"', "AWS_ECR_IGNORE_CREDS_STORAGE=TRUE"]
)
def test_another_value_is_replaced_by_the_one_the_helper_honours(tmp_path: Path, line: str) -> None:
    """Meant on, but the helper honours exactly "true" (ecr-login/ecr.go: == "true")."""
    path = tmp_path / "environment"
    path.write_text(f"{line}\nLANG=C.UTF-8\n")
    assert keep_user_docker_login(str(path)) is True
    assert path.read_text() == "LANG=C.UTF-8\nAWS_ECR_IGNORE_CREDS_STORAGE=true\n"


def test_a_missing_file_is_created_as_distributions_ship_it(tmp_path: Path) -> None:
    path = tmp_path / "environment"
    assert keep_user_docker_login(str(path)) is True
    assert (path.read_text(), stat.S_IMODE(path.stat().st_mode)) == (
        "AWS_ECR_IGNORE_CREDS_STORAGE=true\n",
        0o644,
    )


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("LANG=C\n")
    (tmp_path / "environment").symlink_to(target)
    with pytest.raises(AgentError) as raised:
        keep_user_docker_login(str(tmp_path / "environment"))
    assert raised.value.reason == "config_unsafe"
    assert target.read_text() == "LANG=C\n"


@pytest.mark.parametrize("value", ["false", "0", '"no"'])
def test_an_administrators_own_off_is_kept_and_refused(tmp_path: Path, value: str) -> None:
    """An administrator who turned it off chose that users' logins to helper-served registries fail
    (the helper's default): the file is left byte for byte and the agent refuses (config_unsafe), so
    helper leaves the registries as they are (acceptance finding 9)."""
    path = tmp_path / "environment"
    path.write_text(f"LANG=C\nAWS_ECR_IGNORE_CREDS_STORAGE={value}\n")
    with pytest.raises(AgentError) as raised:
        keep_user_docker_login(str(path))
    assert raised.value.reason == "config_unsafe"
    assert "left as it is" in raised.value.message
    assert path.read_text() == f"LANG=C\nAWS_ECR_IGNORE_CREDS_STORAGE={value}\n"
    assert not (tmp_path / "environment.ecr-fleet-auth.bak").exists()
