"""The state of each user x registry pair: helper, logged in (and until when), stale, shadowed, none,
unavailable; per client (each read order's answer), and the worst of them for the pair."""

import os

from .credential_files import ERROR, FILE, HELPER, NONE
from .docker_client import CONFIG_NAME
from .go_json import ConfigRejected
from .outcomes import (
    STALE_CREDENTIALS,
    STATE_HELPER,
    STATE_HELPER_UNAVAILABLE,
    STATE_LOGGED_IN,
    STATE_NONE,
    STATE_SHADOWED,
    STATE_STALE_AUTH,
    TOKEN_EXPIRED,
    TOKEN_SHADOWED,
    AgentError,
)
from .params import unique
from .records import record_expiry
from .stores import HELPER_CRED_NAME
from .times import format_time, utc_now
from .tokens import token_expiry


def helper_state(view, registry, stores):
    """helper, stale_auth or helper_unavailable, for a file that names ecr-login for the registry.

    `stores` (CredentialStores) runs the user's credential helpers as the user's clients would. A
    state that is a problem carries it as "problem" (an AgentError), which the caller reports."""
    try:
        stores.verify(registry)
    except AgentError as error:
        return {"state": STATE_HELPER_UNAVAILABLE, "helper": HELPER_CRED_NAME, "problem": error}
    # Never read while the helper answers first (credHelpers before auths), but secrets all the same.
    stale = ["auths." + key for key in view.stale_secret_keys(registry)]
    for store, server in stale_stores(view, [registry]):
        try:
            if stores.credential(store, server) is not None:
                stale.append("docker-credential-%s (%s)" % (store, server))
        except AgentError:
            pass  # a store that cannot run hands nothing to anyone
    if stale:
        why = "a token from before the helper is still in %s" % ", ".join(stale)
        return {"state": STATE_STALE_AUTH, "problem": AgentError(STALE_CREDENTIALS, why)}
    return {"state": STATE_HELPER}


def logged_in_state(expires_at):
    state = {"state": STATE_LOGGED_IN}
    if expires_at is not None:
        state["expires_at"] = format_time(expires_at)
        if expires_at <= utc_now():
            state["expired"] = True
    return state


def stale_stores(view, registries):
    """[(helper, server)] where a credential for a managed registry may lie in a store once the helper
    serves it: the server forms `docker logout` erases (logout.go: host, http://host, https://host),
    in the store docker used for each and in the default credsStore."""
    found = []
    for registry in registries:
        forms = [registry, "http://" + registry, "https://" + registry]
        names = unique([view.store_for(form) for form in forms] + [view.creds_store])
        for name in names:
            if name and name != HELPER_CRED_NAME:
                found.extend((name, form) for form in forms)
    return unique(found)


# --- the state each read order's answer gives its clients, and the registry's state for the user

# Worst first: the registry's state for a user is its worst client's (a host is not healthy while any of
# its clients would pull with another file than the one kept fresh).
SEVERITY = (
    STATE_HELPER_UNAVAILABLE,
    STATE_SHADOWED,
    "error",
    STATE_NONE,
    "expired",
    STATE_STALE_AUTH,
    STATE_LOGGED_IN,
    STATE_HELPER,
)


def severity(state):
    if "error" in state:
        return SEVERITY.index("error")
    if state.get("expired"):
        return SEVERITY.index("expired")
    return SEVERITY.index(state["state"])


def fresh_source(creds, answers, registry, record):
    """Where the credential the agent keeps for the registry is, for telling a token that shadows it:
    "the credential helper" when some client is served by it, else a file holding the login the agent
    recorded (it renews that one on every refresh), else None."""
    if any(answer.kind == HELPER for answer in answers) or names_helper(creds, registry):
        return "the credential helper"
    if not record:
        return None
    for ref in creds.refs():
        credential = creds.file_credential(ref.path, registry)
        if credential is not None and credential.digest() == record.get("auth_sha256"):
            return ref.path
    return None


def names_helper(creds, registry):
    """Whether a file of the user names ecr-login for the registry (helper did it): any token a client
    reads instead, even where no client reaches that file, is one the agent does not keep."""
    for order in creds.orders:
        for ref in order.files:
            try:
                if creds.view(order, ref)[1].store_for(registry) == HELPER_CRED_NAME:
                    return True
            except (AgentError, ConfigRejected):
                continue
    return False


