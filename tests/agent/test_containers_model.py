"""containers/image's reading of one credential file (agent/containers_model.py), judged by the real client.

Every case is put where skopeo 1.9.3 (containers/image 5.23.1) reads first, $XDG_RUNTIME_DIR/containers/
auth.json, and `skopeo login --get-login` says what it makes of it (tests/agent/real_containers.py): an
error ends the lookup (pkg/docker/config/config.go getCredentialsWithHomeDir returns it), "not logged
into" means no credentials, else the user name it found. The agent must agree on each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.containers_model import containers_view
from agent.go_json import ConfigRejected
from tests.agent.real_containers import RealContainers, real_containers_in
from tests.agent.user_files import REGISTRY, b64

RUNTIME_FILE = "run/containers/auth.json"


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> RealContainers:
    return real_containers_in(tmp_path_factory.mktemp("containers-auth"))


def entry(user: str) -> dict[str, str]:
    return {"auth": b64(f"{user}:secret")}


CASES = {
    # readJSONFile: json.Unmarshal of the whole file
    "empty file": b"",
    "whitespace only": b"  \n",
    "null": b"null",
    "empty object": b"{}",
    "trailing newline": json.dumps({"auths": {REGISTRY: entry("alice")}}).encode() + b"\n",
    "data after the value": json.dumps({"auths": {REGISTRY: entry("alice")}}).encode() + b" {}",
    "an array": b"[]",
    "auths an array": b'{"auths": []}',
    "auth a number": b'{"auths": {"%s": {"auth": 5}}}' % REGISTRY.encode(),
    "credsStore ignored": json.dumps({"auths": {REGISTRY: {}}, "credsStore": "nosuch"}).encode(),
    "docker settings ignored": json.dumps(
        {"auths": {REGISTRY: entry("alice")}, "features": {"buildkit": True}, "proxies": [1]}
    ).encode(),
    "keys in other cases": json.dumps({"AUTHS": {REGISTRY: entry("alice")}}).encode(),
    # findCredentialsInFile: exact key, then namespaced keys, then normalized keys
    "https key": json.dumps({"auths": {f"https://{REGISTRY}": entry("https")}}).encode(),
    "https key with path": json.dumps({"auths": {f"https://{REGISTRY}/v1/": entry("v1")}}).encode(),
    "schemeless key with path": json.dumps({"auths": {f"{REGISTRY}/v2/": entry("v2")}}).encode(),
    "exact key wins": json.dumps(
        {"auths": {f"https://{REGISTRY}": entry("https"), REGISTRY: entry("exact")}}
    ).encode(),
    "exact empty entry": json.dumps(
        {"auths": {REGISTRY: {}, f"https://{REGISTRY}": entry("https")}}
    ).encode(),
    # decodeDockerAuth
    "auth not base64": b'{"auths": {"%s": {"auth": "not base64!"}}}' % REGISTRY.encode(),
    "auth without colon": json.dumps({"auths": {REGISTRY: {"auth": b64("nocolon")}}}).encode(),
    "auth with CRLF": json.dumps(
        {"auths": {REGISTRY: {"auth": b64("crlf:pw")[:4] + "\r\n" + b64("crlf:pw")[4:]}}}
    ).encode(),
}


def agent_verdict(raw: bytes) -> str:
    """What the agent's model says a lookup of REGISTRY gives: "error", "none" or the user name."""
    try:
        view = containers_view(raw)
        key = view.host_key(REGISTRY)
        if key is None:
            return "none"
        credential = view.credential(key)
    except ConfigRejected:
        return "error"
    return credential.username if credential.is_secret else "none"


def skopeo_verdict(skopeo: RealContainers, raw: bytes) -> str:
    skopeo.reset({RUNTIME_FILE: raw})
    stdout, stderr = skopeo.get_login(REGISTRY)
    if stdout:
        return stdout
    return "none" if "not logged into" in stderr else "error"


@pytest.mark.parametrize("name", list(CASES))
def test_the_model_reads_a_file_as_containers_image_does(skopeo: RealContainers, name: str) -> None:
    raw = CASES[name]
    assert agent_verdict(raw) == skopeo_verdict(skopeo, raw)


def test_an_empty_file_ends_the_lookup_though_a_later_file_has_credentials(skopeo: RealContainers) -> None:
    """config.go getCredentialsWithHomeDir: `if err != nil { return ... err }` before looking further:
    an empty auth.json in the runtime directory hides a good ~/.docker/config.json."""
    good = json.dumps({"auths": {REGISTRY: entry("docker")}}).encode()
    skopeo.reset({RUNTIME_FILE: b"", "home/.docker/config.json": good})
    assert "unexpected end of JSON input" in skopeo.get_login(REGISTRY)[1]
    with pytest.raises(ConfigRejected, match="empty"):
        containers_view(b"")


def test_the_legacy_dockercfg_is_a_map_of_hosts(skopeo: RealContainers) -> None:
    """~/.dockercfg (legacyFormat): the top level is the auths map, keys stripped of scheme and path."""
    legacy = json.dumps({f"https://{REGISTRY}/v1/": entry("legacy")}).encode()
    skopeo.reset({"home/.dockercfg": legacy})
    assert skopeo.get_login(REGISTRY)[0] == "legacy"
    view = containers_view(legacy, legacy=True)
    assert view.credential(view.host_key(REGISTRY)).username == "legacy"
    assert view.helper_for(REGISTRY) is None


def test_namespaced_keys_are_read_for_images_below_them() -> None:
    """authKeysForKey: host/namespace/repo, host/namespace, host: a key below the registry answers first
    for the images under it (an extension of docker's format)."""
    view = containers_view(
        json.dumps({"auths": {f"{REGISTRY}/team": entry("team"), REGISTRY: entry("all")}}).encode()
    )
    assert view.keys_for(REGISTRY) == [f"{REGISTRY}/team", REGISTRY]
    assert view.scoped_keys("other.example") == []


def test_credhelpers_come_first_in_a_file(skopeo: RealContainers, tmp_path: Path) -> None:
    """findCredentialsInFile: "First try cred helpers": a helper that cannot run ends the lookup with an
    error, though the file's auths hold a credential."""
    raw = json.dumps({"auths": {REGISTRY: entry("file")}, "credHelpers": {REGISTRY: "nosuch"}}).encode()
    skopeo.reset({RUNTIME_FILE: raw})
    assert "docker-credential-nosuch" in skopeo.get_login(REGISTRY)[1]
    assert containers_view(raw).helper_for(REGISTRY) == "nosuch"
