"""The three actions and what they work with (Run): `check` reports, `refresh` logs in, `helper` installs.

refresh: one ECR token per region, verified once as `docker login` would, stored where each user's
docker keeps it (the config file, or the credential store it names).
helper: install the credential helper if missing, point each user's docker at it, drop old tokens.
check: a read-only report of every user x registry state and the agent's AWS identity."""

import os
import shutil
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

from .as_user import run_as_user
from .config_file import BACKUP_NAME, CONFIG_NAME
from .docker_login import verify_login
from .docker_model import DockerModel, auth_digest, basic_auth, docker_version_tuple
from .helper_install import (
    IGNORE_CREDS_STORAGE_SINCE,
    dotted,
    install_helper,
    link_for_callers,
    minimum_version,
    upgrade_helper,
)
from .log import log
from .mounts import Mounts
from .outcomes import (
    AWS_CLI_MISSING,
    CONFIG_UNSAFE,
    DOCKER_MISSING,
    FAILED,
    HELPER_INSTALL_FAILED,
    HELPER_TOO_OLD,
    INTERNAL_ERROR,
    NO_HOME,
    NO_SUCH_USER,
    SECRET_READABLE,
    STALE_CREDENTIALS,
    STATE_HELPER_UNAVAILABLE,
    STATE_LOGGED_IN,
    STATE_NONE,
    AgentError,
)
from .params import AUTO_USERS, unique
from .readers import ReaderAccount, kubelet_entry, kubelet_file, report_unmanaged
from .reading import read_config
from .records import is_fresh, load_records, record_expiry, record_for, remember_login, save_records
from .registry_states import logged_in_state, registry_state, stale_stores
from .result import plural
from .stores import HELPER_CRED_NAME, HELPER_NAME, CredentialStores, version_tuple
from .system_env import ENVIRONMENT_FILE, IGNORE_CREDS_STORAGE, keep_user_docker_login
from .times import utc_now
from .tokens import caller_identity, fetch_tokens, token_source
from .users import resolve_users
from .writing import held_by_inode, restrict_as_user, save_config


