"""The three actions and what they work with (Run): `check` reports, `refresh` logs in, `helper` installs.

Every action works per user on the files that user's clients read (credential_files: each client of
the host, in each kind of session the user has, reads its own files in its own order).
refresh: one ECR token per region, verified once as the host's client's login would, stored where
each client reads first for that user and registry (a file, or the credential store it names).
helper: install the credential helper if missing (or too old for a registry), prove it for each user
and registry, then name it in every file a client reads the registry from, drop old tokens there.
check: a read-only report of every user x registry x client state and the agent's AWS identity."""

import os
import shutil
import stat
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

from .as_user import run_as_user
from .credential_files import FILE, NONE, Answer, UserCredentials, write_target
from .docker_login import verify_login
from .docker_model import auth_digest, basic_auth
from .go_json import ConfigRejected
from .helper_install import (
    IGNORE_CREDS_STORAGE_SINCE,
    install_helper,
    link_for_callers,
    minimum_version,
    upgrade_helper,
)
from .log import log
from .mounts import Mounts
from .orders import FileRef
from .outcomes import (
    AWS_CLI_MISSING,
    CONFIG_CORRUPT,
    CONFIG_UNSAFE,
    DOCKER_MISSING,
    ENVIRONMENT_UNKNOWN,
    FAILED,
    HELPER_INSTALL_FAILED,
    HELPER_TOO_OLD,
    INTERNAL_ERROR,
    NO_HOME,
    NO_SUCH_USER,
    SECRET_READABLE,
    STALE_CREDENTIALS,
    STATE_HELPER,
    STATE_NONE,
    AgentError,
)
from .params import AUTO_USERS, unique
from .readers import ReaderAccount, kubelet_entry, kubelet_file, report_unmanaged
from .records import is_fresh, load_records, record_for, remember_login, save_records
from .registry_states import combined_state, logged_in_state, registry_states, stale_stores
from .result import plural
from .stores import HELPER_CRED_NAME, HELPER_NAME, CredentialStores, older_than, too_old_message
from .system_env import ENVIRONMENT_FILE, IGNORE_CREDS_STORAGE, keep_user_docker_login
from .times import utc_now
from .tokens import caller_identity, fetch_tokens, token_source, token_sources
from .users import resolve_users
from .writing import held_by_inode, keep_shared_mode, restrict_as_user, save_config, shown_name

NO_CLIENT = "no container client found (docker, podman, skopeo, buildah, nerdctl)"


