"""docker's own reading of config.json, by docker version: where each registry's credential is.

The agent decides every user x registry state the way docker itself does, from docker/cli's
sources: cli/config/configfile/file.go (the typed ConfigFile, LoadFromReader, decodeAuth,
getConfiguredCredentialStore), cli/config/credentials/file_store.go (Get, ConvertToHostname) and
native_store.go (Get, Store), and Go's encoding/json, which docker decodes the file with (go_json):
- a JSON value of the wrong type for any field docker types is an error, though decoding goes on;
  docker then prints "WARNING: Error parsing config file" and works with what it half-loaded, and
  its next save (a `docker login`) writes that half back: other registries' credentials are lost
  (docker/cli #5075). Such a file is `config_corrupt` here and never touched;
- unknown keys are ignored, `null` is accepted anywhere, object keys match field names
  case-insensitively (Go's fold: also U+017F and U+212A), repeated map fields merge;
- only the first JSON value is read (what follows it is never looked at); an empty file is fine;
  nesting deeper than 10000 levels is an error (Go's maxNestingDepth);
- every `auth` must be standard base64 (padded; CR and LF ignored) of `user:password`.
Which fields docker types depends on its version: the schema below carries the versions in which
each field exists (docker/cli's git history, tests/agent/test_docker_model.py), and the host's docker
version picks them. A version that cannot be read counts as the newest the schema knows: the likeliest
reading (distribution builds print odd versions, not old ones), and one that never calls a config
corrupt for a field today's docker no longer types.
"""

import base64
import hashlib
import re

from .go_json import (
    EMPTY_DOCUMENT,
    STRING,
    ConfigRejected,
    JsonObject,
    go_decode,
    go_field,
    go_list,
    go_map,
    json_kind,
    parse_json_document,
)


def auth_digest(auth):
    """Short fingerprint of a stored auth value: ties a recorded expiry to the login it belongs to."""
    return hashlib.sha256(auth.encode("utf-8")).hexdigest()[:16]


def basic_auth(username, password):
    return base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


AUTH_CONFIG = (
    "struct",
    "AuthConfig",
    (
        go_field("username"),
        go_field("password"),
        go_field("auth"),
        go_field("email", until=(29, 0)),
        go_field("serveraddress"),
        go_field("identitytoken"),
        go_field("registrytoken"),
    ),
)
PROXY_CONFIG = (
    "struct",
    "ProxyConfig",
    (
        go_field("httpProxy"),
        go_field("httpsProxy"),
        go_field("noProxy"),
        go_field("ftpProxy"),
        go_field("allProxy", since=(23, 0)),
    ),
)
KUBERNETES_CONFIG = ("pointer", ("struct", "KubernetesConfig", (go_field("allNamespaces"),)))
CONFIG_FILE = (
    "struct",
    "ConfigFile",
    (
        go_field("auths", go_map(AUTH_CONFIG)),
        go_field("HttpHeaders", go_map(STRING)),
        go_field("psFormat"),
        go_field("imagesFormat"),
        go_field("networksFormat"),
        go_field("pluginsFormat"),
        go_field("volumesFormat"),
        go_field("statsFormat"),
        go_field("detachKeys"),
        go_field("credsStore"),
        go_field("credHelpers", go_map(STRING)),
        go_field("serviceInspectFormat"),
        go_field("servicesFormat"),
        go_field("tasksFormat"),
        go_field("secretFormat"),
        go_field("configFormat"),
        go_field("nodesFormat"),
        go_field("pruneFilters", go_list(STRING)),
        go_field("proxies", go_map(PROXY_CONFIG), since=(17, 7)),
        go_field("experimental", since=(18, 1), until=(29, 0)),
        go_field("orchestrator", since=(18, 1), until=(18, 6)),
        go_field("stackOrchestrator", since=(18, 6), until=(24, 0)),
        go_field("kubernetes", KUBERNETES_CONFIG, since=(18, 6), until=(23, 0)),
        go_field("currentContext", since=(19, 3)),
        go_field("cliPluginsExtraDirs", go_list(STRING), since=(19, 3)),
        go_field("plugins", go_map(go_map(STRING)), since=(19, 3)),
        go_field("aliases", go_map(STRING), since=(19, 3)),
        go_field("features", go_map(STRING), since=(26, 1)),
    ),
)

# docker/cli's first release is 17.06; an older docker is read as 17.06. An unreadable version is read
# as this one (every field typed today, none typed only in the past): see this module's docstring.
NEWEST_DOCKER = (99, 0)

# Loader changes by docker version (file.go history): an empty file is no error since 20.10
# (io.EOF ignored); `null` no longer crashes docker since 23.0 (Decode(configFile), not &configFile);
# an empty `auth` is skipped since 20.10; an empty user name in `auth` is refused since 23.0.
EMPTY_FILE_SINCE = (20, 10)
NULL_DOCUMENT_SINCE = (23, 0)
SKIP_EMPTY_AUTH_SINCE = (20, 10)
NO_EMPTY_USER_SINCE = (23, 0)
KUBERNETES_NAMESPACES = ("", "enabled", "disabled")
BASE64_STD = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def decode_auth(auth, version, key):
    """(user, password) from an `auth` value, or ConfigRejected: decodeAuth in file.go."""
    if auth == "":
        return "", ""
    data = auth.replace("\r", "").replace("\n", "")  # Go's base64 decoder skips CR and LF
    if not BASE64_STD.match(data):
        raise ConfigRejected("auths.%s.auth is not base64" % key)
    user, colon, password = base64.b64decode(data).partition(b":")
    if not colon or (not user and version >= NO_EMPTY_USER_SINCE):
        raise ConfigRejected("auths.%s.auth is not base64 of user:password" % key)
    return user.decode("utf-8", "replace"), password.strip(b"\x00").decode("utf-8", "replace")


