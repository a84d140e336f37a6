"""One user's credential files as the host's clients read them: each file loaded once, and for a registry
the answer each read order gives (which file, or helper, a client takes its credential from), where
`refresh` must write and where `helper` must point at the credential helper.

Answers follow each family's own lookup: docker's (one file: credHelpers, else credsStore, else auths;
docker_model) and containers/image's (file after file, the first with credentials winning: in each,
credHelpers before auths; containers_model). A file one of its readers cannot load is never written.
"""

import os

from .config_file import AuthFile
from .containers_model import ContainersView
from .docker_model import DockerModel
from .go_json import EMPTY_DOCUMENT, ConfigRejected
from .host_clients import Client
from .orders import FileRef
from .outcomes import CONFIG_CORRUPT, AgentError
from .read_order import read_orders
from .reading import read_auth_file
from .stores import HELPER_CRED_NAME
from .user_env import user_environments

# What answers a read order for a registry.
HELPER = "helper"  # credHelpers names ecr-login
STORE = "store"  # another credential helper or store holds the credential
FILE = "file"  # the file's auths
NONE = "none"  # no file has credentials: the client pulls anonymously
ERROR = "error"  # a file the client cannot read or load ends its lookup


class Answer(object):
    """What one read order gives its clients for a registry."""

    def __init__(
        self, order, kind, path=None, *, store=None, credential=None, keys=(), error=None, empty=False
    ):
        self.order = order
        self.empty = empty  # ERROR: the file is empty (or missing and required), which a write mends
        self.kind = kind
        self.path = path  # the file answering (None: none does)
        self.store = store  # helper or store name for HELPER and STORE
        self.credential = credential
        self.credentials = [credential] if credential is not None else []  # every one it may answer with
        self.keys = list(keys)  # auths keys answering (FILE)
        self.error = error