class Run(object):
    """Everything one action needs: parameters, host, the users to manage, the report, where state lives."""

    def __init__(self, params, host, report, state_dir):
        self.params = params
        self.host = host
        self.report = report
        self.state_dir = state_dir
        self.accounts, self.unknown = resolve_users(params.users, host)
        self.stores = {}
        self.mounts = Mounts()
        self.kubelet = kubelet_file()  # the file a running kubelet reads, or None
        self.readers = {}  # path -> names of the users whose clients read it

    def keeps_auths(self, path):
        """Whether a reader that runs no credential helper reads this file, so it stays auths-only:
        kubelet's, or one mounted on its own in another mount namespace (a container, a CI agent: its
        image need not have the helper, and docker's config code there would find credHelpers and
        nothing to run)."""
        try:
            info = os.stat(path)
        except OSError:
            return path == self.kubelet
        return path == self.kubelet or bool(stat.S_ISREG(info.st_mode) and self.mounts.readers(path, info)[0])

    def registries_of(self, account):
        """The managed registries, or of a reader's file (kubelet's) those it holds."""
        mine = getattr(account, "registries", None)
        return self.params.registries if mine is None else mine

    def stores_for(self, account):
        if account.name not in self.stores:
            self.stores[account.name] = CredentialStores(self.host, account)
        return self.stores[account.name]

    def load_user_configs(self):
        """[(account, user report, UserCredentials)] for users whose files are safe to read; the others
        reported.

        docker's own file, for the docker CLI and nerdctl, must load as it does today: a file docker
        would half-load (config_corrupt), an unsafe one, or none possible (no_home) stops that user.
        With `auto`, an account docker could keep no config for (no home, or one it may not write: a
        service account in the docker group) is listed with reason no_home, not as a failure.
        Readers left on a replaced copy of a file are reported; so are the readers the agent does not
        manage; kubelet's own file, when it has one, comes last, as a reader's entry."""
        loaded = []
        for name in self.unknown:
            self.report.problem(NO_SUCH_USER, "no such user: %s" % name, self.report.user(name))
        for account in self.accounts:
            user = self.report.user(account.name)
            try:
                creds = UserCredentials(self.host, account)
                for ref in creds.refs():
                    self.readers.setdefault(ref.path, []).append(account.name)
                for order in creds.orders:
                    creds.load(FileRef(order.docker_path))  # a home docker could use
                    if order.rules == "docker":
                        creds.docker_view(order)
                for variable, where in creds.unknown:
                    message = "%s: %s is set in %s by shell code the agent cannot evaluate" % (
                        account.name,
                        variable,
                        where,
                    )
                    if variable.startswith("what it sources"):  # user_env.ShellFile.source
                        message = "%s: %s sources a file the agent cannot read: %s" % (
                            account.name,
                            where,
                            variable,
                        )
                    log(message)
                    self.report.notices.append((ENVIRONMENT_UNKNOWN, message))
                for ref in creds.refs():
                    held_by_inode(self, account, user, ref.path)  # reports readers left on a replaced copy
                loaded.append((account, user, creds))
            except AgentError as error:
                if error.reason == NO_HOME and self.params.users == AUTO_USERS:
                    log(error.message)
                    user.reason = NO_HOME
                else:
                    self.report.problem(error.reason, error.message, user)
            except Exception as error:  # noqa: BLE001 - one user's surprise must not stop the others
                self.unexpected(user, error)
        report_unmanaged(self, loaded)
        entry = kubelet_entry(self)
        return loaded + [entry] if entry else loaded

    def unexpected(self, user, error):
        traceback.print_exc(file=sys.stderr)
        self.report.problem(INTERNAL_ERROR, "%s: unexpected %s" % (user.name, type(error).__name__), user)

    def per_user(self, loaded, step):
        """step(account, user, credentials) for each user; those whose step failed unexpectedly (reported
        as internal_error, traceback on stderr) are left out of what it returns, and the others go on."""
        done = []
        for entry in loaded:
            try:
                step(*entry)
                done.append(entry)
            except Exception as error:  # noqa: BLE001
                self.unexpected(entry[1], error)
        return done

    def note_problem(self, user, registry, problem):
        message = "%s@%s: %s" % (user.name, registry, problem.message)
        if problem.reason == STALE_CREDENTIALS:
            log(message)
            self.report.notices.append((STALE_CREDENTIALS, message))
        else:
            self.report.problem(problem.reason, message, user)

    def note_answers(self, account, user, registry, answered):
        """A registry's entry from every client's answer, and their problems."""
        entry, problems = combined_state(account, answered)
        user.registries[registry] = entry
        for problem in problems:
            self.note_problem(user, registry, problem)

    def guard_secrets(self, account, user, creds):
        """A credential file holding credentials, or a backup, that others may read: `check` reports it;
        the other actions make it owner-only (as the user: the owner stays) and report mode_tightened."""
        lax = []
        for auth_file in creds.loaded():
            if auth_file.backup_mode is not None:
                lax.append(
                    (auth_file.directory, auth_file.name + ".ecr-fleet-auth.bak", auth_file.backup_mode)
                )
            lax_file = auth_file.mode is not None and auth_file.mode & 0o077 and auth_file.holds_secrets()
            if lax_file and not keep_shared_mode(self, account, auth_file.path, auth_file.mode):
                lax.append((auth_file.directory, auth_file.name, auth_file.mode))
        for directory, name, mode in lax:
            shown = shown_name(account, os.path.join(directory, name))
            where = "%s: %s is %04o" % (account.name, shown, mode)
            if self.params.action == "check":
                self.report.problem(SECRET_READABLE, where + ": other users can read its credentials", user)
                continue
            try:
                run_as_user(account, restrict_as_user, directory, name)
            except AgentError as error:
                self.report.problem(error.reason, "%s: %s" % (where, error.message), user)
                continue
            self.report.tightened(user, shown, mode)


def no_client(run):
    if not run.host.clients:
        return run.report.result(FAILED, DOCKER_MISSING, NO_CLIENT)
    return None


