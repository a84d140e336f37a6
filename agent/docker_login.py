"""Verifying a token the way `docker login` does, without docker storing it anywhere."""

import json
import os
import re
import shutil
import subprocess
import tempfile

from .commands import run_command
from .config_file import CONFIG_NAME
from .log import log, redact
from .outcomes import DOCKER_MISSING, LOGIN_FAILED, AgentError

# Where docker login gets its root-only scratch config (removed after); /tmp where there is no /run.
SCRATCH_DIR = "/run"

# docker login stores through this helper name, which exists nowhere: see verify_login.
NO_STORE_HELPER = "ecr-fleet-auth-verify-only"

# cli/command/registry/login.go storeCredentials: printed only after the registry accepted the login.
LOGIN_ACCEPTED_STORE_FAILED = "Error saving credentials"


def verify_login(host, registry, token):
    """None when the registry accepts the token, else an AgentError; as `docker login` checks it.

    docker runs as root with a scratch DOCKER_CONFIG (root-only, removed after) whose credHelpers
    send this registry to a helper that does not exist: docker authenticates with the registry
    (through the daemon, or client-side without one) and only then fails to store. So docker
    verifies the token and writes it nowhere; the agent writes it where each user's docker keeps it.
    """
    try:
        scratch = scratch_dir()
    except OSError as error:
        return AgentError(LOGIN_FAILED, "no scratch directory for docker login: %s" % error)
    try:
        with open(os.path.join(scratch, CONFIG_NAME), "w") as handle:
            json.dump({"credHelpers": {registry: NO_STORE_HELPER}}, handle)
        env = host.root_env()
        env["DOCKER_CONFIG"] = scratch
        argv = [host.docker, "login", "--username", token.username, "--password-stdin", registry]
        try:
            completed = run_command(argv, env, input=token.password.encode("utf-8"))
        except subprocess.TimeoutExpired:
            return AgentError(LOGIN_FAILED, "docker login to %s timed out" % registry)
        except OSError as error:
            return AgentError(DOCKER_MISSING, "cannot run docker: %s" % error)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    diagnostics = redact((completed.stderr + completed.stdout).decode("utf-8", "replace"), token.password)
    if completed.returncode == 0 or LOGIN_ACCEPTED_STORE_FAILED in diagnostics:
        log("registry %s accepted the token" % registry)
        return None
    return AgentError(LOGIN_FAILED, "docker login to %s failed: %s" % (registry, login_failure(diagnostics)))


def login_failure(diagnostics):
    """The telling line of a failed docker login: the registry's refusal if any endpoint gave one
    (docker tries https, then http, and prints the last endpoint's error at the end)."""
    lines = [line.strip() for line in diagnostics.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\b(401|403)\b|unauthori[sz]ed|denied|forbidden", line, re.IGNORECASE):
            match = re.search(r'error="(.*)"$', line)
            return (match.group(1) if match else line)[-200:]
    return (lines[-1] if lines else "no output")[-200:]


def scratch_dir():
    """A new root-only directory on /run (memory, never persisted), else in the temp directory."""
    try:
        return tempfile.mkdtemp(prefix="ecr-fleet-auth-login.", dir=SCRATCH_DIR)
    except OSError:
        return tempfile.mkdtemp(prefix="ecr-fleet-auth-login.")
