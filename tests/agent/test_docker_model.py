"""The agent's model of docker's config loader, table by table, checked against the real docker CLI.

What docker does with a config file is the reference: docker/cli cli/config/configfile/file.go
(`ConfigFile`, `LoadFromReader`, `decodeAuth`), cli/config/config.go (`load`: "WARNING: Error parsing
config file"), cli/config/credentials/file_store.go (`Get`, `ConvertToHostname`). Where this
machine's docker CLI is the version a table is for, every row is also put to it: `docker context ls`
loads the config and touches no network, so whether it warns is docker's own verdict; `docker login
<host>` without a password shows which auths key docker reads for a host ("[Username: ...]").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.docker_model import CONFIG_FILE, NEWEST_DOCKER, DockerModel, docker_version_tuple
from agent.go_json import ConfigRejected
from tests.agent.real_docker import RealDocker, installed_docker_version, real_docker_in
from tests.agent.user_files import b64
from tests.support.prerequisites import require


@pytest.fixture(scope="module")
def real_docker(tmp_path_factory: pytest.TempPathFactory) -> RealDocker:
    return real_docker_in(tmp_path_factory.mktemp("docker-config"))


def model_loads(version: tuple[int, int] | None, config: bytes) -> bool:
    try:
        DockerModel(version).load(config)
    except ConfigRejected:
        return False
    return True


# ---------------------------------------------------------------- what docker 28 loads and rejects

AUTH = b64("user:pw")


def nested(depth: int) -> bytes:
    """A config whose unknown key holds arrays nested so that the whole file is `depth` levels deep."""
    arrays = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"x":' + arrays + b',"auths":{"r":{"auth":"%s"}}}' % AUTH.encode()


# (config, docker loads it) for docker 26.1 and later (the `features` field exists since 26.1).
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
    # --- nesting: Go's decoder allows 10000 levels (encoding/json scanner.go maxNestingDepth), deeper
    # is "exceeded max depth"; Python's own decoder would give up far earlier
    (nested(600), True),
    (nested(2000), True),
    (nested(10000), True),
    (nested(10001), False),
    (b'{"auths":{"r":{"x":' + b"[" * 3000 + b"]" * 3000 + b"}}}", True),
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
def test_model_decides_like_docker_28(config: bytes, loads: bool) -> None:
    assert model_loads((28, 2), config) is loads


def test_every_shape_is_what_the_real_docker_cli_does(real_docker: RealDocker) -> None:
    version = installed_docker_version()
    require(version is not None and version >= (27, 0), "a docker CLI 27.0 or later (the table's versions)")
    verdicts = [(config, real_docker.loads(config)) for config, _ in SHAPES_SINCE_27]
    assert verdicts == SHAPES_SINCE_27
    assert [(config, model_loads(version, config)) for config, _ in SHAPES_SINCE_27] == verdicts


# ---------------------------------------------------------------- docker versions differ


# ---------------------------------------------------------------- which docker types which field
#
# Every field the model types, and the docker versions that type it, from docker/cli's git history
# (`git log -G '<Field> +<type>'` on cli/config/configfile/file.go and cli/config/types/authconfig.go;
# the first release tag containing the commit, `git tag --contains`), checked against the struct at
# every x.y.0 tag. Before 18.06, docker/cli's releases are docker-ce tags (components/cli/...): there
# the struct at each tag is the evidence. docker/cli begins at 17.06: older docker is read as 17.06.
FIELD_HISTORY: list[tuple[str, tuple[int, int] | None, tuple[int, int] | None, str]] = [
    # ConfigFile fields in docker/cli's first release (v17.06.0-ce), still typed today
    *(
        (name, None, None, "v17.06.0-ce and every tag since")
        for name in [
            *("auths", "HttpHeaders", "psFormat", "imagesFormat", "networksFormat", "pluginsFormat"),
            *("volumesFormat", "statsFormat", "detachKeys", "credsStore", "credHelpers"),
            *("serviceInspectFormat", "servicesFormat", "tasksFormat", "secretFormat", "configFormat"),
            *("nodesFormat", "pruneFilters"),
        ]
    ),
    ("proxies", (17, 7), None, "35f1e301b5 Allow Proxy Configuration in config.json: v17.07.0-ce"),
    (
        "experimental",
        (18, 1),
        (29, 0),
        "84fe1a1b5b Add support for experimental Cli configuration: v18.01.0-ce; "
        "a53e83a3d4 remove deprecated ConfigFile.Experimental field: v29.0.0",
    ),
    (
        "orchestrator",
        (18, 1),
        (18, 6),
        "v18.01.0-ce to v18.05.0-ce; 71272dd203 Scope orchestration selection to stack commands only "
        "renamed it stackOrchestrator: v18.06.0-ce",
    ),
    (
        "stackOrchestrator",
        (18, 6),
        (24, 0),
        "71272dd203: v18.06.0-ce; 66a1c3bab9 remove deprecated StackOrchestrator field: v24.0.0",
    ),
    (
        "kubernetes",
        (18, 6),
        (23, 0),
        '1c1300bef6 Add "kubernetes" struct in config file (and fb34ffc327, its allNamespaces check): '
        "v18.06.0-ce; 7b9580df51 Drop support for (archived) Compose-on-Kubernetes: v23.0.0",
    ),
    ("currentContext", (19, 3), None, "b34f340346 Introduce docker context store: v19.03.0"),
    ("cliPluginsExtraDirs", (19, 3), None, "f1f31abbe5 Add support for running a CLI plugin: v19.03.0"),
    ("plugins", (19, 3), None, "4eb642be46 Add a field to the config file for plugin use: v19.03.0"),
    ("aliases", (19, 3), None, "1ed02c40fe cli-plugins: alias an existing allowed command: v19.03.0"),
    ("features", (26, 1), None, "c5016c6d5b cli-plugins: Introduce support for hooks: v26.1.0 (not v26.0.0)"),
    # ProxyConfig (cli/config/configfile/file.go)
    *(
        ("proxies.*." + name, None, None, "v17.07.0-ce, with proxies")
        for name in ("httpProxy", "httpsProxy", "noProxy", "ftpProxy")
    ),
    ("proxies.*.allProxy", (23, 0), None, "7a0dc924f9 Add support for ALL_PROXY: v23.0.0"),
    ("kubernetes.allNamespaces", None, None, "with kubernetes"),
    # AuthConfig (docker/docker api/types until 27b2797f7d, then cli/config/types/authconfig.go)
    *(
        ("auths.*." + name, None, None, "v17.06.0-ce and every tag since")
        for name in ("username", "password", "auth", "serveraddress", "identitytoken", "registrytoken")
    ),
    (
        "auths.*.email",
        None,
        (29, 0),
        "e9664b9f34 cli/config/types: remove deprecated AuthConfig.Email field: v29.0.0",
    ),
]


def model_fields() -> list[tuple[str, Any, Any]]:
    """(path, since, until) of every field in the agent's schema of docker's ConfigFile."""
    found = []

    def walk(kind: Any, prefix: str) -> None:
        while isinstance(kind, tuple) and kind[0] in ("map", "pointer", "list"):
            if kind[0] == "map":
                prefix += "*."
            kind = kind[1]
        if isinstance(kind, tuple) and kind[0] == "struct":
            for name, field_kind, since, until in kind[2]:
                found.append((prefix + name, since, until))
                walk(field_kind, prefix + name + ".")

    walk(CONFIG_FILE, "")
    return found


def test_every_typed_field_and_its_versions_are_docker_clis_history() -> None:
    history = [(path, since, until) for path, since, until, _ in FIELD_HISTORY]
    assert sorted(model_fields()) == sorted(history)


def version_examples() -> list[tuple[tuple[int, int] | None, bytes, bool]]:
    """For every field with a history: a wrong type for it, just before, at and after each bound."""
    cases = []
    for path, since, until, _ in FIELD_HISTORY:
        if since is None and until is None:
            continue
        parts = path.split(".")
        value: Any = {"bad": 5} if parts[-1] in ("features", "aliases", "plugins", "proxies") else 5
        if parts[-1] == "kubernetes":
            value = {"allNamespaces": "maybe"}  # what file.go checkKubernetesConfiguration refused
        for part in reversed(parts):
            value = {"r" if part == "*" else part: value}
        config = json.dumps(value).encode()
        if since:
            cases += [(previous(since), config, True), (since, config, False)]
        if until:
            cases += [(previous(until), config, False), (until, config, True)]
    return cases


def previous(version: tuple[int, int]) -> tuple[int, int]:
    """The docker release before x.y (docker's minor versions: 17.03..18.09 monthly, then 19.03, 20.10,
    23.0 onwards)."""
    releases = [(17, m) for m in range(6, 13)] + [(18, m) for m in (1, 2, 3, 4, 5, 6, 9)]
    releases += [(19, 3), (20, 10), (23, 0), (24, 0), (25, 0), (26, 0), (26, 1)]
    releases += [(27, m) for m in range(6)] + [(28, m) for m in range(6)] + [(29, 0)]
    return releases[releases.index(version) - 1]


@pytest.mark.parametrize(("version", "config", "loads"), version_examples())
def test_each_field_is_typed_exactly_in_its_versions(
    version: tuple[int, int], config: bytes, loads: bool
) -> None:
    assert model_loads(version, config) is loads


@pytest.mark.parametrize(
    ("version", "config", "loads"),
    [
        # The acceptance case: docker 26.1.x types `features` (c5016c6d5b is in v26.1.0); 26.0 does not.
        ((26, 0), b'{"features":{"buildkit":true}}', True),
        ((26, 1), b'{"features":{"buildkit":true}}', False),
        ((27, 0), b'{"features":{"buildkit":true}}', False),
        # An empty file is an error before 20.10 (io.EOF ignored since 969580a887, v20.10.0).
        ((19, 3), b"", False),
        ((20, 10), b"", True),
        # `null` made docker before 23.0 crash (Decode(&configFile); ee97fe95bc Fix incorrect pointer
        # inputs to json.Unmarshal, v23.0.0).
        ((20, 10), b"null", False),
        ((23, 0), b"null", True),
        # An empty user name in `auth` is refused since 23.0 (c8bd8932a1 cli/config: use strings.Cut).
        ((20, 10), b'{"auths":{"r":{"auth":"%s"}}}' % b64(":pw").encode(), True),
        ((23, 0), b'{"auths":{"r":{"auth":"%s"}}}' % b64(":pw").encode(), False),
        # A docker version that cannot be read: the newest docker the model knows. Fields typed today
        # are enforced (features), fields only older docker typed are not (stackOrchestrator,
        # experimental): never config_corrupt for what today's docker ignores.
        (None, b'{"features":{"buildkit":true}}', False),
        (None, b'{"stackOrchestrator":5}', True),
        (None, b'{"experimental":5}', True),
        (None, b'{"kubernetes":{"allNamespaces":"maybe"}}', True),
        (None, b'{"proxies":{"default":{"allProxy":5}}}', False),
    ],
)
def test_model_follows_the_docker_version(
    version: tuple[int, int] | None, config: bytes, loads: bool
) -> None:
    assert model_loads(version, config) is loads


def test_docker_before_20_10_reads_an_empty_auth_as_no_user_at_all() -> None:
    """file.go at v19.03: decodeAuth(ac.Auth) ran for every entry, so username/password fields were
    overwritten by the empty decode; since 20.10 only a non-empty auth is decoded."""
    config = b'{"auths":{"r":{"username":"u","password":"p"}}}'
    _, old = DockerModel((19, 3)).load(config)
    _, new = DockerModel((20, 10)).load(config)
    assert not old.file_credential("r").is_secret
    assert (new.file_credential("r").username, new.file_credential("r").password) == ("u", "p")


def test_docker_version_is_read_from_its_version_line() -> None:
    assert docker_version_tuple("28.2.2") == (28, 2)
    assert docker_version_tuple("26.1.5+dfsg1") == (26, 1)
    assert docker_version_tuple("20.10.25") == (20, 10)
    assert docker_version_tuple("17.06.0-ce") == (17, 6)
    assert docker_version_tuple(None) is None
    assert docker_version_tuple("unknown") is None
    assert DockerModel(None).version == NEWEST_DOCKER


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
def test_auths_keys_docker_reads_as_a_host(key: str, matches: bool) -> None:
    """file_store.go Get: the exact key, else any key whose ConvertToHostname is the host."""
    config = json.dumps({"auths": {key: {"auth": b64("legacy:pw")}}}).encode()
    _, view = DockerModel((28, 2)).load(config)
    assert (view.keys_for(HOST) == [key]) is matches


def test_auths_keys_match_what_the_real_docker_cli_reads(real_docker: RealDocker) -> None:
    verdicts = []
    for key, _ in KEYS:
        config = json.dumps({"auths": {key: {"auth": b64("legacy:pw")}}}).encode()
        verdicts.append((key, real_docker.username_for(config, HOST) == "legacy"))
    assert verdicts == KEYS


def test_the_exact_key_wins_over_a_legacy_one(real_docker: RealDocker) -> None:
    config = json.dumps(
        {"auths": {f"https://{HOST}/v1/": {"auth": b64("legacy:pw")}, HOST: {"auth": b64("exact:pw")}}}
    ).encode()
    _, view = DockerModel((28, 2)).load(config)
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
def test_where_docker_keeps_a_registry_credential(config: dict[str, Any], store: str) -> None:
    """file.go getConfiguredCredentialStore: credHelpers[host] if present, else credsStore."""
    _, view = DockerModel((28, 2)).load(json.dumps(config).encode())
    assert view.store_for(REGISTRY) == store
