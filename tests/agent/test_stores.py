"""Credential helpers used as stores (agent/stores.py): docker's helper protocol, each helper run as the
user's docker runs it."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

import agent.as_user
import agent.stores
import agent.user_env
from agent.outcomes import AgentError
from agent.stores import CredentialStores
from tests.agent.user_files import NOBODY, REGISTRY


class StoreHost:
    """What CredentialStores uses of the host: its environment (the user's PATH is the agent's model)."""

    def __init__(self, bin_dir: Path) -> None:
        self.env = {"PATH": "/nowhere", "AWS_ACCESS_KEY_ID": "agent-key", "HTTPS_PROXY": "http://proxy:3128"}


def fake_helper(bin_dir: Path, name: str, body: str) -> None:
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory standing in for the user's PATH (agent.as_user.USER_PATH) and for the narrowest
    PATH of docker's callers, which ecr-login is verified with (agent.stores.CALLER_PATH)."""
    folder = tmp_path / "bin"
    folder.mkdir(mode=0o755)
    monkeypatch.setattr(agent.as_user, "USER_PATH", f"{folder}:/usr/bin:/bin")
    monkeypatch.setattr(agent.stores, "CALLER_PATH", f"{folder}:/bin")
    monkeypatch.setattr(agent.stores, "UNIT_PATH", f"{folder}:/bin")
    monkeypatch.setattr(agent.user_env, "ETC_ENVIRONMENT", str(tmp_path / "environment"))
    return folder


def test_store_answers_are_read_as_docker_reads_them(account: Any, bin_dir: Path) -> None:
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
    stores = CredentialStores(StoreHost(bin_dir), account)
    known = stores.credential("fake", "known")
    assert (known.username, known.password, known.identity_token) == ("AWS", "s3cret", "")
    assert stores.credential("fake", "token").identity_token == "id-token"
    assert stores.credential("fake", "other") is None
    assert "s3cret" not in repr(known)


def test_a_store_that_fails_or_is_missing_is_unusable(account: Any, bin_dir: Path) -> None:
    fake_helper(bin_dir, "locked", "echo 'gpg: decryption failed: No secret key'; exit 1\n")
    stores = CredentialStores(StoreHost(bin_dir), account)
    with pytest.raises(AgentError, match="No secret key") as raised:
        stores.credential("locked", "known")
    assert raised.value.reason == "helper_unavailable"
    with pytest.raises(AgentError, match="No such file or directory") as raised:
        stores.credential("missing", "known")
    assert raised.value.reason == "helper_unavailable"
    with pytest.raises(AgentError, match="not a helper name"):
        stores.credential("../../bin/sh", "known")


@pytest.mark.parametrize(
    ("mode", "why"),
    [(0o700, "Permission denied"), (0o755, None)],
)
def test_a_helper_is_judged_as_the_user_would_run_it(
    account: Any, bin_dir: Path, mode: int, why: str | None
) -> None:
    """docker runs docker-credential-<name> as the user (exec.Command, the user's PATH): a binary only
    root may execute is unavailable to the user, though root runs it fine."""
    fake_helper(bin_dir, "rootonly", 'echo \'{"Username":"AWS","Secret":"t"}\'\n')
    (bin_dir / "docker-credential-rootonly").chmod(mode)
    stores = CredentialStores(StoreHost(bin_dir), account)
    if why is None:
        assert stores.credential("rootonly", REGISTRY).password == "t"
        return
    with pytest.raises(AgentError, match=why) as raised:
        stores.credential("rootonly", REGISTRY)
    assert raised.value.reason == "helper_unavailable"


def test_a_helper_that_runs_but_cannot_get_a_token_fails_verification(account: Any, bin_dir: Path) -> None:
    fake_helper(bin_dir, "ecr-login", "echo 'credentials not found in native keychain'; exit 1\n")
    stores = CredentialStores(StoreHost(bin_dir), account)
    with pytest.raises(AgentError, match="credentials not found") as raised:
        stores.verify(REGISTRY)
    assert raised.value.reason == "helper_verify_failed"


