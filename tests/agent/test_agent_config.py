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


@pytest.fixture
def model(agent: ModuleType) -> Any:
    return agent.DockerModel((28, 2))


class FakeRun:
    """What save_config needs of a run: the report it notes tightened modes in."""

    def __init__(self, agent: ModuleType) -> None:
        self.report = agent.Report("helper")
        self.user = self.report.user("nobody")


def save(agent: ModuleType, account: Any, auth_file: Any) -> FakeRun:
    run = FakeRun(agent)
    agent.save_config(run, account, run.user, auth_file)
    return run


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


def test_absent_config_reads_as_empty(agent: ModuleType, model: Any, account: Any) -> None:
    config = agent.read_config(account, model)
    assert (config.exists, config.view.auths, config.view.creds_store) == (False, {}, "")


def test_config_is_read_with_its_mode(agent: ModuleType, model: Any, account: Any, home: Path) -> None:
    make_config(home, b'{"auths": {}}', mode=0o640)
    config = agent.read_config(account, model)
    assert (config.view.auths, config.mode, config.raw) == ({}, 0o640, b'{"auths": {}}')


@pytest.mark.parametrize(
    "content",
    [
        b'{"auths": {',
        b"[1, 2]",
        b'"text"',
        b'{"auths": []}',
        b'{"credHelpers": "x"}',
        b"\xff\xfe",
        b'{"features": {"buildkit": true}}',
        b'{"auths": {"r": {"auth": "bm9jb2xvbg=="}}}',
    ],
)
def test_corrupt_configs_are_reported(
    agent: ModuleType, model: Any, account: Any, home: Path, content: bytes
) -> None:
    make_config(home, content)
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account, model)
    assert raised.value.reason == "config_corrupt"


def test_a_config_its_owner_cannot_read_is_left_alone(
    agent: ModuleType, model: Any, account: Any, home: Path
) -> None:
    """docker runs as the user: it cannot open the file, warns, starts empty, and a login would
    overwrite it (config.go load returns the error; Save writes a fresh file)."""
    make_config(home, b'{"auths": {}}', mode=0o044)
    with pytest.raises(agent.AgentError, match="not readable") as raised:
        agent.read_config(account, model)
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
        agent.read_config(account, model)
    assert raised.value.reason == "config_unsafe"


def test_symlinked_config_dir_is_refused(
    agent: ModuleType, model: Any, account: Any, home: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (home / ".docker").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account, model)
    assert raised.value.reason == "config_unsafe"


def test_config_owned_by_someone_else_is_refused(
    agent: ModuleType, model: Any, account: Any, home: Path
) -> None:
    make_config(home, b"{}", owner=0)
    with pytest.raises(agent.AgentError, match="not owned") as raised:
        agent.read_config(account, model)
    assert raised.value.reason == "config_unsafe"


def test_a_fifo_in_place_of_the_config_is_refused_without_blocking(
    agent: ModuleType, account: Any, home: Path
) -> None:
    (home / ".docker").mkdir()
    os.chown(home / ".docker", NOBODY, NOBODY)
    os.mkfifo(home / ".docker" / "config.json")
    os.chown(home / ".docker" / "config.json", NOBODY, NOBODY)
    with pytest.raises(agent.AgentError) as raised:
        agent.read_config(account, model)
    assert raised.value.reason == "config_unsafe"


# ---------------------------------------------------------------- writing (as the user)


def helper_edit(auth_file: Any) -> Any:
    auth_file.use_helper(REGISTRY)
    return auth_file


def test_new_config_is_created_0600_by_the_user(
    agent: ModuleType, model: Any, account: Any, home: Path
) -> None:
    save(agent, account, helper_edit(agent.read_config(account, model)))
    path = home / ".docker" / "config.json"
    info = path.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, NOBODY)
    assert stat.S_IMODE((home / ".docker").stat().st_mode) == 0o700
    assert json.loads(path.read_bytes()) == {"credHelpers": {REGISTRY: "ecr-login"}}
    assert not (home / ".docker" / agent.BACKUP_NAME).exists(), "nothing to back up"