def action_check(run):
    records = load_records(run.state_dir)
    region = token_source(run.params.registries[0])[1]
    with ThreadPoolExecutor(max_workers=1) as pool:  # the identity call overlaps reading the configs
        identity = pool.submit(caller_identity, run.host, region)

        def check_user(account, user, creds):
            for registry in run.registries_of(account):
                record = record_for(records, account, registry)
                answered = registry_states(creds, registry, record, run.stores_for(account))
                run.note_answers(account, user, registry, answered)
            run.guard_secrets(account, user, creds)

        run.per_user(run.load_user_configs(), check_user)
        arn, error = identity.result()
    run.report.host["identity"] = arn
    if not run.host.clients:
        run.report.problems.insert(0, (DOCKER_MISSING, NO_CLIENT))
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
    """One user x registry pair that refresh may have to log in: every file (or store) a client of the
    user reads it from first, and what each holds now."""

    def __init__(self, creds, user, registry, answered, targets):
        self.creds = creds
        self.account = creds.account
        self.user = user
        self.registry = registry
        self.answered = answered  # [(answer, state)] before the login
        self.targets = targets  # {path: Target}
        self.token = None

    def holds(self, digest):
        """Whether every target already holds the login with this fingerprint."""
        return all(target.digests == {digest} for target in self.targets.values())

    def fail(self, report, reason, message):
        report.problem(reason, "%s@%s: %s" % (self.account.name, self.registry, message), self.user)
        held = any(target.digests - {None} for target in self.targets.values())
        self.user.registries[self.registry] = {"state": "logged_in" if held else STATE_NONE, "error": reason}


class Target(object):
    """Where one login goes: a file's auths keys, or a store (a credential helper docker or a
    containers client stores with), and the fingerprints of what it holds there now."""

    def __init__(self, path, store, keys, digests):
        self.path = path
        self.store = store
        self.keys = keys
        self.digests = digests


def action_refresh(run):
    if no_client(run):
        return no_client(run)
    if not refresh_entries(run, run.load_user_configs()):
        return run.report.result(FAILED, AWS_CLI_MISSING, "AWS CLI not found")
    return run.report.result()


def refresh_entries(run, entries, only=None):
    """Log each (account, user report, credentials) entry in where its clients need it: refresh's work,
    and helper's for the files kubelet reads (`only`: the paths it may write). False when a login is
    needed and there is no AWS CLI to get a token with."""
    host, report = run.host, run.report
    records = load_records(run.state_dir)
    loaded, pending = plan_logins(run, records, entries, only)
    if pending and not host.aws:  # an instance fully on the helper needs no AWS CLI
        return False
    # A token is fetched only for regions where some login needs one.
    sources, endpoints = token_sources([login.registry for login in pending])
    tokens = fetch_tokens(host, sources, endpoints)
    writes = []
    for login in pending:
        token = tokens[token_source(login.registry)]
        if isinstance(token, AgentError):
            login.fail(report, token.reason, token.message)
            continue
        login.token = token
        if login.holds(auth_digest(basic_auth(token.username, token.password))):
            login_done(run, records, login)  # every client already reads this very token
        else:
            writes.append(login)
    # Each new token is checked once per registry, as the host's client logs in, storing nothing.
    refused = {}
    for registry in unique([login.registry for login in writes]):
        refused[registry] = verify_login(host, registry, writes_token(writes, registry))
    logged_in, into = set(), set()

    def write_user(account, user, creds):
        mine = [login for login in writes if login.account is account]
        for login in write_logins(run, (account, user, creds), mine, refused):
            login_done(run, records, login)
            logged_in.add(account.name)
            into.add(login.registry)
        run.guard_secrets(account, user, creds)

    run.per_user(loaded, write_user)
    if pending:
        save_records(run.state_dir, records)
    if logged_in:
        users = plural(len(logged_in), "user", "users")
        report.message_parts.append(
            "logged in %s to %s" % (users, plural(len(into), "registry", "registries"))
        )
    elif not pending and not report.problems:
        report.message_parts.append(
            "no login needed for %s" % plural(len(run.params.registries), "registry", "registries")
        )
    return True


def writes_token(writes, registry):
    return next(login.token for login in writes if login.registry == registry)


