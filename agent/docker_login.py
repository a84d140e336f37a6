"""Verifying a token the way the host's own client logs in, without that client storing it anywhere.

docker CLI or nerdctl (in that order of preference): their login runs as root with a scratch
DOCKER_CONFIG (root-only, removed after) whose credHelpers send the registry to a helper that does not
exist, so the client authenticates with the registry and only then fails to store ("Error saving
credentials", docker/cli cli/command/registry/login.go; "error saving credentials", nerdctl
pkg/cmd/login/login.go, whose lookup of existing credentials first tolerates the missing helper).
The containers family (skopeo, podman, buildah) cannot be fooled that way: containers/common's Login
looks existing credentials up first and fails on a helper it cannot run, before contacting the registry
(pkg/auth/auth.go Login: config.GetCredentials, then docker.CheckAuth, then config.SetCredentials).
Its login gets an --authfile in a directory that cannot exist (under /proc/self) and a scratch HOME:
the lookup finds nothing, the registry is asked, and only storing fails, at SetCredentials' MkdirAll
(containers/image pkg/docker/config/config.go modifyJSON). So the token is checked by the client the
users pull with and written nowhere; the agent writes it where each user's clients read it.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

from .commands import run_command
from .docker_client import CONFIG_NAME
from .log import log, redact
from .outcomes import DOCKER_MISSING, LOGIN_FAILED, AgentError

# Where logins get their root-only scratch directory (removed after); /tmp where there is no /run.
SCRATCH_DIR = "/run"

# docker and nerdctl store through this helper name, which exists nowhere.
NO_STORE_HELPER = "ecr-fleet-auth-verify-only"
# The containers family's --authfile: its directory cannot be created (procfs), so storing fails.
NO_AUTHFILE_DIR = "/proc/self/ecr-fleet-auth-verify-only"
# What each client prints only after the registry accepted the login and storing failed.
ACCEPTED = {
    "docker": re.compile(r"Error saving credentials", re.IGNORECASE),
    "nerdctl": re.compile(r"error saving credentials", re.IGNORECASE),
    "containers": re.compile(re.escape("mkdir " + NO_AUTHFILE_DIR)),
}
# The containers family's clients, lightest first (skopeo needs no storage or runtime set-up).
CONTAINERS_LOGIN_ORDER = ("skopeo", "podman", "buildah")


def verifying_client(host):
    """(family, program) of the client whose login checks the token: the docker CLI, else nerdctl, else
    skopeo, podman or buildah; None when the host has none."""
    by_name = {client.name: client for client in host.clients}
    for name in ("docker", "nerdctl") + CONTAINERS_LOGIN_ORDER:
        if name in by_name and by_name[name].program:
            return ("containers" if name in CONTAINERS_LOGIN_ORDER else name), by_name[name].program
    return None


def verify_login(host, registry, token):
    """None when the registry accepts the token, else an AgentError; as the host's client logs in."""
    chosen = verifying_client(host)
    if chosen is None:
        return AgentError(DOCKER_MISSING, "no container client to log in with")
    family, program = chosen
    try:
        scratch = scratch_dir()
    except OSError as error:
        return AgentError(LOGIN_FAILED, "no scratch directory for a login: %s" % error)
    env = host.root_env()
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    argv = [program, "login", "--username", token.username, "--password-stdin", registry]
    try:
        if family == "containers":
            env.update(HOME=scratch, XDG_CONFIG_HOME=scratch)
            argv[2:2] = ["--authfile", os.path.join(NO_AUTHFILE_DIR, "auth.json")]
        else:
            with open(os.path.join(scratch, CONFIG_NAME), "w") as handle:
                json.dump({"credHelpers": {registry: NO_STORE_HELPER}}, handle)
            env["DOCKER_CONFIG"] = scratch
        try:
            completed = run_command(argv, env, input=token.password.encode("utf-8"))
        except subprocess.TimeoutExpired:
            return AgentError(
                LOGIN_FAILED, "%s login to %s timed out" % (os.path.basename(program), registry)
            )
        except OSError as error:
            return AgentError(DOCKER_MISSING, "cannot run %s: %s" % (program, error))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    diagnostics = redact((completed.stderr + completed.stdout).decode("utf-8", "replace"), token.password)
    if completed.returncode == 0 or ACCEPTED[family].search(diagnostics):
        log("registry %s accepted the token (%s login)" % (registry, os.path.basename(program)))
        return None
    what = "%s login to %s failed: %s" % (os.path.basename(program), registry, login_failure(diagnostics))
    return AgentError(LOGIN_FAILED, what)


def login_failure(diagnostics):
    """The telling line of a failed login: the registry's refusal if any endpoint gave one (docker
    tries https, then http, and prints the last endpoint's error at the end)."""
    lines = [line.strip() for line in diagnostics.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\b(401|403)\b|unauthori[sz]ed|denied|forbidden|invalid username", line, re.IGNORECASE):
            match = re.search(r'error="(.*)"$', line)
            return (match.group(1) if match else line)[-200:]
    return (lines[-1] if lines else "no output")[-200:]


def scratch_dir():
    """A new root-only directory on /run (memory, never persisted), else in the temp directory."""
    try:
        return tempfile.mkdtemp(prefix="ecr-fleet-auth-login.", dir=SCRATCH_DIR)
    except OSError:
        return tempfile.mkdtemp(prefix="ecr-fleet-auth-login.")