def test_a_config_without_credentials_keeps_its_mode_and_its_backup_is_owner_only(
    agent: ModuleType, model: Any, account: Any, home: Path
) -> None:
    path = make_config(home, b'{"detachKeys": "ctrl-e,e"}', mode=0o644)
    run = save(agent, account, helper_edit(agent.read_config(account, model)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "nothing secret in it: the owner's choice stands"
    assert path.stat().st_uid == NOBODY
    backup = home / ".docker" / agent.BACKUP_NAME
    assert backup.read_bytes() == b'{"detachKeys": "ctrl-e,e"}'
    assert (stat.S_IMODE(backup.stat().st_mode), backup.stat().st_uid) == (0o600, NOBODY)
    assert run.report.notices == []


def test_a_config_holding_credentials_is_made_owner_only_and_that_is_reported(
    agent: ModuleType, model: Any, account: Any, home: Path
) -> None:
    original = json.dumps({"auths": {"ghcr.io": {"auth": b64("gh:secret")}}}).encode()
    path = make_config(home, original, mode=0o644)
    run = save(agent, account, helper_edit(agent.read_config(account, model)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    backup = home / ".docker" / agent.BACKUP_NAME
    assert (backup.read_bytes(), stat.S_IMODE(backup.stat().st_mode)) == (original, 0o600)
    assert run.user.as_dict()["mode_tightened"] == {"config.json": "0644"}
    assert run.report.result()["reason"] == "mode_tightened"


def test_a_write_interrupted_before_the_rename_leaves_the_old_config(
    agent: ModuleType, model: Any, account: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_config(home, b'{"old": true}')
    config = helper_edit(agent.read_config(account, model))
    real_rename = os.rename

    def killed_before_config_rename(src: str, dst: str, **kwargs: Any) -> None:
        if dst == "config.json":
            os._exit(9)  # the process dies here, as a SIGKILL would leave it
        real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "rename", killed_before_config_rename)
    with pytest.raises(agent.AgentError):
        save(agent, account, config)
    monkeypatch.undo()
    assert path.read_bytes() == b'{"old": true}'
    leftovers = [name for name in os.listdir(home / ".docker") if name.endswith(agent.TEMP_SUFFIX)]
    assert leftovers, "the interrupted write left its temp file"

    save(agent, account, helper_edit(agent.read_config(account, model)))
    assert json.loads(path.read_bytes()) == {"old": True, "credHelpers": {REGISTRY: "ecr-login"}}
    assert not [name for name in os.listdir(home / ".docker") if name.endswith(agent.TEMP_SUFFIX)]


def test_writes_cannot_be_redirected_by_a_symlink_planted_after_the_check(
    agent: ModuleType, model: Any, account: Any, home: Path, tmp_path: Path
) -> None:
    config = helper_edit(agent.read_config(account, model))  # no .docker yet
    victim = tmp_path / "victim"
    victim.mkdir()
    (home / ".docker").symlink_to(victim)  # the user swaps in a symlink between read and write
    with pytest.raises(agent.AgentError) as raised:
        save(agent, account, config)
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


# ---------------------------------------------------------------- states


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def record_for(agent: ModuleType, auth: str, expires_at: str) -> dict[str, str]:
    return {"auth_sha256": agent.auth_digest(auth), "expires_at": expires_at}


class FakeStores:
    """Credential helpers as a user's docker would find them: which run, and what each holds."""

    def __init__(self, agent: ModuleType, usable: set[str], held: dict[tuple[str, str], Any]) -> None:
        self.agent, self.usable_names, self.held = agent, usable, held

    def usable(self, name: str) -> bool:
        return name in self.usable_names

    def credential(self, name: str, server: str) -> Any:
        if name not in self.usable_names:
            raise self.agent.AgentError("helper_unavailable", f"docker-credential-{name} is not installed")
        return self.held.get((name, server))


def state(agent: ModuleType, config: dict[str, Any], record: Any = None, stores: Any = None) -> Any:
    auth_file = agent.DockerAuthFile(agent.DockerModel((28, 2)), json.dumps(config).encode(), 0o600)
    return agent.registry_state(auth_file, REGISTRY, record, stores or FakeStores(agent, {"ecr-login"}, {}))


def test_registry_states(agent: ModuleType) -> None:
    auth = b64("AWS:token")
    future = "2999-01-01T00:00:00Z"
    logged_in = {"auths": {REGISTRY: {"auth": auth}}}
    assert state(agent, {}) == {"state": "none"}
    assert state(agent, {"credHelpers": {REGISTRY: "ecr-login"}}) == {"state": "helper"}
    assert state(agent, {"credsStore": "ecr-login"}) == {"state": "helper"}
    stale = {"auths": {f"https://{REGISTRY}": {"auth": auth}}, "credHelpers": {REGISTRY: "ecr-login"}}
    assert state(agent, stale) == {"state": "stale_auth"}
    assert state(agent, logged_in) == {"state": "logged_in"}
    assert state(agent, logged_in, record_for(agent, auth, future)) == {
        "state": "logged_in",
        "expires_at": future,
    }
    # An expiry recorded for another login (the user logged in by hand since) is not reported.
    assert state(agent, logged_in, record_for(agent, b64("AWS:older"), future)) == {"state": "logged_in"}
    past = state(agent, logged_in, record_for(agent, auth, "2015-01-01T00:00:00Z"))
    assert past == {"state": "logged_in", "expires_at": "2015-01-01T00:00:00Z", "expired": True}


def test_an_empty_entry_is_not_a_login_without_a_store(agent: ModuleType) -> None:
    """file.go: `{}` decodes to no user and no password; docker pulls anonymously."""
    assert state(agent, {"auths": {REGISTRY: {}}}) == {"state": "none"}


def test_a_credential_store_decides_the_state(agent: ModuleType) -> None:
    """native_store.go Get: with a credsStore the file entry is `{}` and the store has the secret."""
    auth = b64("AWS:token")
    config = {"auths": {REGISTRY: {}}, "credsStore": "pass"}
    held = {("pass", REGISTRY): agent.Credential("AWS", "token")}
    stores = FakeStores(agent, {"pass", "ecr-login"}, held)
    future = "2999-01-01T00:00:00Z"
    assert state(agent, config, record_for(agent, auth, future), stores) == {
        "state": "logged_in",
        "expires_at": future,
    }
    assert state(agent, config, None, FakeStores(agent, {"pass"}, {})) == {"state": "none"}


def test_a_helper_that_cannot_run_is_never_health(agent: ModuleType) -> None:
    nothing = FakeStores(agent, set(), {})
    assert state(agent, {"credHelpers": {REGISTRY: "ecr-login"}}, None, nothing) == {
        "state": "helper_unavailable",
        "helper": "ecr-login",
    }
    assert state(agent, {"credsStore": "pass"}, None, nothing) == {
        "state": "helper_unavailable",
        "helper": "pass",
    }


def test_freshness_uses_the_margin(agent: ModuleType) -> None:
    digest = agent.auth_digest(b64("AWS:token"))
    now = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC)
    record = {"auth_sha256": digest, "expires_at": "2026-11-27T19:00:00Z"}
    assert agent.is_fresh(record, digest, now)
    assert not agent.is_fresh(dict(record, expires_at="2026-11-27T17:00:00Z"), digest, now)
    assert not agent.is_fresh(record, agent.auth_digest(b64("AWS:other")), now)
    assert not agent.is_fresh(None, digest, now)
    assert not agent.is_fresh(record, None, now)


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


# ---------------------------------------------------------------- credential stores (the helper protocol)


class StoreHost:
    """What CredentialStores uses of the host: the search path and the environment."""

    def __init__(self, bin_dir: Path) -> None:
        self.path = f"{bin_dir}:/usr/bin:/bin"
        self.env = {"PATH": self.path}
        self.helper = None
        self.helper_runs = False


def fake_helper(bin_dir: Path, name: str, body: str) -> None:
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, home: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir(mode=0o755)
    return folder


def test_store_answers_are_read_as_docker_reads_them(agent: ModuleType, account: Any, bin_dir: Path) -> None:
    """docker-credential-helpers client.go Get: "credentials not found in native keychain" is no
    error; native_store.go: the user name "<token>" marks an identity token."""
    fake_helper(
        bin_dir,
        "fake",
        'server=$(cat)\ncase "$server" in\n'
        '  known) echo \'{"ServerURL":"known","Username":"AWS","Secret":"s3cret"}\' ;;\n'
        '  token) echo \'{"ServerURL":"token","Username":"<token>","Secret":"id-token"}\' ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n',
    )
    stores = agent.CredentialStores(StoreHost(bin_dir), account)
    known = stores.credential("fake", "known")
    assert (known.username, known.password, known.identity_token) == ("AWS", "s3cret", "")
    assert stores.credential("fake", "token").identity_token == "id-token"
    assert stores.credential("fake", "other") is None
    assert stores.usable("fake")
    assert "s3cret" not in repr(known)


def test_a_store_that_fails_or_is_missing_is_unusable(agent: ModuleType, account: Any, bin_dir: Path) -> None:
    fake_helper(bin_dir, "locked", "echo 'gpg: decryption failed: No secret key'; exit 1\n")
    stores = agent.CredentialStores(StoreHost(bin_dir), account)
    with pytest.raises(agent.AgentError, match="No secret key") as raised:
        stores.credential("locked", "known")
    assert raised.value.reason == "helper_unavailable"
    assert not stores.usable("locked")
    assert not stores.usable("missing")
    assert not stores.usable("../../bin/sh"), "a name that is a path is never run"
    with pytest.raises(agent.AgentError, match="not installed"):
        stores.credential("missing", "known")


def test_store_runs_as_the_user_and_gets_the_secret_on_stdin_only(
    agent: ModuleType, account: Any, bin_dir: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir(mode=0o777)
    seen.chmod(0o777)
    fake_helper(bin_dir, "rec", f'echo "$(id -u) $*" > {seen}/argv\ncat > {seen}/stdin\n')
    stores = agent.CredentialStores(StoreHost(bin_dir), account)
    stores.store("rec", REGISTRY, "AWS", "s3cret")
    assert (seen / "argv").read_text() == f"{NOBODY} store\n"
    assert json.loads((seen / "stdin").read_text()) == {
        "ServerURL": REGISTRY,
        "Username": "AWS",
        "Secret": "s3cret",
    }
    assert stat.S_IMODE((seen / "stdin").stat().st_mode) & 0o077 == 0, "written under the agent's umask 077"


def test_a_refused_login_is_named_by_the_registrys_refusal(agent: ModuleType) -> None:
    """docker tries https, then http, and ends with the last endpoint's error."""
    diagnostics = (
        'level=info msg="Error logging in to endpoint, trying next endpoint" error="login attempt to '
        'https://r/v2/ failed with status: 401 Unauthorized"\n'
        'level=info msg="Error logging in to endpoint, trying next endpoint" '
        'error="Get http://r/v2/: refused"\n'
        "Get http://r/v2/: connection refused\n"
    )
    assert (
        agent.login_failure(diagnostics)
        == "login attempt to https://r/v2/ failed with status: 401 Unauthorized"
    )
    assert (
        agent.login_failure("Get http://r/v2/: connection refused\n")
        == "Get http://r/v2/: connection refused"
    )
