"""Credential helpers used as stores (docker-credential-<name>), run as the user's docker runs them."""

import json
import re
import subprocess

from .as_user import privilege_dropper, user_env
from .commands import run_command
from .docker_model import Credential
from .log import redact
from .outcomes import HELPER_UNAVAILABLE, HELPER_VERIFY_FAILED, STALE_CREDENTIALS, AgentError
from .params import fullmatch

HELPER_NAME = "docker-credential-ecr-login"
HELPER_CRED_NAME = "ecr-login"
# The narrowest PATH docker runs with: cron's (crontab(5): PATH=/usr/bin:/bin), and /usr/bin is also all
# that systemd units' (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin) and login shells' PATHs share
# with it. A helper is judged as docker run from there finds it (helper #870, #117, #116, #52).
CALLER_PATH = "/usr/bin:/bin"

# One call of a credential helper or store (docker waits forever; a hung one must not stall the run).
HELPER_TIMEOUT = 15

# docker-credential-helpers credentials/error.go: what `get` prints when it has nothing for a server.
CREDENTIALS_NOT_FOUND = "credentials not found in native keychain"

# native_store.go: a helper holding an identity token reports this user name.
TOKEN_USERNAME = "<token>"  # noqa: S105 - a marker user name, not a secret
HELPER_SUFFIX_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def version_tuple(version):
    """(major, minor, patch) of a version such as 0.6.0 or 0.6.0-1; (0, 0, 0) when unknown."""
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", version or "")
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


class CredentialStores(object):
    """The credential helpers one user's docker runs, found and run as that user's docker would: on
    the user's PATH, with the user's privileges and environment, with docker's own protocol
    (docker-credential-helpers client/client.go, docker/cli credentials/native_store.go): `get` and
    `erase` read the server on stdin, `store` reads {"ServerURL","Username","Secret"}; answers come on
    stdout. A secret is only ever on a pipe and in memory: never in argv, a log or a file of ours."""

    def __init__(self, host, account):
        self.account = account
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
        """(rc, stdout, stderr) of `docker-credential-<name> <action>`, or HELPER_UNAVAILABLE."""
        program = "docker-credential-" + name
        why = self.known.get(name)
        env = dict(self.env, **(extra_env or {}))
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
        # Its cache (a file holding a token) off, its log nowhere (amazon-ecr-credential-helper
        # ecr-login/config: AWS_ECR_CACHE_DIR, else ~/.ecr; then TMPDIR): a read-only probe, fit for check.
        # Found on the narrowest PATH docker's callers give it (cron's), not the user's login PATH.
        off = {"AWS_ECR_DISABLE_CACHE": "true", "AWS_ECR_CACHE_DIR": "/dev/null", "TMPDIR": "/dev/null"}
        off["PATH"] = CALLER_PATH
        code, stdout, stderr = self.call(HELPER_CRED_NAME, "get", server.encode("utf-8"), off)
        if code:  # then stdout carries an error, not a token (the helper protocol)
            detail = (stdout.decode("utf-8", "replace") + " " + stderr).strip()[-200:]
            raise AgentError(HELPER_VERIFY_FAILED, "%s get failed: %s" % (HELPER_NAME, detail))

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
