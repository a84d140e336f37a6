"""What this instance has: the tools' paths and versions, the OS and architecture."""

import os
import platform
import pwd
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from .as_user import ROOT_PATH, USER_PATH
from .commands import run_command
from .host_clients import CLIENT_NAMES, clients_from_probes, version_tuple
from .params import unique
from .stores import CALLER_PATH, HELPER_NAME, UNIT_PATH

# Search path added to SSM's PATH: the AWS CLI v2 installer and release binaries live here.
EXTRA_PATH = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/aws-cli/v2/current/bin",
)


def search_path(environ):
    parts = [part for part in environ.get("PATH", "").split(os.pathsep) if part]
    return os.pathsep.join(unique(parts + list(EXTRA_PATH)))


def read_os_release(path="/etc/os-release"):
    info = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, sep, value = line.strip().partition("=")
                if sep:
                    info[key] = value.strip().strip("\"'")
    except OSError:
        pass
    return info


def os_label(info):
    if not info.get("ID"):
        return None
    return "%s-%s" % (info["ID"], info.get("VERSION_ID", "")) if info.get("VERSION_ID") else info["ID"]


def release_arch(machine):
    """The release binaries' architecture name for platform.machine(), or None."""
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)


def tool_output(argv, env):
    """(ran, output): whether the program could be run at all, and what it printed (stdout and stderr)."""
    try:
        completed = run_command(argv, env, stderr=subprocess.STDOUT)
    except (OSError, subprocess.SubprocessError):
        return False, ""
    # 126/127: a wrapper could not execute it; negative: killed by a signal (wrong CPU, crash).
    ran = completed.returncode >= 0 and completed.returncode not in (126, 127)
    return ran, completed.stdout.decode("utf-8", "replace")


def tool_probe(argv, pattern, env):
    """(ran, version): whether the program could be run at all, and the version it printed."""
    ran, output = tool_output(argv, env)
    match = re.search(pattern, output)
    return ran, match.group(1) if match else None


AWS_VERSION_RE = r"aws-cli/([0-9][0-9A-Za-z.+~-]*)"
HELPER_VERSION_RE = r"(?:Version:\s*)?\b([0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*)"


class Host(object):
    """What this instance has: the container clients, the tools' paths and versions, the OS, architecture."""

    def __init__(self, environ):
        self.path = search_path(environ)
        self.env = dict(environ)
        self.env["PATH"] = self.path
        self.os_info = read_os_release()
        self.machine = platform.machine()
        self.aws = shutil.which("aws", path=self.path)
        programs = [(name, shutil.which(name, path=self.path)) for name in CLIENT_NAMES]
        programs = [(name, program) for name, program in programs if program]
        # In parallel: the AWS CLI alone takes a few hundred milliseconds to print its version.
        with ThreadPoolExecutor(max_workers=2 + len(programs)) as pool:
            aws = pool.submit(self.probe, self.aws, ["--version"], AWS_VERSION_RE)
            helper = pool.submit(self.find_helper)
            outputs = [pool.submit(tool_output, [program, "--version"], self.env) for _, program in programs]
            probes = [(name, program) + output.result() for (name, program), output in zip(programs, outputs)]  # noqa: B905
            self.aws_version = aws.result()[1]
            helper.result()
        self.clients, self.docker_runs = clients_from_probes(probes)
        docker = self.client("docker")
        self.docker = docker.program if docker else None  # the docker CLI itself, not a `docker` shim
        self.docker_version = docker.version if docker else None

    def client(self, name):
        return next((client for client in self.clients if client.name == name), None)

    def probe(self, program, args, pattern):
        return tool_probe([program] + args, pattern, self.env) if program else (False, None)

    def find_helper(self):
        """The helper users' clients find (login PATH) and the one their cron jobs and units find
        (CALLER_PATH, None when none): it runs if each runs, and is as old as the oldest copy on any
        caller's PATH (those two, systemd units', root's login PATH; oldest_helper: where; an unknown
        version counts as the older)."""
        self.helper = shutil.which(HELPER_NAME, path=USER_PATH)
        self.caller_helper = shutil.which(HELPER_NAME, path=CALLER_PATH)
        main = unique([os.path.realpath(path) for path in (self.helper, self.caller_helper) if path])
        others = [shutil.which(HELPER_NAME, path=path) for path in (UNIT_PATH, ROOT_PATH)] if main else []
        found = unique(main + [os.path.realpath(path) for path in others if path])
        probes = [self.probe(path, ["-v"], HELPER_VERSION_RE) + (path,) for path in found] or [
            (False, None, None)
        ]
        self.helper_runs = all(probe[0] for probe in probes[: len(main) or 1])
        oldest = min(probes, key=lambda probe: version_tuple(probe[1]) or ())
        self.helper_version, self.oldest_helper = oldest[1], oldest[2]

    def summary(self):
        summary = {
            "os": os_label(self.os_info),
            "arch": self.machine,
            "docker": self.docker_version or (None if not self.docker else "unknown"),
            "aws_cli": self.aws_version or (None if not self.aws else "unknown"),
            "helper": self.helper_version or (None if not self.helper else "unknown"),
            "clients": {client.name: client.version or "unknown" for client in self.clients},
        }
        if self.docker_runs:  # `docker` is podman-docker's shim (or a link to nerdctl)
            summary["docker_runs"] = self.docker_runs
        return summary

    def root_env(self):
        """Environment for root's own tools: SSM sets no HOME, and the AWS CLI wants one."""
        env = dict(self.env)
        env.setdefault("HOME", pwd.getpwuid(0).pw_dir or "/root")
        env["AWS_PAGER"] = ""
        return env