def answer_state(creds, answer, registry, record, stores, *, fresh):
    """The state an answer gives its clients (a problem, if any, under "problem", as helper_state)."""
    kind = answer.kind
    if kind == ERROR and answer.store:
        return {"state": STATE_HELPER_UNAVAILABLE, "helper": answer.store, "problem": answer.error}
    if kind == ERROR:
        return {"state": STATE_NONE, "error": answer.error.reason, "problem": answer.error}
    if kind == HELPER:
        ref = next(ref for ref in answer.order.files if ref.path == answer.path)
        return helper_state(creds.view(answer.order, ref)[1], registry, stores)
    if kind == NONE:
        return {"state": STATE_NONE}
    digest = answer.credential.digest()
    recorded = record_expiry(record, digest)
    if fresh is not None and fresh != answer.path and recorded is None:
        why = "%s read %s first: a token the agent does not keep, ahead of the current one in %s" % (
            ",".join(answer.order.clients),
            answer.path if kind == FILE else "docker-credential-" + answer.store,
            fresh,
        )
        return {"state": STATE_SHADOWED, "problem": AgentError(TOKEN_SHADOWED, why)}
    if recorded is not None:
        return logged_in_state(recorded)
    expiries = [token_expiry(credential.password) for credential in answer.credentials]
    expiries = [expiry for expiry in expiries if expiry is not None]
    state = logged_in_state(min(expiries) if expiries else None)
    if state.get("expired"):
        why = "%s read %s: a token the agent does not keep, expired at %s" % (
            ",".join(answer.order.clients),
            answer.path if kind == FILE else "docker-credential-" + answer.store,
            state["expires_at"],
        )
        state["problem"] = AgentError(TOKEN_EXPIRED, why)
    return state


def registry_states(creds, registry, record, stores):
    """[(answer, state)] for every read order of the user, with shadowing judged across them all."""
    answers = [creds.answer(order, registry, stores) for order in creds.orders]
    fresh = fresh_source(creds, answers, registry, record)
    return [
        (answer, answer_state(creds, answer, registry, record, stores, fresh=fresh)) for answer in answers
    ]


def combined_state(account, answered):
    """The registry's entry in the result: its worst client's state; `file` when one file (not
    ~/.docker/config.json) answers every client, `clients` when they do not all agree."""
    problems = []
    seen = {}  # client -> [(state, path, sessions)]
    for answer, state in answered:
        problem = state.pop("problem", None)
        if problem is not None and all(problem.message != known.message for known in problems):
            problems.append(problem)
        for client in answer.order.clients:
            seen.setdefault(client, []).append((state, answer.path, getattr(answer.order, "sessions", [])))
    by_client = {}  # a client whose sessions get different answers is shown per session
    for client, answers in seen.items():
        split = len({(json_key(state), path) for state, path, _ in answers}) > 1
        for state, path, sessions in answers:
            name = "%s (%s)" % (client, ",".join(sessions)) if split and sessions else client
            current = by_client.get(name)
            if current is None or severity(state) < severity(current[0]):
                by_client[name] = (state, path)
    worst = min((entry for entry in by_client.values()), key=lambda entry: severity(entry[0]))
    entry = dict(worst[0])
    groups = {}
    for client, (state, path) in by_client.items():
        shown = dict(state, file=shown_path(account, path)) if path else dict(state)
        groups.setdefault(json_key(shown), ([], shown))[0].append(client)
    if len(groups) > 1:
        entry["clients"] = {",".join(names): shown for names, shown in groups.values()}
    elif worst[1] and worst[1] != os.path.join(account.config_dir, CONFIG_NAME):
        entry["file"] = shown_path(account, worst[1])
    return entry, problems


def json_key(value):
    return tuple(sorted(value.items()))


def shown_path(account, path):
    """A path as the result shows it: the home as ~ (bytes count on a 2,000-byte line)."""
    home = account.home.rstrip("/") + "/"
    return "~/" + path[len(home) :] if path.startswith(home) else path
