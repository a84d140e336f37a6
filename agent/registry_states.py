"""The state of each user x registry pair: helper, logged in (and until when), stale, none, unavailable."""

from .outcomes import (
    STALE_CREDENTIALS,
    STATE_HELPER,
    STATE_HELPER_UNAVAILABLE,
    STATE_LOGGED_IN,
    STATE_NONE,
    STATE_STALE_AUTH,
    AgentError,
)
from .params import unique
from .records import record_expiry
from .stores import HELPER_CRED_NAME
from .times import format_time, utc_now


def registry_state(auth_file, registry, record, stores):
    """helper / stale_auth / helper_unavailable / logged_in (+ expires_at when known) / none.

    `stores` (CredentialStores) runs the user's credential helpers as docker would. A state that is a
    problem carries it as "problem" (an AgentError), which Run.note_state reports and takes out.
    """
    name = auth_file.store_for(registry)
    try:
        if name == HELPER_CRED_NAME:
            stores.verify(registry)
            stale = ["auths." + key for key in auth_file.stale_secret_keys(registry)]
            for store, server in stale_stores(auth_file, [registry]):
                try:
                    if stores.credential(store, server) is not None:
                        stale.append("docker-credential-%s (%s)" % (store, server))
                except AgentError:
                    pass  # a store docker cannot run hands nothing to anyone
            if stale:
                why = "a token from before the helper is still in %s" % ", ".join(stale)
                return {"state": STATE_STALE_AUTH, "problem": AgentError(STALE_CREDENTIALS, why)}
            return {"state": STATE_HELPER}
        credential = stores.credential(name, registry) if name else auth_file.file_credential(registry)
    except AgentError as error:
        return {"state": STATE_HELPER_UNAVAILABLE, "helper": name, "problem": error}
    if credential is None or not credential.is_secret:
        return {"state": STATE_NONE}
    return logged_in_state(record_expiry(record, credential.digest()))


def logged_in_state(expires_at):
    state = {"state": STATE_LOGGED_IN}
    if expires_at is not None:
        state["expires_at"] = format_time(expires_at)
        if expires_at <= utc_now():
            state["expired"] = True
    return state


def stale_stores(auth_file, registries):
    """[(helper, server)] where a credential for a managed registry may lie in a store once the helper
    serves it: the server forms `docker logout` erases (logout.go: host, http://host, https://host),
    in the store docker used for each and in the default credsStore."""
    found = []
    for registry in registries:
        forms = [registry, "http://" + registry, "https://" + registry]
        names = unique([auth_file.store_for(form) for form in forms] + [auth_file.view.creds_store])
        for name in names:
            if name and name != HELPER_CRED_NAME:
                found.extend((name, form) for form in forms)
    return unique(found)