def plan_logins(run, records, entries, only=None):
    """(loaded users, logins that may need a token); helper-served and fresh ones are only reported.
    `only`: the paths a login may write (the others are left as they are)."""
    now = utc_now()
    pending = []

    def plan_user(account, user, creds):
        stores = run.stores_for(account)
        for registry in run.registries_of(account):
            record = record_for(records, account, registry)
            answered = registry_states(creds, registry, record, stores)
            targets, problems = login_targets(creds, registry, answered, stores)
            if only is not None:
                targets = {path: target for path, target in targets.items() if path in only}
            for problem in problems:
                run.note_problem(user, registry, problem)
            fresh = all(
                is_fresh(record, digest, now) for target in targets.values() for digest in target.digests
            )
            if not targets or fresh:
                run.note_answers(account, user, registry, answered)
            else:
                pending.append(Login(creds, user, registry, answered, targets))

    loaded = run.per_user(entries, plan_user)
    accounts = [entry[0] for entry in loaded]
    return loaded, [login for login in pending if login.account in accounts]


def login_targets(creds, registry, answered, stores):
    """({path: Target}, [problems]): where this registry's token must be for every client of the user."""
    targets, problems = {}, []
    for answer, _ in answered:
        target = write_target(creds, answer)
        if target is None or target[0] in targets:
            continue
        path, store = target
        try:
            if store:
                credential = stores.credential(store, registry)
                keys, digests = [registry], {credential.digest() if credential is not None else None}
            else:
                keys = [registry]
                if answer.kind == FILE and answer.path == path:
                    keys += [key for key in answer.keys if key.startswith(registry + "/")]
                digests = creds.digests(path, keys)
        except AgentError as error:
            if path not in creds.rejected:  # a rejected file is reported with its state already
                problems.append(error)
            continue
        except ConfigRejected as error:
            problems.append(AgentError(CONFIG_CORRUPT, "%s: %s" % (path, error)))
            continue
        targets[path] = Target(path, store, keys, digests)
    return targets, problems


def write_logins(run, loaded_user, logins, refused):
    """Store each verified token in every target of the user; returns the logins written.

    A store target goes to the helper (`store`, secret on stdin), leaving `{}` in a docker config as
    docker login does; a file target gets the registry's entry replaced: what each client's own login
    writes, without their rewrite of the rest of the file (docker and containers/image drop keys they
    do not know). One backup and one write per file."""
    account, user, creds = loaded_user
    done = []
    edited = {}
    for login in logins:
        if refused[login.registry] is not None:
            login.fail(run.report, refused[login.registry].reason, refused[login.registry].message)
            continue
        token = login.token
        new_digest = auth_digest(basic_auth(token.username, token.password))
        try:
            for target in login.targets.values():
                if target.digests == {new_digest}:
                    continue
                if target.store:
                    run.stores_for(account).store(
                        target.store, login.registry, token.username, token.password
                    )
                    mark_store_login(creds, target.path, login.registry, edited)
                else:
                    auth_file = creds.prepare(target.path)
                    auth_file.set_login(login.registry, token.username, token.password, target.keys)
                    edited[target.path] = auth_file
        except AgentError as error:
            login.fail(run.report, error.reason, error.message)
            continue
        done.append(login)
    failed = set()
    for path, auth_file in edited.items():
        if not auth_file.changed:
            continue
        try:
            creds.files[path] = save_config(run, account, user, auth_file)
        except AgentError as error:
            failed.add(path)
            run.report.problem(
                error.reason, "%s: %s not written: %s" % (account.name, path, error.message), user
            )
    for login in done:
        lost = [path for path, target in login.targets.items() if path in failed and not target.store]
        if lost:
            user.registries[login.registry] = {"state": STATE_NONE, "error": "config_unwritable"}
            continue
        log("%s: logged in to %s (%s)" % (account.name, login.registry, ", ".join(sorted(login.targets))))
        user.changed = True
        run.report.changes += 1
    return [login for login in done if not any(path in failed for path in login.targets)]


def mark_store_login(creds, path, registry, edited):
    """What a store `docker login` leaves in docker's file: `{}` under the exact key (containers/image's
    setAuthToCredHelper writes nothing to its file)."""
    for order, _ in creds.readers_of(path):
        if order.rules == "docker":
            auth_file, view = creds.docker_view(order)
            auth_file.mark_in_store(registry, view.auths.get(registry))
            edited[path] = auth_file


def login_done(run, records, login):
    """Record the login, and the registry's state now: every client that reads a target reads this token."""
    token = login.token
    remember_login(
        records,
        login.account,
        login.registry,
        auth_digest(basic_auth(token.username, token.password)),
        token.expires_at,
    )
    after = []
    for answer, before in login.answered:
        state = before
        target = write_target(login.creds, answer)
        if target is not None and target[0] in login.targets:
            answer.path = target[0]
            state = logged_in_state(token.expires_at)
        after.append((answer, state))
    entry, problems = combined_state(login.account, after)
    login.user.registries[login.registry] = entry
    for problem in problems:
        run.note_problem(login.user, login.registry, problem)