def test_a_helper_only_on_the_users_login_path_fails_verification(
    account: Any, bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker looks the helper up on its caller's PATH (docker-credential-helpers client.go: exec of
    docker-credential-<name>): a binary in /usr/local/bin is on a login shell's PATH, not on cron's
    /usr/bin:/bin, and root's cron pulls then fail with "no basic auth credentials" (helper #870)."""
    monkeypatch.setattr(agent.stores, "CALLER_PATH", str(tmp_path / "empty"))  # /bin is /usr/bin here
    fake_helper(bin_dir, "ecr-login", "echo '{}'\n")
    with pytest.raises(AgentError, match="No such file or directory") as raised:
        CredentialStores(StoreHost(bin_dir), account).verify(REGISTRY)
    assert raised.value.reason == "helper_unavailable"
    assert f"PATH {tmp_path / 'empty'}" in raised.value.message, "it names the PATH it was judged with"


def test_a_helper_runs_with_the_users_environment_not_the_agents_credentials(
    account: Any, bin_dir: Path, tmp_path: Path
) -> None:
    """Under DHMC the agent's AWS credentials are the DHMC role (amazon-ssm-agent #610), not what the
    user's own docker gets: the user's helper runs without them, without the SSM agent's proxy (set
    in its unit: cron jobs and login shells do not have it; acceptance finding 3), with the user's
    HOME, the narrowest PATH docker's callers give it (cron's), and with the helper's cache and log
    off."""
    seen = tmp_path / "seen"
    seen.mkdir(mode=0o777)
    seen.chmod(0o777)
    fake_helper(bin_dir, "ecr-login", f"[ \"$1\" = get ] && env > {seen}/env\necho '{{}}'\n")
    CredentialStores(StoreHost(bin_dir), account).verify(REGISTRY)
    env = dict(line.split("=", 1) for line in (seen / "env").read_text().splitlines() if "=" in line)
    assert "AWS_ACCESS_KEY_ID" not in env
    assert "HTTPS_PROXY" not in env
    assert (env["HOME"], env["USER"], env["PATH"]) == (account.home, "nobody", agent.stores.CALLER_PATH)
    assert (env["AWS_ECR_DISABLE_CACHE"], env["AWS_ECR_CACHE_DIR"]) == ("true", "/dev/null")


def test_a_helper_is_proven_with_what_the_users_sessions_set_for_it(
    account: Any, bin_dir: Path, tmp_path: Path
) -> None:
    """The AWS SDK settings and proxies a caller's session has are the helper's when that caller runs
    it: /etc/environment (pam_env: logins, su, cron; linux-pam modules/pam_env) sets them here, so the
    proof runs with them (acceptance findings 2 and 3), and a failure names the variable."""
    (tmp_path / "environment").write_text("AWS_PROFILE=sso-dev\nhttps_proxy=http://site-proxy:3128\nLANG=C\n")
    seen = tmp_path / "seen"
    seen.mkdir(mode=0o777)
    seen.chmod(0o777)
    fake_helper(bin_dir, "ecr-login", f"[ \"$1\" = get ] && env > {seen}/env\necho '{{}}'\n")
    CredentialStores(StoreHost(bin_dir), account).verify(REGISTRY)
    env = dict(line.split("=", 1) for line in (seen / "env").read_text().splitlines() if "=" in line)
    assert (env["AWS_PROFILE"], env["https_proxy"]) == ("sso-dev", "http://site-proxy:3128")
    assert "HTTPS_PROXY" not in env and "LANG" not in env

    fake_helper(bin_dir, "ecr-login", "echo 'no credentials'; exit 1\n")
    with pytest.raises(AgentError) as raised:
        CredentialStores(StoreHost(bin_dir), account).verify(REGISTRY)
    assert raised.value.reason == "helper_verify_failed"
    assert "AWS_PROFILE=sso-dev" in raised.value.message and "site-proxy" not in raised.value.message


