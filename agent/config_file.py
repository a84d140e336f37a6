"""One user's ~/.docker/config.json: the file as written, docker's reading of it, the agent's edits.

Nothing in the file is lost. What the agent does not edit is copied byte for byte (its span in the
text), data after the first JSON value stays, and a map field written more than once keeps every
occurrence (even those a later `null` hides from docker): the agent's entry goes into the last
occurrence, or a new one after a trailing null. Reading the file from disk is reading.py's job,
writing it writing.py's.
"""

import json

from .docker_model import DockerView, basic_auth
from .go_json import JsonNumber, JsonObject, go_fold, parse_json_document, skip_space
from .stores import HELPER_CRED_NAME

CONFIG_DIR_NAME = ".docker"
CONFIG_NAME = "config.json"
BACKUP_NAME = "config.json.ecr-fleet-auth.bak"


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


class DockerAuthFile(object):
    """One user's ~/.docker/config.json: as found, as docker reads it, and the agent's edits to it.

    This class is "a user's registry auth" for docker; another client's file (podman's
    containers-auth.json) would be a sibling with the same questions and edits.
    """

    def __init__(self, model, raw=None, mode=None, backup_mode=None):
        self.model = model
        self.raw = raw
        self.mode = mode
        self.backup_mode = backup_mode  # set when a backup exists that others may read
        self.text = (raw or b"").decode("utf-8", "surrogateescape")
        self.document, self.end = parse_json_document(self.text)
        self.view = model.view(self.document) if raw is not None else DockerView({}, None, "")
        self.edited = None

    @property
    def exists(self):
        return self.raw is not None

    # --- questions docker would answer
    def store_for(self, registry):
        return self.view.store_for(registry)

    def file_credential(self, registry):
        return self.view.file_credential(registry)

    def stale_secret_keys(self, registry):
        """auths keys for this registry that still hold a secret (left beside a helper)."""
        return [key for key in self.view.keys_for(registry) if self.view.auths[key].is_secret]

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

    def set_login(self, registry, username, password):
        """What a file-store `docker login` writes: the exact key, the whole entry replaced."""
        set_in_map(
            self._editable(), "auths", registry, JsonObject([("auth", basic_auth(username, password))])
        )

    def mark_in_store(self, registry):
        """What a store `docker login` leaves in the file: `{}` under the exact key (skipped when there)."""
        current = self.view.auths.get(registry)
        if current is None or not current.is_empty:
            set_in_map(self._editable(), "auths", registry, JsonObject())

    def use_helper(self, registry):
        """credHelpers[registry] = ecr-login; every auths key docker reads as it removed (docker logout)."""
        if (self.view.cred_helpers or {}).get(registry) != HELPER_CRED_NAME:
            set_in_map(self._editable(), "credHelpers", registry, HELPER_CRED_NAME)
        keys = self.view.keys_for(registry)
        if keys:
            remove_from_map(self._editable(), "auths", keys)

    def render(self):
        tail = self.text[self.end :] if skip_space(self.text, self.end) < len(self.text) else "\n"
        return (json_text(self._editable(), self.text) + tail).encode("utf-8", "surrogateescape")