class UserCredentials(object):
    """A user's read orders (every client of the host, in every kind of session) and their files."""

    def __init__(self, host, account, environments=None, orders=None):
        """`orders` stand for the clients' for a reader that is no user's (kubelet's file)."""
        self.account = account
        if environments is None:
            self.environments, self.unknown = user_environments(account)
        else:
            self.environments, self.unknown = environments, []
        # On a host without any client, what docker would read (check reports it; the others refuse).
        clients = host.clients or [Client("docker", None, None)]
        self.orders = orders or read_orders(clients, account, self.environments)
        self.files = {}  # path -> AuthFile, or the AgentError reading it gave
        self.rejected = {}  # path -> AgentError: a reader cannot load it (left untouched)

    def refs(self):
        """Every file some order reads, once, in order of first appearance."""
        seen = {}
        for order in self.orders:
            for ref in order.files:
                seen.setdefault(ref.path, ref)
        return list(seen.values())

    def load(self, ref):
        """The file as written (raises AgentError: unsafe, unreadable, too large, not JSON at all)."""
        found = self.files.get(ref.path)
        if found is None:
            try:
                found = read_auth_file(self.account, ref.path, ref.legacy)
            except AgentError as error:
                found = error
            self.files[ref.path] = found
        if isinstance(found, AgentError):
            raise found
        return found

    def is_empty(self, ref):
        """Whether the file exists and is empty (not legacy): containers/image cannot load it, yet a
        write loses nothing there."""
        found = self.files.get(ref.path)
        return (
            isinstance(found, AuthFile)
            and found.exists
            and found.document is EMPTY_DOCUMENT
            and not ref.legacy
        )

    def loaded(self):
        return [found for found in self.files.values() if not isinstance(found, AgentError)]

    def docker_view(self, order):
        """docker's reading of the order's file, by the order's docker version (raises AgentError)."""
        auth_file = self.load(order.files[0])
        try:
            return auth_file, auth_file.docker_view(DockerModel(order.docker_version))
        except ConfigRejected as error:
            self.rejected[auth_file.path] = failure = AgentError(
                CONFIG_CORRUPT, "docker cannot load %s: %s" % (auth_file.path, error)
            )
            raise failure from None

    def containers_view(self, order, ref, writing=False):
        """containers/image's reading of one file (raises AgentError). An empty file fails every lookup
        that reaches it, yet holds nothing to lose: `writing` reads it as empty, so a write can mend it."""
        auth_file = self.load(ref)
        try:
            return auth_file, auth_file.containers_view()
        except ConfigRejected as error:
            if auth_file.document is EMPTY_DOCUMENT and writing:
                auth_file.views["containers"] = ContainersView({}, {}, ref.legacy)
                return auth_file, auth_file.views["containers"]
            what = "%s cannot load %s: %s" % (" and ".join(order.clients), auth_file.path, error)
            failure = AgentError(CONFIG_CORRUPT, what)
            if auth_file.document is not EMPTY_DOCUMENT:
                self.rejected[auth_file.path] = failure
            raise failure from None

    def view(self, order, ref, writing=False):
        """(file, its reading by the order's client) (raises AgentError)."""
        if order.rules == "docker":
            return self.docker_view(order)
        return self.containers_view(order, ref, writing)

    def readers_of(self, path):
        return [(order, ref) for order in self.orders for ref in order.files if ref.path == path]

    def prepare(self, path):
        """The file at path, read by every client that reads it (raises AgentError when one cannot):
        what the agent writes there is then checked against each of those readings."""
        for order, ref in self.readers_of(path):
            self.view(order, ref, writing=True)
        if path in self.rejected:
            raise self.rejected[path]
        return self.load(FileRef(path))

    def digests(self, path, keys):
        """Fingerprints of the logins a file holds under these auths keys (None for none)."""
        views = list(self.prepare(path).views.values())
        credentials = [
            next((view.credential_at(key) for view in views if view.credential_at(key)), None) for key in keys
        ]
        return {credential.digest() if credential is not None else None for credential in credentials}

    def answer(self, order, registry, stores):
        try:
            if order.rules == "docker":
                return self.docker_answer(order, registry, stores)
            return self.containers_answer(order, registry, stores)
        except AgentError as error:
            return Answer(order, ERROR, error=error)

    def docker_answer(self, order, registry, stores):
        """docker's GetCredentialsStore(registry).Get: credHelpers, else credsStore, else the file."""
        auth_file, view = self.docker_view(order)
        name = view.store_for(registry)
        if name == HELPER_CRED_NAME:
            return Answer(order, HELPER, auth_file.path, store=name)
        if name:
            try:
                credential = stores.credential(name, registry)
            except AgentError as error:  # the store docker would use cannot run: nothing to pull with
                return Answer(order, ERROR, auth_file.path, store=name, error=error)
            kind = STORE if credential is not None and credential.is_secret else NONE
            return Answer(order, kind, auth_file.path, store=name, credential=credential)
        credential = view.file_credential(registry)
        kind = FILE if credential is not None and credential.is_secret else NONE
        return Answer(order, kind, auth_file.path, credential=credential, keys=view.keys_for(registry))

    def containers_answer(self, order, registry, stores):
        """containers/image's getCredentialsWithHomeDir: the first file with credentials answers.
        podman and buildah first stat the file the user named (CheckAuthFile): missing, no pull at all;
        a write (refresh, helper) mends that as it does an empty file."""
        if order.required and not os.path.lexists(order.required):
            why = "%s cannot pull: %s, the file the user named, does not exist" % (
                " and ".join(order.clients),
                order.required,
            )
            return Answer(order, ERROR, order.required, error=AgentError(CONFIG_CORRUPT, why), empty=True)
        for ref in order.files:
            try:
                auth_file, view = self.containers_view(order, ref)
            except AgentError as error:
                return Answer(order, ERROR, ref.path, error=error, empty=self.is_empty(ref))
            if not auth_file.exists:
                continue
            helper = view.helper_for(registry)
            if helper == HELPER_CRED_NAME:
                return Answer(order, HELPER, ref.path, store=helper)
            if helper is not None:
                try:
                    credential = stores.credential(helper, registry)
                except AgentError as error:  # containers/image: a helper error ends the lookup
                    return Answer(order, ERROR, ref.path, store=helper, error=error)
                if credential is not None and credential.is_secret:
                    return Answer(order, STORE, ref.path, store=helper, credential=credential)
                continue  # the helper has nothing: the next file
            try:
                found = [(key, view.credential(key)) for key in view.keys_for(registry)]
            except ConfigRejected as error:  # decodeDockerAuth's error ends the lookup
                raise AgentError(CONFIG_CORRUPT, "%s: %s" % (ref.path, error)) from None
            secrets = [(key, credential) for key, credential in found if credential.is_secret]
            if secrets:
                keys = [key for key, _ in secrets]
                answer = Answer(order, FILE, ref.path, credential=secrets[-1][1], keys=keys)
                answer.credentials = [credential for _, credential in secrets]
                return answer
        return Answer(order, NONE)

    def file_credential(self, path, registry):
        """The credential a file holds under the registry's own key as its readers read it (None: none, or
        a file they cannot read), for telling where the agent's current token is."""
        for order, ref in self.readers_of(path):
            try:
                return self.view(order, ref)[1].file_credential(registry)
            except (AgentError, ConfigRejected):
                continue
        return None


def write_target(creds, answer):
    """(path, helper or store name, "" for the file) where `refresh` must store a token for this order's
    clients, or None (the helper serves them, or a file they cannot load stops them).

    The file (or store) that answers, or an empty file that stops the lookup first (containers/image:
    "unexpected end of JSON input"; the login there mends it); where none does, where every client can
    share it: docker's file,
    which the containers family reads too, unless the user named another file (which then is the one
    that client's login writes) or docker keeps credentials in a store containers/image cannot use
    (credsStore: then the containers family's own auth.json in XDG_CONFIG_HOME)."""
    order = answer.order
    if answer.kind == ERROR and answer.empty:  # it stops the lookup; nothing in it to lose: mended
        return answer.path, ""
    if answer.kind not in (FILE, STORE, NONE):
        return None
    if order.rules == "docker":
        return answer.path, answer.store or ""
    legacy = any(ref.legacy for ref in order.files if ref.path == answer.path)
    if answer.kind != NONE and not legacy:
        return answer.path, answer.store or ""
    if order.user_path:
        return order.user_path, ""
    if any(ref.path == order.docker_path for ref in order.files) and not docker_store(
        creds, order.docker_path
    ):
        return order.docker_path, ""
    return (order.config_path, "") if order.config_path else None


def docker_store(creds, path):
    """The credsStore a docker config names ("" for none; None when it cannot be told), which
    containers/image does not use."""
    try:
        auth_file = creds.load(FileRef(path))
        return auth_file.docker_view(DockerModel(None)).creds_store
    except (AgentError, ConfigRejected):
        return None
