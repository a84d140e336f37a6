"""containers/image's reading of one credential file, as podman, skopeo and buildah look a registry up in it.

From containers/image pkg/docker/config/config.go (v5.23.1, Debian 12's podman 4.3.1, skopeo 1.9.3
and buildah 1.28.2; unchanged in these respects through today's main):
- readJSONFile: json.Unmarshal into {"auths": {key: {"auth", "identitytoken"}}, "credHelpers": {host:
  helper}}, so the whole file must be one JSON value (trailing data is an error, and so is an empty
  file: "unexpected end of JSON input"), a wrong type for these fields is an error, other keys
  (credsStore, docker's settings) are ignored; a missing file is empty. `~/.dockercfg` is the legacy
  format: the top level is the `auths` map itself.
- findCredentialsInFile: credHelpers[registry] first (the helper's answer, found or not, is this file's
  answer); then the auths keys most specific first (registry/namespace/repo, ..., registry: an
  extension docker lacks), the first that exists being the answer; else any key that, stripped of
  http(s):// and, only then, of its path, names the registry. decodeDockerAuth: bad base64 is an error
  that ends the whole lookup; decoded text without `:` counts as no credentials.
Errors end the lookup in every file (getCredentialsWithHomeDir returns at once): for these clients a
file they cannot read or parse is worse than a missing one.
"""

import base64

from .docker_model import BASE64_STD, Credential
from .go_json import (
    EMPTY_DOCUMENT,
    STRING,
    ConfigRejected,
    go_decode,
    go_field,
    go_map,
    parse_json_document,
    skip_space,
)

READER = "containers/image"
AUTH_ENTRY = ("struct", "dockerAuthConfig", (go_field("auth"), go_field("identitytoken")))
AUTH_FILE = (
    "struct",
    "dockerConfigFile",
    (go_field("auths", go_map(AUTH_ENTRY)), go_field("credHelpers", go_map(STRING))),
)


def normalize_key(key, legacy):
    """normalizeAuthFileKey: http(s):// stripped, and then (or always, in the legacy format) the path
    (its normalizeRegistry renames only docker.io's names, never an ECR registry)."""
    stripped = key
    for scheme in ("http://", "https://"):
        if stripped.startswith(scheme):
            stripped = stripped[len(scheme) :]
    return stripped.split("/", 1)[0] if legacy or stripped != key else stripped


def decode_entry(key, entry):
    """decodeDockerAuth: a Credential (empty when the text has no `:`), or ConfigRejected for bad base64."""
    auth = entry.get("auth", "").replace("\r", "").replace("\n", "")
    if not BASE64_STD.match(auth):
        raise ConfigRejected("auths.%s.auth is not base64" % key)
    user, colon, password = base64.b64decode(auth).partition(b":")
    if not colon:
        return Credential()
    return Credential(
        user.decode("utf-8", "replace"),
        password.strip(b"\x00").decode("utf-8", "replace"),
        entry.get("identitytoken", ""),
    )


class ContainersView(object):
    """The parts of one file containers/image reads: its auths entries and credHelpers."""

    creds_store = ""  # containers/image has no credsStore

    def __init__(self, auths, cred_helpers, legacy):
        self.auths = auths  # key as written -> {"auth": ..., "identitytoken": ...}
        self.cred_helpers = cred_helpers
        self.legacy = legacy

    def store_for(self, server):
        return self.cred_helpers.get(server, "")

    def helper_for(self, registry):
        """The credential helper this file names for the registry, or None ("" is a helper name too)."""
        return None if self.legacy else self.cred_helpers.get(registry)

    def host_key(self, registry):
        """The auths key a lookup for the registry itself reads: the exact key, else a normalized one."""
        if registry in self.auths:
            return registry
        for key in self.auths:
            if normalize_key(key, self.legacy) == registry:
                return key
        return None

    def scoped_keys(self, registry):
        """registry/namespace keys: read first for images below them (never in the legacy format)."""
        return [] if self.legacy else [key for key in self.auths if key.startswith(registry + "/")]

    def keys_for(self, registry):
        """Every auths key a lookup of an image of this registry may read."""
        key = self.host_key(registry)
        return self.scoped_keys(registry) + ([key] if key is not None else [])

    def credential(self, key):
        return decode_entry(key, self.auths[key])

    def credential_at(self, key):
        return self.credential(key) if key in self.auths else None

    def file_credential(self, registry):
        """What a lookup of the registry itself finds in this file (None: nothing)."""
        key = self.host_key(registry)
        return self.credential(key) if key is not None else None

    def stale_secret_keys(self, registry):
        """The registry's auths keys holding a credential (a bad one counts: it is meant as one)."""
        return [key for key in self.keys_for(registry) if not self.decodes_empty(key)]

    def decodes_empty(self, key):
        try:
            return not self.credential(key).is_secret
        except ConfigRejected:
            return False

    def holds_secrets(self):
        return not all(self.decodes_empty(key) for key in self.auths)


def containers_view(raw, legacy=False):
    """ContainersView of a file's bytes as containers/image reads it, or ConfigRejected with why not."""
    text = raw.decode("utf-8", "surrogateescape")
    document, end = parse_json_document(text)
    if document is EMPTY_DOCUMENT:
        raise ConfigRejected("empty (containers/image: unexpected end of JSON input)")
    if skip_space(text, end) != len(text):
        raise ConfigRejected("data after the JSON value (containers/image reads the whole file)")
    if legacy:
        auths = go_decode(document, go_map(AUTH_ENTRY), None, "", None, reader=READER) or {}
        view = ContainersView(auths, {}, True)
    else:
        loaded = go_decode(document, AUTH_FILE, {}, "", None, reader=READER)
        view = ContainersView(loaded.get("auths") or {}, loaded.get("credHelpers") or {}, False)
    return view
