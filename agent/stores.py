"""Credential helpers used as stores (docker-credential-<name>), run as the user's docker runs them."""

import json
import os
import re
import shutil
import subprocess

from .as_user import privilege_dropper, user_env
from .commands import run_command
from .docker_model import Credential
from .host_clients import version_tuple
from .log import redact
from .outcomes import HELPER_TOO_OLD, HELPER_UNAVAILABLE, HELPER_VERIFY_FAILED, STALE_CREDENTIALS, AgentError
from .params import fullmatch
from .user_env import user_environments

HELPER_NAME = "docker-credential-ecr-login"
HELPER_CRED_NAME = "ecr-login"
# The narrowest PATH a client runs with: cron's (crontab(5): PATH=/usr/bin:/bin), and /usr/bin is also all
# that systemd units' (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin) and login shells' PATHs share
# with it. Every client runs a credHelpers entry the same way, docker-credential-<name> looked up on its
# caller's PATH with its caller's environment (docker-credential-helpers client.NewShellProgramFunc, used
# by docker/cli, nerdctl and containers/image getAuthFromCredHelper alike): a helper is judged as a
# client run from there finds it (amazon-ecr-credential-helper #870, #117, #116, #52).
CALLER_PATH = "/usr/bin:/bin"
# The PATH systemd gives units (system and user managers) unless they set one: DEFAULT_PATH in
# systemd src/basic/path-util.h (PATH_NORMAL; split-usr builds add /sbin:/bin). The helper a client
# finds must be new enough on every caller's PATH: this one, cron's, and the user's login PATH.
UNIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
# Proxies the agent has from the SSM agent's unit are not its callers' (cron, login shells, other
# units): a helper is proven with those its callers' sessions set (user_env.HELPER_VARIABLE) only.
PROXY_VARIABLE = re.compile(r"(?i)^(https?|no|all)_proxy$")

# One call of a credential helper or store (docker waits forever; a hung one must not stall the run).
HELPER_TIMEOUT = 15

# docker-credential-helpers credentials/error.go: what `get` prints when it has nothing for a server.
CREDENTIALS_NOT_FOUND = "credentials not found in native keychain"

# native_store.go: a helper holding an identity token reports this user name.
TOKEN_USERNAME = "<token>"  # noqa: S105 - a marker user name, not a secret
HELPER_SUFFIX_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

# The first helper release whose `get` accepts each kind of registry name (ecr-login/api/client.go's
# ecrPattern by release; amazon-ecr-credential-helper CHANGELOG.md), first match wins; others: any
# release. An older one answers "credentials not found" for the name and the client pulls anonymously.
MINIMUM_VERSIONS = (
    (r"\.amazonaws\.eu$", (0, 11, 0)),  # the EU sovereign cloud (#1034)
    (r"^ecr-public\.aws\.com$", (0, 12, 0)),  # ECR Public's dual-stack name (#1055)
    (r"\.dkr-ecr|\.on\.aws$|\.on\.amazonwebservices\.com\.cn$", (0, 10, 0)),  # dual-stack (#967)
    (r"\.cloud\.adc-e\.uk$|\.csp\.hci\.ic\.gov$", (0, 9, 0)),  # ISO-E, ISO-F (#850)
    (r"\.c2s\.ic\.gov$|\.sc2s\.sgov\.gov$", (0, 8, 0)),  # C2S, SC2S (#433)
    (r"^public\.ecr\.aws$", (0, 5, 0)),  # ECR Public (#253)
    (r"\.dkr\.ecr-fips\.", (0, 2, 0)),  # FIPS endpoints
)


def helper_needs(registry):
    """The first credential-helper version that serves this registry name."""
    return next((since for pattern, since in MINIMUM_VERSIONS if re.search(pattern, registry)), (0, 0, 0))


def unique_envs(envs):
    kept = []
    for env in envs:
        if env not in kept:
            kept.append(env)
    return kept