def test_a_helper_that_hangs_is_given_up_on_and_not_called_again(
    account: Any, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent.stores, "HELPER_TIMEOUT", 1)
    fake_helper(bin_dir, "slow", "sleep 30\n")
    stores = CredentialStores(StoreHost(bin_dir), account)
    with pytest.raises(AgentError, match="no answer in time"):
        stores.credential("slow", "a")
    with pytest.raises(AgentError, match="no answer in time"):
        stores.credential("slow", "b")  # at once: the same helper is not waited for twice


def test_store_runs_as_the_user_and_gets_the_secret_on_stdin_only(
    account: Any, bin_dir: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir(mode=0o777)
    seen.chmod(0o777)
    fake_helper(bin_dir, "rec", f'echo "$(id -u) $*" > {seen}/argv\ncat > {seen}/stdin\n')
    stores = CredentialStores(StoreHost(bin_dir), account)
    stores.store("rec", REGISTRY, "AWS", "s3cret")
    assert (seen / "argv").read_text() == f"{NOBODY} store\n"
    assert json.loads((seen / "stdin").read_text()) == {
        "ServerURL": REGISTRY,
        "Username": "AWS",
        "Secret": "s3cret",
    }
    assert stat.S_IMODE((seen / "stdin").stat().st_mode) & 0o077 == 0, "written under the agent's umask 077"


# amazon-ecr-credential-helper ecr-login/api/client.go at each release that changed which names it
# accepts: `ecrPattern`, and the ECR Public names (ecrPublicName; ecrPublicDualStackName from v0.12.0).
HELPER_PATTERNS = {
    (0, 6, 0): (
        r"(^[a-zA-Z0-9][a-zA-Z0-9-_]*)\.dkr\.ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.amazonaws\.com(\.cn)?$",
        ("public.ecr.aws",),
    ),
    (0, 8, 0): (
        r"^(\d{12})\.dkr\.ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.com(\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov)$",
        ("public.ecr.aws",),
    ),
    (0, 9, 0): (
        r"^(\d{12})\.dkr\.ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.com(\.cn)?|sc2s\.sgov\.gov"
        r"|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$",
        ("public.ecr.aws",),
    ),
    (0, 10, 0): (
        r"^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.com(?:\.cn)?"
        r"|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$",
        ("public.ecr.aws",),
    ),
    (0, 11, 0): (
        r"^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)"
        r"|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$",
        ("public.ecr.aws",),
    ),
    (0, 12, 0): (
        r"^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)"
        r"|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$",
        ("public.ecr.aws", "ecr-public.aws.com"),
    ),
}
NAMES = [
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
    "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
    "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
    "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
    "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
    "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
    "123456789012.dkr-ecr.eu-west-1.on.aws",
    "123456789012.dkr-ecr-fips.us-east-2.on.aws",
    "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
    "public.ecr.aws",
    "ecr-public.aws.com",
]


@pytest.mark.parametrize("registry", NAMES)
def test_the_helper_version_a_registry_needs_is_the_first_whose_pattern_accepts_it(registry: str) -> None:
    """agent.stores.helper_needs against the helper's own patterns, release by release (Go's RE2 syntax
    here reads the same in Python's re)."""
    accepted_from = None
    for version in sorted(HELPER_PATTERNS):
        pattern, public = HELPER_PATTERNS[version]
        accepts = registry in public or re.search(pattern, registry) is not None
        if accepts and accepted_from is None:
            accepted_from = version
        assert accepts == (accepted_from is not None), f"{registry}: accepted, then not, at {version}"
    needed = agent.stores.helper_needs(registry)
    assert accepted_from is not None
    assert needed <= accepted_from
    assert all(not (needed <= version < accepted_from) for version in HELPER_PATTERNS), (
        needed,
        accepted_from,
    )
    assert agent.stores.helper_too_old((0, 6, 0), registry) is None or accepted_from > (0, 6, 0)
    too_old = agent.stores.helper_too_old((0, 6, 0), registry)
    assert (too_old is not None) == (accepted_from > (0, 6, 0))