class Run(object):
    """Everything one action needs: parameters, host, the users to manage, the report, where state lives."""

    def __init__(self, params, host, report, state_dir):
        self.params = params
        self.host = host
        self.report = report
        self.state_dir = state_dir
        self.accounts, self.unknown = resolve_users(params.users)
        # docker's loader as of the host's docker CLI (all fields any version types when unknown).
        self.model = DockerModel(docker_version_tuple(host.docker_version))
        self.stores = {}
        self.mounts = Mounts()
        self.kubelet = kubelet_file()  # the file a running kubelet reads, or None

    def registries_of(self, account):
        """The managed registries, or of a reader's file (kubelet's) those it holds."""
        mine = getattr(account, "registries", None)
        return self.params.registries if mine is None else mine

    def read_by_kubelet(self, account):
        return (
            isinstance(account, ReaderAccount)
            or os.path.join(account.config_dir, CONFIG_NAME) == self.kubelet
        )

    def stores_for(self, account):
        if account.name not in self.stores:
            self.stores[account.name] = CredentialStores(self.host, account)
        return self.stores[account.name]

    def load_user_configs(self):
        """[(account, user report, auth file)] for users whose config is safe to read; the others reported.

        With `auto`, an account docker could keep no config for (no home, or one it may not write:
        a service account in the docker group) is listed with reason no_home, not as a failure."""
        loaded = []
        for name in self.unknown:
            self.report.problem(NO_SUCH_USER, "no such user: %s" % name, self.report.user(name))
        for account in self.accounts:
            user = self.report.user(account.name)
            try:
                loaded.append((account, user, read_config(account, self.model)))
                held_by_inode(self, account, user)  # reports readers left on a replaced copy
            except AgentError as error:
                if error.reason == NO_HOME and self.params.users == AUTO_USERS:
                    log(error.message)
                    user.reason = NO_HOME
                else:
                    self.report.problem(error.reason, error.message, user)
            except Exception as error:  # noqa: BLE001 - one user's surprise must not stop the others
                self.unexpected(user, error)
        report_unmanaged(self)
        entry = kubelet_entry(self)
        return loaded + [entry] if entry else loaded

    def unexpected(self, user, error):
        traceback.print_exc(file=sys.stderr)
        self.report.problem(INTERNAL_ERROR, "%s: unexpected %s" % (user.name, type(error).__name__), user)

    def per_user(self, loaded, step):
        """step(account, user, auth file) for each user; those whose step failed unexpectedly (reported as
        internal_error, traceback on stderr) are left out of what it returns, and the others go on."""
        done = []
        for entry in loaded:
            try:
                step(*entry)
                done.append(entry)
            except Exception as error:  # noqa: BLE001
                self.unexpected(entry[1], error)
        return done

    def note_state(self, user, registry, state):
        """Record a registry's state; a credential helper that cannot run is a problem, never health, and
        a stale token left beside the helper is worth a notice (and, in `check`, the reason)."""
        problem = state.pop("problem", None)
        user.registries[registry] = state
        if problem:
            message = "%s@%s: %s" % (user.name, registry, problem.message)
            if problem.reason == STALE_CREDENTIALS:
                log(message)
                self.report.notices.append((STALE_CREDENTIALS, message))
            else:
                self.report.problem(problem.reason, message, user)

    def guard_secrets(self, account, user, auth_file):
        """A config holding credentials, or a backup, that others may read: `check` reports it; the other
        actions make it owner-only (as the user: the owner stays) and report mode_tightened."""
        lax = [(BACKUP_NAME, auth_file.backup_mode)] if auth_file.backup_mode is not None else []
        if auth_file.mode is not None and auth_file.mode & 0o077 and auth_file.view.holds_secrets():
            lax.append((CONFIG_NAME, auth_file.mode))
        for name, mode in lax:
            where = "%s: %s is %04o" % (account.name, name, mode)
            if self.params.action == "check":
                self.report.problem(SECRET_READABLE, where + ": other users can read its credentials", user)
                continue
            try:
                run_as_user(account, restrict_as_user, account, name)
            except AgentError as error:
                self.report.problem(error.reason, "%s: %s" % (where, error.message), user)
                continue
            self.report.tightened(user, name, mode)


def action_check(run):
    records = load_records(run.state_dir)
    region = token_source(run.params.registries[0])[1]
    with ThreadPoolExecutor(max_workers=1) as pool:  # the identity call overlaps reading the configs
        identity = pool.submit(caller_identity, run.host, region)

        def check_user(account, user, auth_file):
            run.guard_secrets(account, user, auth_file)
            for registry in run.registries_of(account):
                record = record_for(records, account, registry)
                state = registry_state(auth_file, registry, record, run.stores_for(account))
                run.note_state(user, registry, state)

        run.per_user(run.load_user_configs(), check_user)
        arn, error = identity.result()
    run.report.host["identity"] = arn
    if not run.host.docker:
        run.report.problems.insert(0, (DOCKER_MISSING, "docker CLI not found"))
    run.report.message_parts.append(
        "checked %s x %s"
        % (
            plural(len(run.report.users), "user", "users"),
            plural(len(run.params.registries), "registry", "registries"),
        )
    )
    if arn is None:
        run.report.message_parts.append("no AWS identity for the agent: %s" % error)
    return run.report.result()


class Login(object):
    """One user x registry pair that refresh may have to log in, and where docker keeps its credential."""

    def __init__(self, account, user, registry, store, digest):
        self.account = account
        self.user = user
        self.registry = registry
        self.store = store  # credential helper docker stores it with ("" = the config file)
        self.digest = digest  # fingerprint of what docker holds now (None = nothing usable)
        self.token = None

    def fail(self, report, reason, message):
        report.problem(reason, "%s@%s: %s" % (self.account.name, self.registry, message), self.user)
        self.user.registries[self.registry] = {
            "state": STATE_NONE if self.digest is None else STATE_LOGGED_IN
        }
        self.user.registries[self.registry]["error"] = reason


