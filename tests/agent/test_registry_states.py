"""Each user x registry pair's state (agent/registry_states.py), decided where docker would find its
credential: a docker host's one read order, its config.json held in memory."""

from __future__ import annotations

import json
from typing import Any

from agent.config_file import AuthFile
from agent.credential_files import UserCredentials
from agent.docker_model import Credential, auth_digest
from agent.host_clients import Client
from agent.outcomes import AgentError
from agent.registry_states import combined_state, registry_states
from agent.user_env import Environment
from agent.users import Account
from tests.agent.user_files import REGISTRY, b64

ACCOUNT = Account("nobody", 65534, 65534, "/nonexistent")


class DockerHost:
    clients = (Client("docker", "/usr/local/bin/docker", "28.2.2"),)


def record_for(auth: str, expires_at: str) -> dict[str, str]:
    return {"auth_sha256": auth_digest(auth), "expires_at": expires_at}


class FakeStores:
    """Credential helpers as a user's docker would find them: which run, and what each holds."""

    def __init__(self, usable: set[str], held: dict[tuple[str, str], Any]) -> None:
        self.usable_names, self.held = usable, held

    def credential(self, name: str, server: str) -> Any:
        if name not in self.usable_names:
            raise AgentError("helper_unavailable", f"docker-credential-{name} is not installed")
        return self.held.get((name, server))

    def verify(self, server: str) -> None:
        self.credential("ecr-login", server)


def state(config: dict[str, Any], record: Any = None, stores: Any = None) -> Any:
    """The registry's entry, with the problem it carries (if any) as its reason code."""
    creds = UserCredentials(DockerHost(), ACCOUNT, [Environment("login", {})])
    path = f"{ACCOUNT.home}/.docker/config.json"
    creds.files[path] = AuthFile(path, json.dumps(config).encode(), 0o600)
    answered = registry_states(creds, REGISTRY, record, stores or FakeStores({"ecr-login"}, {}))
    result, problems = combined_state(ACCOUNT, answered)
    if problems:
        result["problem"] = problems[0].reason
    return result


def test_registry_states() -> None:
    auth = b64("AWS:token")
    future = "2999-01-01T00:00:00Z"
    logged_in = {"auths": {REGISTRY: {"auth": auth}}}
    assert state({}) == {"state": "none"}
    assert state({"credHelpers": {REGISTRY: "ecr-login"}}) == {"state": "helper"}
    assert state({"credsStore": "ecr-login"}) == {"state": "helper"}
    stale = {"auths": {f"https://{REGISTRY}": {"auth": auth}}, "credHelpers": {REGISTRY: "ecr-login"}}
    assert state(stale) == {"state": "stale_auth", "problem": "stale_credentials"}
    assert state(logged_in) == {"state": "logged_in"}
    assert state(logged_in, record_for(auth, future)) == {
        "state": "logged_in",
        "expires_at": future,
    }
    # An expiry recorded for another login (the user logged in by hand since) is not reported.
    assert state(logged_in, record_for(b64("AWS:older"), future)) == {"state": "logged_in"}
    past = state(logged_in, record_for(auth, "2015-01-01T00:00:00Z"))
    assert past == {"state": "logged_in", "expires_at": "2015-01-01T00:00:00Z", "expired": True}


def test_an_empty_entry_is_not_a_login_without_a_store() -> None:
    """file.go: `{}` decodes to no user and no password; docker pulls anonymously."""
    assert state({"auths": {REGISTRY: {}}}) == {"state": "none"}


def test_a_credential_store_decides_the_state() -> None:
    """native_store.go Get: with a credsStore the file entry is `{}` and the store has the secret."""
    auth = b64("AWS:token")
    config = {"auths": {REGISTRY: {}}, "credsStore": "pass"}
    held = {("pass", REGISTRY): Credential("AWS", "token")}
    stores = FakeStores({"pass", "ecr-login"}, held)
    future = "2999-01-01T00:00:00Z"
    assert state(config, record_for(auth, future), stores) == {
        "state": "logged_in",
        "expires_at": future,
    }
    assert state(config, None, FakeStores({"pass"}, {})) == {"state": "none"}


def test_a_token_left_in_the_store_beside_the_helper_is_stale() -> None:
    """docker logout (logout.go) erases host, http://host and https://host from the store docker used;
    whatever of those a store still holds once credHelpers names ecr-login is a stale token."""
    config = {"credsStore": "pass", "credHelpers": {REGISTRY: "ecr-login"}}
    held = {("pass", f"https://{REGISTRY}"): Credential("AWS", "old")}
    assert state(config, None, FakeStores({"pass", "ecr-login"}, held)) == {
        "state": "stale_auth",
        "problem": "stale_credentials",
    }
    assert state(config, None, FakeStores({"pass", "ecr-login"}, {})) == {"state": "helper"}
    locked = FakeStores({"ecr-login"}, held)  # a store that cannot run hands nothing out
    assert state(config, None, locked) == {"state": "helper"}


def test_a_helper_that_cannot_run_is_never_health() -> None:
    nothing = FakeStores(set(), {})
    assert state({"credHelpers": {REGISTRY: "ecr-login"}}, None, nothing) == {
        "state": "helper_unavailable",
        "helper": "ecr-login",
        "problem": "helper_unavailable",
    }
    assert state({"credsStore": "pass"}, None, nothing) == {
        "state": "helper_unavailable",
        "helper": "pass",
        "problem": "helper_unavailable",
    }
