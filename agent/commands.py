"""Running a tool: subprocess with the agent's defaults, bounded by its timeout and the run's deadline
(which downloads keep to as well)."""

import subprocess
import time

# When the run must wrap up (time.monotonic()); set by main.run from the document's timeout.
DEADLINE = [float("inf")]


def time_left():
    return DEADLINE[0] - time.monotonic()


COMMAND_TIMEOUT = 120


def run_command(argv, env, **options):
    """subprocess.run with the agent's defaults: no stdin, output captured, cwd / (the script's dir is
    root-only, and user steps must not start there), a timeout so one stuck tool cannot hang the run,
    and never past the run's deadline (TimeoutExpired at once when it has passed)."""
    if "input" not in options:  # Python 3.6 refuses stdin next to input, even None
        options.setdefault("stdin", subprocess.DEVNULL)
    options.setdefault("stdout", subprocess.PIPE)
    options.setdefault("stderr", subprocess.PIPE)
    timeout = min(options.pop("timeout", COMMAND_TIMEOUT), time_left())
    if timeout <= 0:
        raise subprocess.TimeoutExpired(argv, 0)
    return subprocess.run(argv, check=False, env=env, cwd="/", timeout=timeout, **options)