def action_refresh(run):
    if not run.host.docker:
        return run.report.result(FAILED, DOCKER_MISSING, "docker CLI not found")
    refresh_entries(run, run.load_user_configs())
    return run.report.result()


def refresh_entries(run, entries):
    """Log each (account, user, auth file) entry in where it needs it (refresh's work, also helper's for
    files kubelet reads)."""
    host, report = run.host, run.report
    records = load_records(run.state_dir)
    loaded, pending = plan_logins(run, records, entries)
    if pending and not host.aws:  # an instance fully on the helper needs no AWS CLI
        return report.problem(AWS_CLI_MISSING, "AWS CLI not found")
    # A token is fetched only for regions where some login needs one.
    tokens = fetch_tokens(host, unique([token_source(login.registry) for login in pending]))
    writes = []
    for login in pending:
        token = tokens[token_source(login.registry)]
        if isinstance(token, AgentError):
            login.fail(report, token.reason, token.message)
            continue
        login.token = token
        if login.digest == auth_digest(basic_auth(token.username, token.password)):
            login_done(run, records, login)  # docker already holds this very token
        else:
            writes.append(login)
    # docker login checks each new token once per registry; docker writes nothing (see verify_login).
    refused = {}
    for registry in unique([login.registry for login in writes]):
        refused[registry] = verify_login(host, registry, writes_token(writes, registry))
    logged_in = set()

    def write_user(account, user, auth_file):
        mine = [login for login in writes if login.account is account]
        for login in write_logins(run, (account, user, auth_file), mine, refused):
            login_done(run, records, login)
            logged_in.add(account.name)
        if not auth_file.changed:
            run.guard_secrets(account, user, auth_file)

    run.per_user(loaded, write_user)
    if pending:
        save_records(run.state_dir, records)
    registries = plural(len(run.params.registries), "registry", "registries")
    if logged_in:
        report.message_parts.append(
            "logged in %s to %s" % (plural(len(logged_in), "user", "users"), registries)
        )
    else:
        report.message_parts.append("no login needed for %s" % registries)
    return None


def writes_token(writes, registry):
    return next(login.token for login in writes if login.registry == registry)


def plan_logins(run, records, entries):
    """(loaded configs, logins that may need a token); helper-managed and fresh ones are only reported."""
    now = utc_now()
    pending = []

    def plan_user(account, user, auth_file):
        stores = run.stores_for(account)
        for registry in run.registries_of(account):
            record = record_for(records, account, registry)
            store = auth_file.store_for(registry)
            if store == HELPER_CRED_NAME:
                run.note_state(user, registry, registry_state(auth_file, registry, record, stores))
                continue
            try:
                current = stores.credential(store, registry) if store else auth_file.file_credential(registry)
            except AgentError as error:
                state = {"state": STATE_HELPER_UNAVAILABLE, "helper": store, "problem": error}
                run.note_state(user, registry, state)
                continue
            digest = current.digest() if current is not None else None
            if is_fresh(record, digest, now):
                user.registries[registry] = logged_in_state(record_expiry(record, digest))
            else:
                pending.append(Login(account, user, registry, store, digest))

    loaded = run.per_user(entries, plan_user)
    accounts = [entry[0] for entry in loaded]
    return loaded, [login for login in pending if login.account in accounts]


