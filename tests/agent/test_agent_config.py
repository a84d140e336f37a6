"""The agent's handling of docker configs: reading safely, writing atomically as the user, deciding states."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import require

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
NOBODY = 65534


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home directory owned by an unprivileged uid, reachable by it (tmp_path's parents are 0700)."""
    require(os.geteuid() == 0, "root (the agent changes to the user's uid)")
    folder = tmp_path / "home"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    for parent in (tmp_path, *tmp_path.parents):
        if parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IXOTH)
    return folder


@pytest.fixture
def account(agent: ModuleType, home: Path) -> Any:
    return agent.Account("nobody", NOBODY, NOBODY, str(home))


def make_config(home: Path, content: bytes, mode: int = 0o600, owner: int = NOBODY) -> Path:
    folder = home / ".docker"
    folder.mkdir(exist_ok=True)
    os.chown(folder, owner, owner)
    path = folder / "config.json"
    path.write_bytes(content)
    os.chmod(path, mode)
    os.chown(path, owner, owner)
    return path


# ---------------------------------------------------------------- reading


def test_absent_config_reads_as_empty(agent: ModuleType, account: Any) -> None:
    config = agent.read_config(account)
    assert (config.exists, config.data) == (False, {})


def test_config_is_read_with_its_mode(agent: ModuleType, account: Any, home: Path) -> None:
    make_config(home, b'{"auths": {}}', mode=0o640)
    config = agent.read_config(account)
    assert (config.data, config.mode, config.raw) == ({"auths": {}}, 0o640, b'{"auths": {}}')


@pytest.mark.parametrize(
    "content", [b'{"auths": {', b"[1, 2]", b'"text"', b'{"auths": []}', b'{"credHelpers": "x"}', b"\xff\xfe"]
)
def test_corrupt_configs_are_reported(agent: ModuleType, account: Any, home: Path, content: bytes) -> None:
    make_config(home, content)
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account)
    assert raised.value.reason == "config_corrupt"


def test_symlinked_config_file_is_refused(
    agent: ModuleType, account: Any, home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    (home / ".docker").mkdir()
    os.chown(home / ".docker", NOBODY, NOBODY)
    (home / ".docker" / "config.json").symlink_to(target)
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account)
    assert raised.value.reason == "config_unsafe"


def test_symlinked_config_dir_is_refused(agent: ModuleType, account: Any, home: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (home / ".docker").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account)
    assert raised.value.reason == "config_unsafe"


def test_config_owned_by_someone_else_is_refused(agent: ModuleType, account: Any, home: Path) -> None:
    make_config(home, b"{}", owner=0)
    with pytest.raises(agent.AgentError, match="not owned") as raised:
        agent.read_config(account)
    assert raised.value.reason == "config_unsafe"


def test_a_fifo_in_place_of_the_config_is_refused_without_blocking(
    agent: ModuleType, account: Any, home: Path
) -> None:
    (home / ".docker").mkdir()
    os.chown(home / ".docker", NOBODY, NOBODY)
    os.mkfifo(home / ".docker" / "config.json")
    os.chown(home / ".docker" / "config.json", NOBODY, NOBODY)
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account)
    assert raised.value.reason == "config_unsafe"


# ---------------------------------------------------------------- writing (as the user)


def test_new_config_is_created_0600_by_the_user(agent: ModuleType, account: Any, home: Path) -> None:
    config = agent.read_config(account)
    agent.save_config(account, config, {"credHelpers": {REGISTRY: "ecr-login"}})
    path = home / ".docker" / "config.json"
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, NOBODY)
    assert stat.S_IMODE((home / ".docker").stat().st_mode) == 0o700
    assert json.loads(path.read_bytes()) == {"credHelpers": {REGISTRY: "ecr-login"}}
    assert not (home / ".docker" / agent.BACKUP_NAME).exists(), "nothing to back up"