def helper_version(host, program):
    """The version a helper program says it is (None when it does not say), asked once per run."""
    known = host.__dict__.setdefault("helper_versions", {})
    if program not in known:
        from .host import HELPER_VERSION_RE, tool_probe  # noqa: PLC0415 - host imports this module

        known[program] = tool_probe([program, "-v"], HELPER_VERSION_RE, {"PATH": CALLER_PATH})[1]
    return known[program]


def dotted(version):
    return ".".join(map(str, version))


def too_old_message(registry, needed, found):
    return "%s needs %s %s+, found %s" % (registry, HELPER_NAME, dotted(needed), found)


def older_than(version, needed):
    """Whether a helper of this version (a string; unknown: assumed current, its `get` is the proof)
    predates `needed`."""
    found = version_tuple(version)
    return found is not None and found < needed


def helper_too_old(version, registry):
    """An AgentError when the helper of this version (a tuple; None: unknown, assumed current) cannot serve
    the registry, else None."""
    needed = helper_needs(registry)
    if version is None or version >= needed:
        return None
    return AgentError(HELPER_TOO_OLD, too_old_message(registry, needed, dotted(version)))


class CredentialStores(object):
    """The credential helpers one user's docker runs, found and run as that user's docker would: on
    the user's PATH, with the user's privileges and environment, with docker's own protocol
    (docker-credential-helpers client/client.go, docker/cli credentials/native_store.go): `get` and
    `erase` read the server on stdin, `store` reads {"ServerURL","Username","Secret"}; answers come on
    stdout. A secret is only ever on a pipe and in memory: never in argv, a log or a file of ours."""

    def __init__(self, host, account):
        self.account = account
        self.host = host
        self.env = user_env(host, account)
        # helper name -> AgentError once it could not run; (helper name, server) -> what `get` gave
        # (a Credential, None for nothing, or the AgentError it raised); ("verify", server) likewise.
        self.known = {}

    def remember(self, key, func, *args):
        if key not in self.known:
            try:
                self.known[key] = func(*args)
            except AgentError as error:
                self.known[key] = error
        if isinstance(self.known[key], AgentError):
            raise self.known[key]
        return self.known[key]

    def call(self, name, action, stdin, extra_env=None):
        """(rc, stdout, stderr) of `docker-credential-<name> <action>`, or HELPER_UNAVAILABLE;
        extra_env's None values unset a variable."""
        program = "docker-credential-" + name
        why = self.known.get(name)
        env = dict(self.env, **(extra_env or {}))
        env = {key: value for key, value in env.items() if value is not None}
        if why is None:
            try:
                if not fullmatch(HELPER_SUFFIX_RE, name):
                    raise OSError("not a helper name")
                done = run_command(
                    [program, action],
                    env,
                    input=stdin,
                    timeout=HELPER_TIMEOUT,
                    preexec_fn=privilege_dropper(self.account),
                )
                if done.returncode >= 0 and done.returncode not in (126, 127):  # a wrapper's exec failed
                    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace")
                why = "exit status %d" % done.returncode
            except OSError as error:  # not on the PATH, not executable by the user, not a program
                why = error.strerror or str(error)
            except subprocess.TimeoutExpired:
                why = "no answer in time"
            where = (program, action, self.account.name, env["PATH"], why)
            why = self.known[name] = AgentError(HELPER_UNAVAILABLE, "%s %s as %s (PATH %s): %s" % where)
        raise why

    def credential(self, name, server):
        """What `docker-credential-<name> get` holds for server (None when nothing), as docker reads it."""
        return self.remember((name, server), self.get, name, server)

    def get(self, name, server):
        code, stdout, stderr = self.call(name, "get", server.encode("utf-8"))
        answer = stdout.decode("utf-8", "replace").strip()
        if code != 0:
            if answer == CREDENTIALS_NOT_FOUND:
                return None
            # By the protocol stdout carries the error here, never a secret.
            detail = (answer + " " + stderr.strip())[-200:]
            raise AgentError(HELPER_UNAVAILABLE, "docker-credential-%s get failed: %s" % (name, detail))
        try:
            data = json.loads(answer)
            username, secret = data.get("Username") or "", data.get("Secret") or ""
        except (ValueError, AttributeError):
            raise AgentError(HELPER_UNAVAILABLE, "docker-credential-%s get: not JSON" % name) from None
        if username == TOKEN_USERNAME:
            return Credential(identity_token=secret)
        return Credential(username, secret)

    def verify(self, server):
        """Raise why not unless ecr-login gives the user's docker a token for server (then discarded)."""
        self.remember(("verify", server), self.probe, server)

    def probe(self, server):
        """The helper's `get` as each of the user's callers runs it: every kind of session the user has
        (user_env: login shells, user units, cron and services), with the AWS settings and proxies
        that session has and no others (not the SSM agent's), on each caller's PATH (cron's, systemd
        units', the login PATH): each distinct helper found there must be new enough and answer."""
        environments = user_environments(self.account)[0] if os.path.isdir(self.account.home) else []
        sessions = unique_envs(env for environment in environments for env in environment.helper_envs)
        cleared = {name: None for name in self.env if PROXY_VARIABLE.match(name)}
        # Its cache (a file holding a token) off, its log nowhere (amazon-ecr-credential-helper
        # ecr-login/config: AWS_ECR_CACHE_DIR, else ~/.ecr; then TMPDIR): a read-only probe, fit for check.
        off = {"AWS_ECR_DISABLE_CACHE": "true", "AWS_ECR_CACHE_DIR": "/dev/null", "TMPDIR": "/dev/null"}
        tried = set()
        for path in (CALLER_PATH, UNIT_PATH, self.env["PATH"]):
            found = shutil.which(HELPER_NAME, path=path)
            helper = os.path.realpath(found) if found else None
            version = (
                getattr(self.host, "helper_version", None)
                if helper is None
                else helper_version(self.host, helper)
            )
            too_old = helper_too_old(version_tuple(version), server)
            if too_old is not None:
                raise AgentError(HELPER_TOO_OLD, "%s (%s, on PATH %s)" % (too_old.message, found, path))
            for session in sessions or [{}]:
                key = (helper, tuple(sorted(session.items())))
                if key in tried:
                    continue
                tried.add(key)
                extra = dict(cleared, **session)
                extra.update(off, PATH=path)
                code, stdout, stderr = self.call(HELPER_CRED_NAME, "get", server.encode("utf-8"), extra)
                if code:  # then stdout carries an error, not a token (the helper protocol)
                    detail = (stdout.decode("utf-8", "replace") + " " + stderr).strip()[-200:]
                    where = " ".join(
                        "%s=%s" % item for item in sorted(session.items()) if "PROXY" not in item[0].upper()
                    )
                    raise AgentError(
                        HELPER_VERIFY_FAILED,
                        "%s get failed (PATH %s%s): %s" % (HELPER_NAME, path, where and ", " + where, detail),
                    )

    def store(self, name, server, username, secret):
        payload = json.dumps({"ServerURL": server, "Username": username, "Secret": secret}) + "\n"
        code, stdout, stderr = self.call(name, "store", payload.encode("utf-8"))
        if code != 0:
            detail = redact(stdout.decode("utf-8", "replace") + " " + stderr, secret)[-200:]
            raise AgentError(HELPER_UNAVAILABLE, "docker-credential-%s store failed: %s" % (name, detail))
        self.known[(name, server)] = Credential(username, secret)

    def erase(self, name, server):
        code, stdout, stderr = self.call(name, "erase", server.encode("utf-8"))
        if code != 0:
            detail = (stdout.decode("utf-8", "replace") + " " + stderr).strip()[-200:]
            raise AgentError(STALE_CREDENTIALS, "docker-credential-%s erase failed: %s" % (name, detail))
        self.known[(name, server)] = None