def write_logins(run, loaded_user, logins, refused):
    """Store each verified token where docker keeps it for this user; returns the logins written.

    A store login goes to the helper (`store`, secret on stdin) and leaves `{}` in the file, a file
    login replaces the registry's entry: what `docker login` writes, without docker's rewrite of
    the rest of the file (docker drops keys it does not know). One backup and one write per user.
    """
    account, user, auth_file = loaded_user
    done = []
    for login in logins:
        if refused[login.registry] is not None:
            login.fail(run.report, refused[login.registry].reason, refused[login.registry].message)
            continue
        token = login.token
        if login.store:
            try:
                run.stores_for(account).store(login.store, login.registry, token.username, token.password)
            except AgentError as error:
                login.fail(run.report, error.reason, error.message)
                continue
            auth_file.mark_in_store(login.registry)
        else:
            auth_file.set_login(login.registry, token.username, token.password)
        done.append(login)
    if auth_file.changed:
        try:
            save_config(run, account, user, auth_file)
        except AgentError as error:
            in_file = [login for login in done if not login.store]
            for login in in_file:
                login.fail(run.report, error.reason, "config not written: %s" % error.message)
            if not in_file:  # the tokens are in the store; only docker's `{}` marker is missing
                run.report.problem(
                    error.reason, "%s: config not written: %s" % (account.name, error.message), user
                )
            done = [login for login in done if login.store]
    for login in done:
        log(
            "%s: logged in to %s%s"
            % (account.name, login.registry, " (%s)" % login.store if login.store else "")
        )
        user.changed = True
        run.report.changes += 1
    return done


def login_done(run, records, login):
    token = login.token
    remember_login(
        records,
        login.account,
        login.registry,
        auth_digest(basic_auth(token.username, token.password)),
        token.expires_at,
    )
    login.user.registries[login.registry] = logged_in_state(token.expires_at)


def action_helper(run):
    """A registry's credential is removed only once its replacement is proven: the helper is new
    enough for the registry's kind (else the pinned release replaces it, or helper_too_old), found on
    every caller's PATH, and its `get` gives this user a token, as cron would run it; a registry
    that fails any of these keeps what it has, byte for byte, and the report says why."""
    host, report, params = run.host, run.report, run.params
    if not host.docker:
        return report.result(FAILED, DOCKER_MISSING, "docker CLI not found")
    if not host.helper_runs:
        try:
            how = install_helper(params, host)
        except AgentError as error:
            return report.result(FAILED, error.reason, error.message)
        host.find_helper()
        if not host.helper_runs:
            return report.result(FAILED, HELPER_INSTALL_FAILED, "installed via %s but not runnable" % how)
        report.changes += 1
        report.message_parts.append("installed %s %s via %s" % (HELPER_NAME, host.helper_version or "", how))
    needed = {r: minimum_version(r, params.keep_user_docker_login) for r in params.registries}
    usable = prepare_helper(run, needed)
    report.host = host.summary()
    configured, already, kept = [], [], []

    def configure_user(account, user, auth_file):
        if run.read_by_kubelet(account):  # kubelet reads only auths: kept so, and renewed below
            log("%s: read by kubelet, kept as logins" % account.name)
            kept.append((account, user, auth_file))
            return
        stores = run.stores_for(account)
        proven = []
        for registry in usable:
            try:
                stores.verify(registry)  # before any edit: the replacement, proven for this user
                proven.append(registry)
            except AgentError as error:
                report.problem(error.reason, "%s@%s: %s" % (account.name, registry, error.message), user)
        stale = stale_stores(auth_file, proven)
        for registry in proven:
            auth_file.use_helper(registry)
        if auth_file.changed:
            try:
                auth_file = save_config(run, account, user, auth_file)
            except AgentError as error:
                report.problem(error.reason, "%s: %s" % (account.name, error.message), user)
                return
            log("%s: credHelpers set for %s" % (account.name, ", ".join(proven)))
            user.changed = True
            report.changes += 1
            configured.append(account)
        else:
            run.guard_secrets(account, user, auth_file)
            already.append(user)
        erase_from_stores(run, account, user, stale)
        for registry in params.registries:
            run.note_state(user, registry, registry_state(auth_file, registry, None, stores))

    run.per_user(run.load_user_configs(), configure_user)
    if kept:
        refresh_entries(run, kept)
    if configured:
        report.message_parts.append("helper configured for %s" % plural(len(configured), "user", "users"))
    already = [user for user in already if user.reason is None]  # and still fine after the checks
    if already:
        count = plural(len(already), "user", "users")
        report.message_parts.append("helper already configured for %s" % count)
    report.message_parts.append(docker_login_note(run, usable))
    return report.result()