def test_existing_config_keeps_its_mode_and_is_backed_up(agent: ModuleType, account: Any, home: Path) -> None:
    path = make_config(home, b'{"detachKeys": "ctrl-e,e"}', mode=0o640)
    config = agent.read_config(account)
    agent.save_config(account, config, {"detachKeys": "ctrl-e,e", "credHelpers": {}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_uid == NOBODY
    backup = home / ".docker" / agent.BACKUP_NAME
    assert backup.read_bytes() == b'{"detachKeys": "ctrl-e,e"}'
    assert (stat.S_IMODE(backup.stat().st_mode), backup.stat().st_uid) == (0o640, NOBODY)


def test_a_write_interrupted_before_the_rename_leaves_the_old_config(
    agent: ModuleType, account: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_config(home, b'{"old": true}')
    config = agent.read_config(account)
    real_rename = os.rename

    def killed_before_config_rename(src: str, dst: str, **kwargs: Any) -> None:
        if dst == "config.json":
            os._exit(9)  # the process dies here, as a SIGKILL would leave it
        real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "rename", killed_before_config_rename)
    with pytest.raises(agent.AgentError):
        agent.save_config(account, config, {"new": True})
    monkeypatch.undo()
    assert path.read_bytes() == b'{"old": true}'
    leftovers = [name for name in os.listdir(home / ".docker") if name.endswith(agent.TEMP_SUFFIX)]
    assert leftovers, "the interrupted write left its temp file"

    agent.save_config(account, agent.read_config(account), {"new": True})
    assert json.loads(path.read_bytes()) == {"new": True}
    assert not [name for name in os.listdir(home / ".docker") if name.endswith(agent.TEMP_SUFFIX)]


def test_writes_cannot_be_redirected_by_a_symlink_planted_after_the_check(
    agent: ModuleType, account: Any, home: Path, tmp_path: Path
) -> None:
    config = agent.read_config(account)  # no .docker yet
    victim = tmp_path / "victim"
    victim.mkdir()
    (home / ".docker").symlink_to(victim)  # the user swaps in a symlink between read and write
    with pytest.raises(agent.AgentError) as raised:
        agent.save_config(account, config, {"credHelpers": {}})
    assert raised.value.reason == "config_unsafe"
    assert os.listdir(victim) == []


def test_user_steps_run_with_the_users_uid_not_roots(agent: ModuleType, account: Any, tmp_path: Path) -> None:
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o700)

    def write_into_root_dir() -> None:
        (root_only / "planted").write_text("x")

    with pytest.raises(agent.AgentError) as raised:
        agent.run_as_user(account, write_into_root_dir)
    assert raised.value.reason == "config_unwritable"
    assert not (root_only / "planted").exists()


# ---------------------------------------------------------------- states and merges


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def record_for(agent: ModuleType, auth: str, expires_at: str) -> dict[str, str]:
    return {"auth_sha256": agent.auth_digest(auth), "expires_at": expires_at}


def test_registry_states(agent: ModuleType) -> None:
    auth = b64("AWS:token")
    future = "2999-01-01T00:00:00Z"
    logged_in = {"auths": {REGISTRY: {"auth": auth}}}
    assert agent.registry_state({}, REGISTRY, None) == {"state": "none"}
    assert agent.registry_state({"credHelpers": {REGISTRY: "ecr-login"}}, REGISTRY, None) == {
        "state": "helper"
    }
    assert agent.registry_state({"credsStore": "ecr-login"}, REGISTRY, None) == {"state": "helper"}
    stale = {"auths": {f"https://{REGISTRY}": {"auth": auth}}, "credHelpers": {REGISTRY: "ecr-login"}}
    assert agent.registry_state(stale, REGISTRY, None) == {"state": "stale_auth"}
    assert agent.registry_state(logged_in, REGISTRY, None) == {"state": "logged_in"}
    assert agent.registry_state(logged_in, REGISTRY, record_for(agent, auth, future)) == {
        "state": "logged_in",
        "expires_at": future,
    }
    # An expiry recorded for another login (the user logged in by hand since) is not reported.
    other = record_for(agent, b64("AWS:older"), future)
    assert agent.registry_state(logged_in, REGISTRY, other) == {"state": "logged_in"}
    past = agent.registry_state(logged_in, REGISTRY, record_for(agent, auth, "2015-01-01T00:00:00Z"))
    assert past == {"state": "logged_in", "expires_at": "2015-01-01T00:00:00Z", "expired": True}


def test_freshness_uses_the_margin(agent: ModuleType) -> None:
    auth = b64("AWS:token")
    now = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC)
    assert agent.is_fresh(record_for(agent, auth, "2026-11-27T19:00:00Z"), auth, now)
    assert not agent.is_fresh(record_for(agent, auth, "2026-11-27T17:00:00Z"), auth, now)
    assert not agent.is_fresh(record_for(agent, auth, "2026-11-27T19:00:00Z"), b64("AWS:other"), now)
    assert not agent.is_fresh(None, auth, now)