def action_helper(run):
    """A registry's credential is removed only once its replacement is proven: the helper is new
    enough for the registry's name (else the pinned release replaces it, or helper_too_old), found on
    every caller's PATH, and its `get` gives this user a token, as cron would run it (every client runs
    a credHelpers entry the same way: stores.CALLER_PATH); a registry that fails any of these keeps what
    it has in every file of that user, byte for byte, and the report says why."""
    host, report, params = run.host, run.report, run.params
    if no_client(run):
        return no_client(run)
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
    if params.keep_user_docker_login and usable:  # first: users' own logins must keep working
        try:
            if keep_user_docker_login():
                report.changes += 1
                log("%s=true set in %s" % (IGNORE_CREDS_STORAGE, ENVIRONMENT_FILE))
        except (AgentError, OSError) as error:
            why = getattr(error, "message", None) or str(error)
            report.problem(CONFIG_UNSAFE, "%s: %s: registries left as they are" % (ENVIRONMENT_FILE, why))
            usable = []
    report.host = host.summary()
    configured, already, kept = [], [], []

    def configure_user(account, user, creds):
        kubelets = [path for path in unique(ref.path for ref in creds.refs()) if run.keeps_auths(path)]
        if isinstance(account, ReaderAccount):  # kubelet's own file: kept auths-only, renewed below
            kept.append(((account, user, creds), kubelets))
            return
        stores = run.stores_for(account)
        proven = []
        for registry in usable:
            try:
                stores.verify(registry)  # before any edit: the replacement, proven for this user
                proven.append(registry)
            except AgentError as error:
                report.problem(error.reason, "%s@%s: %s" % (account.name, registry, error.message), user)
        stale = []  # where a token may lie in a store docker used, read before the file is edited
        for order in creds.orders:
            if order.rules == "docker" and order.files[0].path not in creds.rejected:
                stale += stale_stores(creds.docker_view(order)[1], proven)
        changed = configure_files(run, account, user, creds, proven)
        if changed is None:
            return
        if changed:
            log("%s: credHelpers set for %s in %s" % (account.name, ", ".join(proven), ", ".join(changed)))
            user.changed = True
            report.changes += 1
            configured.append(account)
        run.guard_secrets(account, user, creds)
        erase_from_stores(run, account, user, unique(stale))
        fresh = UserCredentials(run.host, account)
        for registry in params.registries:
            run.note_answers(account, user, registry, registry_states(fresh, registry, None, stores))
        if not changed and any(user.registries[r].get("state") == STATE_HELPER for r in proven):
            already.append(user)
        if kubelets:  # kept logins, renewed below
            kept.append(((account, user, fresh), kubelets))

    run.per_user(run.load_user_configs(), configure_user)
    for entry, paths in kept:
        report.message_parts.append("kept as logins for readers without the helper: %s" % ", ".join(paths))
        if not refresh_entries(run, [entry], only=paths):
            report.problem(AWS_CLI_MISSING, "AWS CLI not found: %s not renewed" % ", ".join(paths))
    if configured:
        report.message_parts.append("helper configured for %s" % plural(len(configured), "user", "users"))
    already = [user for user in already if user.reason is None]  # and still fine after the checks
    if already:
        count = plural(len(already), "user", "users")
        report.message_parts.append("helper already configured for %s" % count)
    report.message_parts.append(docker_login_note(run, configured or already))
    return report.result()


def prepare_helper(run, needed):
    """The registries the helper here can serve: at least the version each needs (else the pinned
    release is installed if it can be; else helper_too_old, with the versions), and found on every
    caller's PATH (else linked into /usr/bin)."""
    host, report = run.host, run.report
    old = [r for r in needed if older_than(host.helper_version, needed[r])]
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
        for registry in [r for r in old if older_than(host.helper_version, needed[r])]:
            message = too_old_message(registry, needed[registry], host.helper_version)
            where = host.oldest_helper
            report.problem(HELPER_TOO_OLD, "%s at %s (%s): its credentials are kept" % (message, where, why))
    if host.helper and not host.caller_helper:  # too old for none, or the upgrade did not link
        try:
            if link_for_callers(host, host.helper):
                report.changes += 1
                report.message_parts.append("%s linked into /usr/bin" % HELPER_NAME)
        except (AgentError, OSError) as error:
            log("cannot link the helper for every caller: %s" % error)
        host.find_helper()
    return [r for r in needed if not older_than(host.helper_version, needed[r])]