class Credential(object):
    """What docker holds for a registry: user and password, or an identity or registry token."""

    def __init__(self, username="", password="", identity_token="", registry_token="", email=""):
        self.username = username
        self.password = password
        self.identity_token = identity_token
        self.registry_token = registry_token
        self.email = email

    @property
    def is_secret(self):
        return bool(self.username or self.password or self.identity_token or self.registry_token)

    @property
    def is_empty(self):
        """An entry docker's file store treats as unchanged when a store login writes `{}`."""
        return not (self.is_secret or self.email)

    def digest(self):
        """Fingerprint of a user:password login (None for anything else), as recorded with its expiry."""
        if self.identity_token or self.registry_token or not (self.username or self.password):
            return None
        return auth_digest(basic_auth(self.username, self.password))

    def __repr__(self):
        return "Credential(%s, secret=%s)" % (self.username, "yes" if self.is_secret else "no")


class DockerView(object):
    """The parts of a loaded ConfigFile that decide where docker finds each registry's credentials."""

    def __init__(self, auths, cred_helpers, creds_store):
        self.auths = auths  # key as written -> Credential
        self.cred_helpers = cred_helpers
        self.creds_store = creds_store

    def store_for(self, server):
        """getConfiguredCredentialStore: credHelpers[server] (even ""), else credsStore; "" = the file."""
        if self.cred_helpers is not None and server in self.cred_helpers:
            return self.cred_helpers[server]
        return self.creds_store

    def keys_for(self, server):
        """Every auths key docker's file store reads as this server: the exact key, then legacy forms."""
        return [key for key in self.auths if key == server or convert_to_hostname(key) == server]

    def file_credential(self, server):
        """fileStore.Get: the exact key, else the first legacy key (Go's map order is random anyway)."""
        if server in self.auths:
            return self.auths[server]
        for key in self.keys_for(server):
            return self.auths[key]
        return None

    def stale_secret_keys(self, server):
        """auths keys docker reads as this server that still hold a secret (left beside a helper)."""
        return [key for key in self.keys_for(server) if self.auths[key].is_secret]

    def credential_at(self, key):
        return self.auths.get(key)

    def holds_secrets(self):
        return any(credential.is_secret for credential in self.auths.values())


class DockerModel(object):
    """docker's config loader for one docker version ((major, minor); None: NEWEST_DOCKER)."""

    def __init__(self, version):
        self.version = tuple(version or NEWEST_DOCKER)

    def load(self, raw):
        """(document, DockerView) as docker loads raw, or ConfigRejected where docker warns and half-loads."""
        document = parse_json_document(raw.decode("utf-8", "surrogateescape"))[0]
        return document, self.view(document)

    def view(self, document):
        if document is EMPTY_DOCUMENT:
            if self.version < EMPTY_FILE_SINCE:
                raise ConfigRejected("empty (docker before 20.10 cannot parse an empty file)")
            return DockerView({}, None, "")
        if document is None and self.version < NULL_DOCUMENT_SINCE:
            raise ConfigRejected("null (docker before 23.0 crashes on it)")
        if document is not None and not isinstance(document, JsonObject):
            raise ConfigRejected("docker expects a JSON object, the file has a JSON %s" % json_kind(document))
        loaded = go_decode(document, CONFIG_FILE, {}, "", self.version)
        auths = {}
        for key, entry in (loaded.get("auths") or {}).items():
            username, password = entry.get("username", ""), entry.get("password", "")
            auth = entry.get("auth", "")
            if auth or self.version < SKIP_EMPTY_AUTH_SINCE:
                username, password = decode_auth(auth, self.version, key)
            auths[key] = Credential(
                username,
                password,
                entry.get("identitytoken", ""),
                entry.get("registrytoken", ""),
                entry.get("email", ""),
            )
        namespaces = (loaded.get("kubernetes") or {}).get("allNamespaces", "")
        if namespaces not in KUBERNETES_NAMESPACES:
            raise ConfigRejected("kubernetes.allNamespaces must be enabled or disabled")
        return DockerView(auths, loaded.get("credHelpers"), loaded.get("credsStore", ""))


def docker_version_tuple(text):
    match = re.match(r"^(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


# --- ConvertToHostname (credentials/file_store.go) and the part of Go's url.Parse it relies on
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
URL_USERINFO = re.compile(r"^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$")
URL_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
URL_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:\[\]<>\"]*$")


def convert_to_hostname(key):
    """The host:port docker's file store reads an auths key as (`https://host/v1/` -> host)."""
    if "://" in key:
        host = url_host_port(key)
        if host:
            return host
    return key.split("/", 1)[0]


def url_host_port(text):
    """Hostname[:port] of text as Go's url.Parse gives it, or None where Parse fails or finds no host."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return None
    text, _, fragment = text.partition("#")
    scheme, colon, rest = text.partition(":")
    if not colon or not URL_SCHEME.match(scheme) or URL_BAD_ESCAPE.search(fragment):
        return None
    rest = rest.partition("?")[0]
    if not rest.startswith("//") or rest.startswith("///"):
        return None
    authority, slash, path = rest[2:].partition("/")
    if URL_BAD_ESCAPE.search(path):
        return None
    userinfo, at, host = authority.rpartition("@")
    if at and (not URL_USERINFO.match(userinfo) or URL_BAD_ESCAPE.search(userinfo)):
        return None
    if host.startswith("[") or "%" in host or not URL_HOST_CHARS.match(host):
        return None  # IPv6 literals and escapes never name an ECR registry
    name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    if colon and not port.isdigit() and port != "":
        return None  # Go: invalid port
    if not name:
        return None
    return "%s:%s" % (name, port) if port else name