def test_with_helper_merges_and_drops_only_the_managed_auths(agent: ModuleType) -> None:
    original = {
        "auths": {
            REGISTRY: {"auth": "x"},
            f"https://{REGISTRY}/v1/": {"auth": "y"},
            "ghcr.io": {"auth": "z"},
        },
        "credHelpers": {"gcr.io": "gcloud"},
        "psFormat": "table",
    }
    snapshot = json.loads(json.dumps(original))
    merged = agent.with_helper(original, [REGISTRY, "public.ecr.aws"])
    assert merged == {
        "auths": {"ghcr.io": {"auth": "z"}},
        "credHelpers": {"gcr.io": "gcloud", REGISTRY: "ecr-login", "public.ecr.aws": "ecr-login"},
        "psFormat": "table",
    }
    assert original == snapshot, "the input is not modified"
    assert agent.with_helper(merged, [REGISTRY, "public.ecr.aws"]) == merged, "idempotent"


# ---------------------------------------------------------------- tokens and times


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T18:00:00+00:00", "2026-11-27T18:00:00Z"),
        ("2026-11-27T18:00:00.123000+00:00", "2026-11-27T18:00:00Z"),
        ("2026-11-27T20:00:00+02:00", "2026-11-27T18:00:00Z"),
        ("2026-11-27T18:00:00Z", "2026-11-27T18:00:00Z"),
        (1795802400.0, "2026-11-27T18:00:00Z"),
    ],
)
def test_parse_time_accepts_what_the_aws_cli_prints(agent: ModuleType, value: object, expected: str) -> None:
    assert agent.format_time(agent.parse_time(value)) == expected


def test_parse_time_rejects_garbage(agent: ModuleType) -> None:
    assert agent.parse_time("tomorrow") is None
    assert agent.parse_time(None) is None


def test_parse_token_for_private_and_public_responses(agent: ModuleType) -> None:
    token = base64.b64encode(b"AWS:secret-password").decode()
    private = json.dumps({"authorizationData": [{"authorizationToken": token, "expiresAt": 1795802400}]})
    public = json.dumps(
        {"authorizationData": {"authorizationToken": token, "expiresAt": "2026-11-27T18:00:00Z"}}
    )
    for body in (private, public):
        parsed = agent.parse_token(body.encode(), "ecr", "eu-west-1")
        assert (parsed.username, parsed.password) == ("AWS", "secret-password")
        assert agent.format_time(parsed.expires_at) == "2026-11-27T18:00:00Z"
        assert "secret-password" not in repr(parsed)


def test_parse_token_rejects_a_malformed_response(agent: ModuleType) -> None:
    with pytest.raises(agent.AgentError) as raised:
        agent.parse_token(b'{"authorizationData": []}', "ecr", "eu-west-1")
    assert raised.value.reason == "token_failed"


# ---------------------------------------------------------------- token fetch failures


class FakeHost:
    """Just what fetch_token uses: the aws path and root's environment."""

    def __init__(self, aws: Path) -> None:
        self.aws = str(aws)

    def root_env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            "Unable to locate credentials. You can configure credentials by running aws configure.",
            "no_credentials",
        ),
        (
            "An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: "
            "User is not authorized to perform: ecr:GetAuthorizationToken",
            "no_credentials",
        ),
        ("Could not connect to the endpoint URL", "token_failed"),
    ],
)
def test_token_fetch_failures_get_their_reason(
    agent: ModuleType, tmp_path: Path, stderr: str, reason: str
) -> None:
    fake_aws = tmp_path / "aws"
    fake_aws.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit 255\n")
    fake_aws.chmod(0o755)
    with pytest.raises(agent.AgentError) as raised:
        agent.fetch_token(FakeHost(fake_aws), ("ecr", "eu-west-1"))
    assert raised.value.reason == reason
