"""One credential file (docker's config.json, a containers auth.json): the file as written, each client's
reading of it (docker_model, containers_model), the agent's edits.

Nothing in the file is lost. What the agent does not edit is copied byte for byte (its span in the
text), data after the first JSON value stays, and a map field written more than once keeps every
occurrence (even those a later `null` hides from docker): the agent's entry goes into the last
occurrence, or a new one after a trailing null. Reading the file from disk is reading.py's job,
writing it writing.py's.
"""

import json
import os

from .containers_model import ContainersView, containers_view
from .docker_client import CONFIG_NAME
from .docker_model import DockerModel, DockerView, basic_auth
from .go_json import ConfigRejected, JsonNumber, JsonObject, go_fold, parse_json_document
from .stores import HELPER_CRED_NAME

BACKUP_SUFFIX = ".ecr-fleet-auth.bak"
BACKUP_NAME = CONFIG_NAME + BACKUP_SUFFIX


def backup_name(name):
    """The one-generation backup kept beside a file before the agent changes it."""
    return name + BACKUP_SUFFIX


def field_places(document, name):
    """Indexes of the top-level pairs docker reads as field `name` (exact or folded key)."""
    folded = go_fold(name)
    return [index for index, (key, _) in enumerate(document) if go_fold(key) == folded]


def set_in_map(document, name, key, value):
    """Make docker's map field `name` hold key -> value, however the file spells or repeats the field."""
    remove_from_map(document, name, (key,))
    places = field_places(document, name)
    target = document[places[-1]][1] if places else None
    if not isinstance(target, JsonObject):  # absent, or null: Go's decoder reads a map after it anew
        target = JsonObject()
        document.append((name, target))
    target.span = None
    target.append((key, value))


def remove_from_map(document, name, keys):
    for index in field_places(document, name):
        target = document[index][1]
        if isinstance(target, JsonObject) and any(key in keys for key, _ in target):
            target[:] = [(key, value) for key, value in target if key not in keys]
            target.span = None


def json_text(value, text, depth=0):
    """JSON in the layout docker writes (tab indent) for what the agent edited; the rest as in text."""
    span = getattr(value, "span", None)
    if span:
        return text[span[0] : span[1]]
    if isinstance(value, JsonObject):  # only the document and maps the agent edited: a few levels deep
        if not value:
            return "{}"
        pad = "\t" * (depth + 1)
        items = [pad + json.dumps(key) + ": " + json_text(item, text, depth + 1) for key, item in value]
        return "{\n" + ",\n".join(items) + "\n" + "\t" * depth + "}"
    if isinstance(value, JsonNumber):
        return value.text
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return json.dumps(value)


class AuthFile(object):
    """One credential file: as found, as each client reads it, and the agent's edits to it.

    `path` is where it is; `legacy` marks ~/.dockercfg (containers/image's legacy format, read only).
    docker's reading is docker_view(model); containers/image's is containers_view(); each raises
    ConfigRejected when that reader fails on the file (a file can be fine for one and not the other:
    an empty file is for docker since 20.10, never for containers/image)."""

    def __init__(self, path, raw=None, mode=None, backup_mode=None, legacy=False):
        self.path = path
        self.raw = raw
        self.mode = mode
        self.legacy = legacy
        self.backup_mode = backup_mode  # set when a backup exists that others may read
        self.text = (raw or b"").decode("utf-8", "surrogateescape")
        self.document, self.end = parse_json_document(self.text)
        self.views = {}
        self.edited = None

    @property
    def exists(self):
        return self.raw is not None

    @property
    def directory(self):
        return os.path.dirname(self.path)

    @property
    def name(self):
        return os.path.basename(self.path)

    def docker_view(self, model):
        key = ("docker", model.version)
        if key not in self.views:
            self.views[key] = model.view(self.document) if self.exists else DockerView({}, None, "")
        return self.views[key]

    def containers_view(self):
        if "containers" not in self.views:
            exists = self.exists
            self.views["containers"] = (
                containers_view(self.raw, self.legacy) if exists else ContainersView({}, {}, self.legacy)
            )
        return self.views["containers"]

    def holds_secrets(self):
        """Whether any client finds a credential in it (docker's reading or containers/image's): what
        makes an owner-only mode necessary."""
        for read in (lambda: self.docker_view(DockerModel(None)), self.containers_view):
            try:
                if read().holds_secrets():
                    return True
            except ConfigRejected:
                continue
        return False

    # --- edits (to a fresh parse of the text; `render` gives the new bytes)
    def _editable(self):
        if self.edited is None:
            document = parse_json_document(self.text)[0]
            self.edited = document if isinstance(document, JsonObject) else JsonObject()
            self.edited.span = None
        return self.edited

    @property
    def changed(self):
        return self.edited is not None

    def set_login(self, registry, username, password, keys=()):
        """What a login writes: the registry's own key, the whole entry replaced (docker login, and
        containers/common's login); `keys`, other keys read for it (registry/namespace ones), likewise."""
        for key in unique_keys([registry] + list(keys)):
            set_in_map(self._editable(), "auths", key, JsonObject([("auth", basic_auth(username, password))]))

    def mark_in_store(self, registry, current):
        """What a store `docker login` leaves in the file: `{}` under the exact key (skipped when there)."""
        if current is None or not current.is_empty:
            set_in_map(self._editable(), "auths", registry, JsonObject())

    def use_helper(self, registry, stale_keys, configured):
        """credHelpers[registry] = ecr-login (unless `configured` already); the stale auths keys removed
        (docker logout)."""
        if not configured:
            set_in_map(self._editable(), "credHelpers", registry, HELPER_CRED_NAME)
        if stale_keys:
            remove_from_map(self._editable(), "auths", stale_keys)

    def render(self):
        """The new bytes. What followed the JSON value stays as it was; a new containers auth.json ends
        as containers/image writes one (json.MarshalIndent's bytes, no final newline)."""
        new_tail = "\n" if self.name == CONFIG_NAME else ""
        tail = self.text[self.end :] if self.exists else new_tail
        return (json_text(self._editable(), self.text) + tail).encode("utf-8", "surrogateescape")


def unique_keys(keys):
    seen = []
    for key in keys:
        if key not in seen:
            seen.append(key)
    return seen


class DockerAuthFile(AuthFile):
    """A docker config.json read with one docker version's loader (`view`): docker's questions and edits.

    Raises ConfigRejected at once when docker would not load it."""

    def __init__(self, model, raw=None, mode=None, backup_mode=None, path=None):
        AuthFile.__init__(self, path or CONFIG_NAME, raw, mode, backup_mode)
        self.model = model
        self.view = self.docker_view(model)

    def mark_in_store(self, registry, current=None):
        AuthFile.mark_in_store(self, registry, self.view.auths.get(registry))

    def use_helper(self, registry, stale_keys=None, configured=None):
        """credHelpers[registry] = ecr-login; every auths key docker reads as it removed (docker logout)."""
        if configured is None:
            configured = (self.view.cred_helpers or {}).get(registry) == HELPER_CRED_NAME
        keys = self.view.keys_for(registry) if stale_keys is None else stale_keys
        AuthFile.use_helper(self, registry, keys, configured)