def helper_files(run, creds, registry):
    """The files that must name the helper for the registry: each docker-rules client's file, and for
    each containers client every file it reads the registry from (so a stale token there cannot answer
    before the helper), or where none holds it, the file its own login would write, and the runtime
    file its login writes when the user has that runtime directory (a podman login there then stores
    through the helper, as docker login does, instead of a token shadowing it). Never a file
    kubelet reads: it stays auths-only (readers.py)."""
    paths = []
    for order in creds.orders:
        if order.rules == "docker":
            paths.append(order.files[0].path)
            continue
        holding = []
        for ref in order.files:
            if ref.legacy or run.keeps_auths(ref.path):
                continue
            try:
                auth_file, view = creds.containers_view(order, ref)
            except AgentError:
                if creds.is_empty(ref):  # it stops the lookup, with nothing in it to lose: mended
                    holding.append(ref.path)
                continue
            if auth_file.exists and (view.helper_for(registry) is not None or view.keys_for(registry)):
                holding.append(ref.path)
        default = write_target(creds, Answer(order, NONE))
        if default and run.keeps_auths(default[0]):
            default = (order.config_path, "") if order.config_path else None
        paths += holding or ([default[0]] if default else [])
        login = order.files[0].path if order.files and not order.user_path else None
        if login not in (None, order.config_path, order.docker_path) and owned_dir(creds.account, login):
            paths.append(login)  # where the client's own login writes: it then stores through the helper
    return [path for path in unique(paths) if not run.keeps_auths(path)]


def owned_dir(account, path):
    """Whether the directory above the file's (the runtime directory) is the user's: there the user's
    client creates containers/auth.json at its login, and so may the agent."""
    try:
        info = os.lstat(os.path.dirname(os.path.dirname(path)))
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == account.uid


def configure_files(run, account, user, creds, registries):
    """credHelpers[registry] = ecr-login in every file a client reads the registry from, stale tokens
    removed; the paths written, or None when one could not be (reported)."""
    edits = {}
    for registry in registries:
        for path in helper_files(run, creds, registry):
            try:
                auth_file = creds.prepare(path)
            except AgentError as error:
                if path not in creds.rejected:
                    run.report.problem(error.reason, "%s: %s" % (account.name, error.message), user)
                continue
            views = list(auth_file.views.values())
            keys = unique(key for view in views for key in view.keys_for(registry))
            configured = any((view.cred_helpers or {}).get(registry) == HELPER_CRED_NAME for view in views)
            auth_file.use_helper(registry, keys, configured)
            if auth_file.changed:
                edits[path] = auth_file
    written = []
    for path, auth_file in edits.items():
        try:
            creds.files[path] = save_config(run, account, user, auth_file)
        except AgentError as error:
            run.report.problem(error.reason, "%s: %s" % (account.name, error.message), user)
            return None
        written.append(shown_name(account, path))
    return written


def docker_login_note(run, moved):
    """What happens to a user's own login (docker, podman, skopeo...) to a registry now served by the
    helper. Each stores through credHelpers[registry] (docker login; containers/image SetCredentials:
    setAuthToCredHelper), and ecr-login's `store` answers "not implemented" (ecr-login/ecr.go Add)
    unless 0.9.0+ runs with AWS_ECR_IGNORE_CREDS_STORAGE=true: with KeepUserDockerLogin the agent puts
    it in /etc/environment (system_env) before it moves any registry."""
    if not moved:
        return "users' own docker login still works: nothing was moved to the helper"
    if run.params.keep_user_docker_login:
        return "users' own docker login to these keeps working (%s, new sessions)" % ENVIRONMENT_FILE
    if not older_than(run.host.helper_version, IGNORE_CREDS_STORAGE_SINCE):
        return (
            "users' own docker login to these fails unless %s=true (podman's, skopeo's too where their "
            "file names the helper); pulls need none" % IGNORE_CREDS_STORAGE
        )
    return (
        "users' own docker login to these now fails (helper store: not implemented), podman's and "
        "skopeo's where their file names the helper (a token they store elsewhere: token_shadowed); "
        "pulls need none"
    )


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
