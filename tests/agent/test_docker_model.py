"""The agent's model of docker's config loader, table by table, checked against the real docker CLI.

What docker does with a config file is the reference: docker/cli cli/config/configfile/file.go
(`ConfigFile`, `LoadFromReader`, `decodeAuth`), cli/config/config.go (`load`: "WARNING: Error parsing
config file"), cli/config/credentials/file_store.go (`Get`, `ConvertToHostname`). Where this
machine's docker CLI is the version a table is for, every row is also put to it: `docker context ls`
loads the config and touches no network, so whether it warns is docker's own verdict; `docker login
<host>` without a password shows which auths key docker reads for a host ("[Username: ...]").
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import require

DOCKER = "/usr/local/bin/docker"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def installed_docker_version() -> tuple[int, int] | None:
    if not os.access(DOCKER, os.X_OK):
        return None
    done = subprocess.run([DOCKER, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\d+)\.(\d+)", done.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


class RealDocker:
    """The docker CLI with a throwaway DOCKER_CONFIG, without network (a private net namespace as root)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        isolate = os.geteuid() == 0 and shutil.which("unshare") is not None
        self.prefix = ["unshare", "--net"] if isolate else []

    def run(self, config: bytes, *args: str) -> subprocess.CompletedProcess[str]:
        (self.folder / "config.json").write_bytes(config)
        return subprocess.run(
            [*self.prefix, DOCKER, *args],
            env={"DOCKER_CONFIG": str(self.folder), "PATH": "/usr/bin:/bin", "HOME": str(self.folder)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def loads(self, config: bytes) -> bool:
        """docker's verdict: it loads the file unless it prints its parse warning."""
        done = self.run(config, "context", "ls")
        return "WARNING: Error" not in done.stderr

    def username_for(self, config: bytes, host: str) -> str | None:
        """The user name docker finds for host in the file store (file_store.go Get), or None."""
        done = self.run(config, "login", host)
        match = re.search(r"\[Username: ([^\]]*)\]", done.stderr)
        return match.group(1) if match else None


@pytest.fixture(scope="module")
def real_docker(tmp_path_factory: pytest.TempPathFactory) -> RealDocker:
    version = installed_docker_version()
    require(version is not None, f"docker CLI at {DOCKER}")
    return RealDocker(tmp_path_factory.mktemp("docker-config"))


def model_loads(agent: ModuleType, version: tuple[int, int] | None, config: bytes) -> bool:
    try:
        agent.DockerModel(version).load(config)
    except agent.ConfigRejected:
        return False
    return True


# ---------------------------------------------------------------- what docker 28 loads and rejects

AUTH = b64("user:pw")
# (config, docker loads it) for docker 27.0 and later (the `features` field exists since 27.0).
SHAPES_SINCE_27: list[tuple[bytes, bool]] = [
    # --- the issue's case and its kind: a wrong JSON type for any typed field
    (
        b'{"auths":{"ghcr.io":{"auth":"%s"}},"credHelpers":{"gcr.io":"gcloud"},"features":{"buildkit":true}}'
        % AUTH.encode(),
        False,
    ),
    (b'{"features":{"buildkit":"true"}}', True),
    (b'{"auths":[]}', False),
    (b'{"auths":{"r":"x"}}', False),
    (b'{"auths":{"r":{"auth":5}}}', False),
    (b'{"auths":{"r":{"email":5}}}', False),
    (b'{"auths":{"r":{"identitytoken":false}}}', False),
    (b'{"credHelpers":"ecr-login"}', False),
    (b'{"credHelpers":{"r":5}}', False),
    (b'{"credsStore":5}', False),
    (b'{"credsStore":{}}', False),
    (b'{"psFormat":true}', False),
    (b'{"HttpHeaders":{"a":1}}', False),
    (b'{"pruneFilters":"a"}', False),
    (b'{"pruneFilters":[1]}', False),
    (b'{"pruneFilters":["a",null]}', True),
    (b'{"proxies":{"default":{"allProxy":5}}}', False),
    (b'{"proxies":{"default":"x"}}', False),
    (b'{"plugins":{"a":"b"}}', False),
    (b'{"plugins":{"a":{"b":"c"}}}', True),
    (b'{"aliases":[]}', False),
    (b'{"currentContext":{}}', False),
    (b'{"cliPluginsExtraDirs":{}}', False),
    (b'{"experimental":5}', False),
    # --- fields docker 28 no longer has are unknown keys: ignored whatever their type
    (b'{"stackOrchestrator":5}', True),
    (b'{"kubernetes":5}', True),
    (b'{"myTool":{"nested":[1,2,{"x":null}]},"n":1e999}', True),
    # --- Go's key matching: case-insensitive, U+017F and U+212A fold to s and k
    (b'{"AUTHS":{"r":{"AUTH":"%s"}}}' % AUTH.encode(), True),
    (b'{"auths":{"r":{"AUTH":"dTp"}}}', False),
    ('{"auth\u017f":{"r":5}}'.encode(), False),
    (b'{"auth\\u017f":{"r":5}}', False),
    ('{"detach\u212aeys":5}'.encode(), False),
    (b'{"auths":null,"Auths":{"r":{"auth":"!!"}}}', False),
    # --- null is fine anywhere
    (b"null", True),
    (b'{"auths":{"r":null},"credHelpers":null,"credsStore":null,"features":{"a":null}}', True),
    # --- auth must be base64 (padded; CR/LF skipped) of user:password with a user
    (b'{"auths":{"r":{"auth":"%s"}}}' % AUTH.encode(), True),
    (b'{"auths":{"r":{"auth":""}}}', True),
    (b'{"auths":{"r":{"auth":"%s"}}}' % b64("user:").encode(), True),
    (b'{"auths":{"r":{"auth":"%s"}}}' % b64("user").encode(), False),
    (b'{"auths":{"r":{"auth":"%s"}}}' % b64(":pw").encode(), False),
    (b'{"auths":{"r":{"auth":"dTp"}}}', False),
    (b'{"auths":{"r":{"auth":"dTpw "}}}', False),
    (b'{"auths":{"r":{"auth":"dTp\\nw"}}}', True),
    (b'{"auths":{"r":{"auth":"dTpw\\r\\n"}}}', True),
    (b'{"auths":{"r":{"auth":"dTpw===="}}}', False),
    (b'{"auths":{"r":{"auth":"!!"}}}', False),
    (b'{"auths":{"r":{"auth":"\\n"}}}', False),
    (b'{"auths":{"r":{"username":"u","password":"p"}}}', True),
    # --- the document as Go's json.Decoder reads it: the first value only; empty is fine
    (b"", True),
    (b" \n\t", True),
    (b'{"auths":{}} trailing garbage', True),
    (b'{"auths":{}}{"x":', True),
    (b'  {"auths":{}}', True),
    (b"\xef\xbb\xbf{}", False),
    (b'{"auths":{', False),
    (b'{"auths":{},}', False),
    (b"{'auths':{}}", False),
    (b'{"x":NaN}', False),
    (b'{"x":-Infinity}', False),
    (b'{"x":01}', False),
    (b"[1]", False),
    (b'"text"', False),
    (b"5", False),
    (b"true", False),
    (b"\xff{}", False),
    (b'{"psFormat":"\xff"}', True),
    (b'{"psFormat":"a\x01b"}', False),
    # --- repeated keys: Go merges repeated maps and takes the last string
    (b'{"auths":{"r":{"auth":"!!"}},"auths":{"s":{}}}', False),
    (b'{"credsStore":5,"credsStore":"pass"}', False),
]


@pytest.mark.parametrize(("config", "loads"), SHAPES_SINCE_27)
def test_model_decides_like_docker_28(agent: ModuleType, config: bytes, loads: bool) -> None:
    assert model_loads(agent, (28, 2), config) is loads


def test_every_shape_is_what_the_real_docker_cli_does(agent: ModuleType, real_docker: RealDocker) -> None:
    version = installed_docker_version()
    require(version is not None and version >= (27, 0), "a docker CLI 27.0 or later (the table's versions)")
    verdicts = [(config, real_docker.loads(config)) for config, _ in SHAPES_SINCE_27]
    assert verdicts == SHAPES_SINCE_27
    assert [(config, model_loads(agent, version, config)) for config, _ in SHAPES_SINCE_27] == verdicts


# ---------------------------------------------------------------- docker versions differ


@pytest.mark.parametrize(
    ("version", "config", "loads"),
    [
        # `features` is typed since 27.0 (file.go history); docker 25 (Amazon Linux 2023) ignores it.
        ((25, 0), b'{"features":{"buildkit":true}}', True),
        ((26, 1), b'{"features":{"buildkit":true}}', True),
        ((27, 0), b'{"features":{"buildkit":true}}', False),
        # `experimental` and AuthConfig `email` are gone in 29.0.
        ((28, 5), b'{"experimental":5}', False),
        ((29, 0), b'{"experimental":5}', True),
        ((29, 0), b'{"auths":{"r":{"email":5}}}', True),
        # `stackOrchestrator` until 23.x, `kubernetes` until 20.10 (with its value checked).
        ((23, 0), b'{"stackOrchestrator":5}', False),
        ((24, 0), b'{"stackOrchestrator":5}', True),
        ((20, 10), b'{"kubernetes":{"allNamespaces":"maybe"}}', False),
        ((20, 10), b'{"kubernetes":{"allNamespaces":"enabled"}}', True),
        ((23, 0), b'{"kubernetes":{"allNamespaces":"maybe"}}', True),
        # ProxyConfig `allProxy` since 23.0; currentContext, plugins, aliases since 19.03.
        ((20, 10), b'{"proxies":{"default":{"allProxy":5}}}', True),
        ((23, 0), b'{"proxies":{"default":{"allProxy":5}}}', False),
        ((18, 9), b'{"aliases":5}', True),
        ((19, 3), b'{"aliases":5}', False),
        # An empty file is an error before 20.10 (io.EOF not yet ignored).
        ((19, 3), b"", False),
        ((20, 10), b"", True),
        # `null` made docker before 23.0 crash (Decode(&configFile) set the receiver to nil).
        ((20, 10), b"null", False),
        ((23, 0), b"null", True),
        # An empty user name in `auth` is refused since 23.0 (strings.Cut, userName == "").
        ((20, 10), b'{"auths":{"r":{"auth":"%s"}}}' % b64(":pw").encode(), True),
        ((23, 0), b'{"auths":{"r":{"auth":"%s"}}}' % b64(":pw").encode(), False),
        # An unknown docker version: every field any version typed.
        (None, b'{"features":{"buildkit":true}}', False),
        (None, b'{"stackOrchestrator":5}', False),
        (None, b'{"experimental":5}', False),
    ],
)
def test_model_follows_the_docker_version(
    agent: ModuleType, version: tuple[int, int] | None, config: bytes, loads: bool
) -> None:
    assert model_loads(agent, version, config) is loads


def test_docker_before_20_10_reads_an_empty_auth_as_no_user_at_all(agent: ModuleType) -> None:
    """file.go at v19.03: decodeAuth(ac.Auth) ran for every entry, so username/password fields were
    overwritten by the empty decode; since 20.10 only a non-empty auth is decoded."""
    config = b'{"auths":{"r":{"username":"u","password":"p"}}}'
    _, old = agent.DockerModel((19, 3)).load(config)
    _, new = agent.DockerModel((20, 10)).load(config)
    assert not old.file_credential("r").is_secret
    assert (new.file_credential("r").username, new.file_credential("r").password) == ("u", "p")


def test_docker_version_is_read_from_its_version_line(agent: ModuleType) -> None:
    assert agent.docker_version_tuple("28.2.2") == (28, 2)
    assert agent.docker_version_tuple("20.10.25") == (20, 10)
    assert agent.docker_version_tuple("17.06.0-ce") == (17, 6)
    assert agent.docker_version_tuple(None) is None
    assert agent.docker_version_tuple("unknown") is None


# ---------------------------------------------------------------- where docker looks for a registry


REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
HOST = "reg.test"
# (auths key, whether docker's file store reads it as HOST)
KEYS: list[tuple[str, bool]] = [
    (HOST, True),
    (f"https://{HOST}/v1/", True),
    (f"{HOST}/v1/", True),
    (f"http://{HOST}", True),
    (f"HTTPS://{HOST}", True),
    (f"https://user@{HOST}:/x", True),
    (f"https://{HOST}?%zz", True),
    (f"{HOST}/x://y", True),
    (f"https://{HOST}:443", False),
    (f"https://{HOST}/%zz", False),
    (f"https://{HOST}#%zz", False),
    (f"1https://{HOST}", False),
    (f"https:///{HOST}", False),
    (f"https://u%zz@{HOST}", False),
    (f"{HOST}:5000", False),
    (f"other.{HOST}", False),
    (HOST.upper(), False),
]


@pytest.mark.parametrize(("key", "matches"), KEYS)
def test_auths_keys_docker_reads_as_a_host(agent: ModuleType, key: str, matches: bool) -> None:
    """file_store.go Get: the exact key, else any key whose ConvertToHostname is the host."""
    config = json.dumps({"auths": {key: {"auth": b64("legacy:pw")}}}).encode()
    _, view = agent.DockerModel((28, 2)).load(config)
    assert (view.keys_for(HOST) == [key]) is matches


def test_auths_keys_match_what_the_real_docker_cli_reads(real_docker: RealDocker) -> None:
    verdicts = []
    for key, _ in KEYS:
        config = json.dumps({"auths": {key: {"auth": b64("legacy:pw")}}}).encode()
        verdicts.append((key, real_docker.username_for(config, HOST) == "legacy"))
    assert verdicts == KEYS


def test_the_exact_key_wins_over_a_legacy_one(agent: ModuleType, real_docker: RealDocker) -> None:
    config = json.dumps(
        {"auths": {f"https://{HOST}/v1/": {"auth": b64("legacy:pw")}, HOST: {"auth": b64("exact:pw")}}}
    ).encode()
    _, view = agent.DockerModel((28, 2)).load(config)
    assert view.file_credential(HOST).username == "exact"
    assert real_docker.username_for(config, HOST) == "exact"


@pytest.mark.parametrize(
    ("config", "store"),
    [
        ({}, ""),
        ({"credsStore": "pass"}, "pass"),
        ({"credsStore": "pass", "credHelpers": {REGISTRY: "ecr-login"}}, "ecr-login"),
        # An empty helper name for the registry means the file, whatever credsStore says.
        ({"credsStore": "pass", "credHelpers": {REGISTRY: ""}}, ""),
        # credHelpers keys are matched exactly: no scheme stripping, no case folding.
        ({"credsStore": "pass", "credHelpers": {f"https://{REGISTRY}": "ecr-login"}}, "pass"),
        ({"credHelpers": {REGISTRY.upper(): "ecr-login"}}, ""),
        ({"CREDHELPERS": {REGISTRY: "ecr-login"}}, "ecr-login"),
    ],
)
def test_where_docker_keeps_a_registry_credential(
    agent: ModuleType, config: dict[str, Any], store: str
) -> None:
    """file.go getConfiguredCredentialStore: credHelpers[host] if present, else credsStore."""
    _, view = agent.DockerModel((28, 2)).load(json.dumps(config).encode())
    assert view.store_for(REGISTRY) == store


# ---------------------------------------------------------------- the agent's edits keep the rest


def edited(agent: ModuleType, config: bytes, edit: Any) -> tuple[bytes, Any]:
    auth_file = agent.DockerAuthFile(agent.DockerModel((28, 2)), config, 0o600)
    edit(auth_file)
    content = auth_file.render()
    _, view = agent.DockerModel((28, 2)).load(content)
    return content, view


def test_a_login_replaces_only_its_entry_and_keeps_unknown_content(agent: ModuleType) -> None:
    config = (
        b'{"stackOrchestrator": "swarm", "auths": {"ghcr.io": {"auth": "%s"}, "%s": {"auth": "%s", '
        b'"email": "x@y"}}, "myTool": {"n": 1.50, "big": 1e999}, "psFormat": "caf\\u00e9"}'
        % (AUTH.encode(), REGISTRY.encode(), b64("AWS:old").encode())
    )
    content, view = edited(agent, config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    data = json.loads(content)
    assert list(data) == ["stackOrchestrator", "auths", "myTool", "psFormat"], "order and unknown keys kept"
    assert data["auths"] == {"ghcr.io": {"auth": AUTH}, REGISTRY: {"auth": b64("AWS:new")}}
    assert b'"n": 1.50' in content and b'"big": 1e999' in content, "numbers keep their text"
    assert data["psFormat"] == "café"
    assert (view.file_credential(REGISTRY).username, view.file_credential(REGISTRY).password) == (
        "AWS",
        "new",
    )


def test_edits_follow_docker_through_case_variants_and_repeats(agent: ModuleType) -> None:
    """Go decodes `Auths` and a repeated `auths` into the one map; the edit lands where docker reads it."""
    config = b'{"Auths": {"ghcr.io": {"auth": "%s"}}, "auths": {"%s": {"auth": "%s"}}}' % (
        AUTH.encode(),
        REGISTRY.encode(),
        b64("AWS:old").encode(),
    )
    content, view = edited(agent, config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    assert view.file_credential(REGISTRY).password == "new"
    assert view.file_credential("ghcr.io").password == "pw"
    assert content.count(b"AWS:") == 0 and b64("AWS:old").encode() not in content


def test_a_null_map_is_replaced_not_merged(agent: ModuleType) -> None:
    config = b'{"auths": {"ghcr.io": {"auth": "%s"}}, "auths": null}' % AUTH.encode()
    _, before = agent.DockerModel((28, 2)).load(config)
    assert before.auths == {}, "a later null resets the map in Go"
    _, view = edited(agent, config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    assert list(view.auths) == [REGISTRY]


def test_use_helper_sets_credhelpers_and_drops_every_key_docker_reads_as_the_registry(
    agent: ModuleType,
) -> None:
    config = json.dumps(
        {
            "auths": {
                REGISTRY: {"auth": b64("AWS:x")},
                f"https://{REGISTRY}/v1/": {"auth": b64("AWS:y")},
                f"{REGISTRY}:5000": {"auth": b64("AWS:z")},
                "ghcr.io": {"auth": AUTH},
            },
            "credHelpers": {"gcr.io": "gcloud"},
            "psFormat": "table",
        }
    ).encode()
    content, _ = edited(agent, config, lambda f: f.use_helper(REGISTRY))
    assert json.loads(content) == {
        "auths": {f"{REGISTRY}:5000": {"auth": b64("AWS:z")}, "ghcr.io": {"auth": AUTH}},
        "credHelpers": {"gcr.io": "gcloud", REGISTRY: "ecr-login"},
        "psFormat": "table",
    }
    again = agent.DockerAuthFile(agent.DockerModel((28, 2)), content, 0o600)
    again.use_helper(REGISTRY)
    assert not again.changed, "idempotent"


def test_a_store_login_leaves_docker_s_empty_marker_once(agent: ModuleType) -> None:
    """native_store.go Store: the secret goes to the helper, the file keeps `{}` for the host;
    file_store.go Store skips the save when that entry is already there."""
    content, _ = edited(agent, b'{"credsStore": "pass"}', lambda f: f.mark_in_store(REGISTRY))
    assert json.loads(content) == {"credsStore": "pass", "auths": {REGISTRY: {}}}
    again = agent.DockerAuthFile(agent.DockerModel((28, 2)), content, 0o600)
    again.mark_in_store(REGISTRY)
    assert not again.changed
    stale = json.dumps({"credsStore": "pass", "auths": {REGISTRY: {"auth": b64("AWS:old")}}}).encode()
    content, _ = edited(agent, stale, lambda f: f.mark_in_store(REGISTRY))
    assert json.loads(content)["auths"] == {REGISTRY: {}}, "docker replaces the whole entry"