def prepare_helper(run, needed):
    """The registries the helper here can serve: at least the version each needs (else the pinned
    release is installed if it is; else helper_too_old, with the versions), and found on every
    caller's PATH (else linked into /usr/bin)."""
    host, report = run.host, run.report
    old = [r for r in needed if version_tuple(host.helper_version) < needed[r]]
    if old:
        had, want = host.helper_version, max(needed[r] for r in old)
        why = "release %s installed" % run.params.helper_version
        try:
            upgrade_helper(run.params, host, want)
            report.changes += 1
            report.message_parts.append(
                "%s %s replaced by release %s" % (HELPER_NAME, had, run.params.helper_version)
            )
        except (AgentError, OSError) as error:
            why = getattr(error, "message", None) or str(error)
            log("no newer helper: %s" % why)
        host.find_helper()
        for registry in [r for r in old if version_tuple(host.helper_version) < needed[r]]:
            message = "%s needs %s %s+, found %s (%s): its credentials are kept" % (
                registry,
                HELPER_NAME,
                dotted(needed[registry]),
                host.helper_version,
                why,
            )
            report.problem(HELPER_TOO_OLD, message)
    if host.helper and not host.caller_helper:  # too old for none, or the upgrade did not link
        try:
            if link_for_callers(host, host.helper):
                report.changes += 1
                report.message_parts.append("%s linked into /usr/bin" % HELPER_NAME)
        except (AgentError, OSError) as error:
            log("cannot link the helper for every caller: %s" % error)
        host.find_helper()
    return [r for r in needed if version_tuple(host.helper_version) >= needed[r]]


def docker_login_note(run, usable):
    """What happens to a user's own `docker login` to a registry now served by the helper (see
    system_env): with KeepUserDockerLogin and helper 0.9.0+, it keeps succeeding."""
    if run.params.keep_user_docker_login:
        if not usable:
            return "users' own docker login still works: nothing was moved to the helper"
        try:
            if keep_user_docker_login():
                run.report.changes += 1
                log("%s=true set in %s" % (IGNORE_CREDS_STORAGE, ENVIRONMENT_FILE))
        except (AgentError, OSError) as error:
            run.report.problem(CONFIG_UNSAFE, "%s: %s" % (ENVIRONMENT_FILE, error))
            return "users' own docker login to these fails"
        return "users' own docker login to these keeps working (%s, new sessions)" % ENVIRONMENT_FILE
    if version_tuple(run.host.helper_version) >= IGNORE_CREDS_STORAGE_SINCE:
        return "users' own docker login to these fails unless %s=true; pulls need none" % IGNORE_CREDS_STORAGE
    return "users' own docker login to these now fails (helper store: not implemented); pulls need none"


def erase_from_stores(run, account, user, stale):
    """`erase` what those stores still hold (as docker logout would), once the config names the helper.
    What cannot be erased stays in the store, a token docker no longer uses for the registry but a
    secret all the same: reported (stale_credentials) until it is gone."""
    stores = run.stores_for(account)
    for name, server in stale:
        if not shutil.which("docker-credential-" + name, os.F_OK, stores.env["PATH"]):
            continue  # not installed where the user's docker looks: nothing there it could reach
        try:
            if stores.credential(name, server) is None:
                continue
            stores.erase(name, server)
        except AgentError as error:
            why = "a token for %s may still be in docker-credential-%s: %s" % (server, name, error.message)
            run.report.problem(STALE_CREDENTIALS, "%s: %s" % (account.name, why), user)
            continue
        log("%s: erased %s from docker-credential-%s" % (account.name, server, name))
        user.changed = True
        run.report.changes += 1
