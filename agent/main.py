"""The agent's entry: read the parameters, take the lock, run the action, print the result line."""

import os
import sys
import time
import traceback

from .actions import Run, action_check, action_helper, action_refresh
from .commands import DEADLINE, time_left
from .host import Host
from .lock import LOCK_FILE, acquire_lock
from .log import log
from .outcomes import FAILED, INTERNAL_ERROR, LOCKED, NOT_ROOT, OUT_OF_TIME, SKIPPED, AgentError
from .params import fullmatch, read_params
from .records import STATE_DIR
from .result import Report, result_line, shortened

# The document's step timeout (executionTimeoutSeconds), exported by the document's script; without it
# (the agent run by hand) the document's default. The agent stops a tenth of it (5 to 30 s) short.
TIMEOUT_ENV = "ECR_FLEET_AUTH_TIMEOUT"
DEFAULT_TIMEOUT = 600
ACTION_HANDLERS = {"refresh": action_refresh, "helper": action_helper, "check": action_check}


def run(environ, lock_path=LOCK_FILE, state_dir=STATE_DIR):
    """Do the requested action; returns the result dict (never raises for expected failures)."""
    report = Report(environ.get("SSM_Action"))
    timeout = environ.get(TIMEOUT_ENV, "")
    timeout = int(timeout) if fullmatch(r"[0-9]{1,5}", timeout) else DEFAULT_TIMEOUT
    # Stop short of the step's timeout: SSM kills the run there, and the result line with it.
    DEADLINE[0] = time.monotonic() + timeout - min(30, max(5, timeout // 10))
    try:
        params = read_params(environ)
    except AgentError as error:
        return report.result(FAILED, error.reason, error.message)
    if os.geteuid() != 0:
        return report.result(FAILED, NOT_ROOT, "the agent must run as root")
    try:
        lock_fd = acquire_lock(lock_path)
    except OSError as error:
        return report.result(FAILED, INTERNAL_ERROR, "cannot open lock %s: %s" % (lock_path, error))
    if lock_fd is None:
        return report.result(SKIPPED, LOCKED, "another ecr-fleet-auth run is in progress")
    try:
        host = Host(environ)
        report.host = host.summary()
        run = Run(params, host, report, state_dir)
        log("%s for users %s" % (params.action, ", ".join(a.name for a in run.accounts) or "(none)"))
        result = ACTION_HANDLERS[params.action](run)
        if time_left() <= 0:  # what was left undone failed at once: say why first
            message = "stopped short of the %d s step timeout; %s" % (timeout, result["message"])
            result.update(reason=OUT_OF_TIME, message=shortened(message))
            if params.action != "check":
                result["outcome"] = FAILED
        return result
    finally:
        os.close(lock_fd)


def main():
    try:
        result = run(os.environ)
    except Exception as error:  # the result line must appear whatever happened
        traceback.print_exc(file=sys.stderr)
        message = "unexpected %s" % type(error).__name__
        result = Report(os.environ.get("SSM_Action")).result(FAILED, INTERNAL_ERROR, message)
    sys.stdout.write(result_line(result) + "\n")
    sys.stdout.flush()
    return 1 if result["outcome"] == FAILED else 0
