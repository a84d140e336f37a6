"""What this instance has: the tools' paths and versions, the OS and architecture."""

import os
import platform
import pwd
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from .as_user import USER_PATH
from .commands import run_command
from .params import unique
from .stores import CALLER_PATH, HELPER_NAME, version_tuple

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


def tool_probe(argv, pattern, env):
    """(ran, version): whether the program could be run at all, and the version it printed."""
    try:
        completed = run_command(argv, env, stderr=subprocess.STDOUT)
    except (OSError, subprocess.SubprocessError):
        return False, None
    # 126/127: a wrapper could not execute it; negative: killed by a signal (wrong CPU, crash).
    ran = completed.returncode >= 0 and completed.returncode not in (126, 127)
    match = re.search(pattern, completed.stdout.decode("utf-8", "replace"))
    return ran, match.group(1) if match else None


DOCKER_VERSION_RE = r"version ([0-9][0-9A-Za-z.+~-]*)"
AWS_VERSION_RE = r"aws-cli/([0-9][0-9A-Za-z.+~-]*)"
HELPER_VERSION_RE = r"(?:Version:\s*)?\b([0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*)"


class Host(object):
    """What this instance has: the tools' paths and versions, the OS and architecture."""

    def __init__(self, environ):
        self.path = search_path(environ)
        self.env = dict(environ)
        self.env["PATH"] = self.path
        self.os_info = read_os_release()
        self.machine = platform.machine()
        self.docker = shutil.which("docker", path=self.path)
        self.aws = shutil.which("aws", path=self.path)
        # In parallel: the AWS CLI alone takes a few hundred milliseconds to print its version.
        with ThreadPoolExecutor(max_workers=3) as pool:
            docker = pool.submit(self.probe, self.docker, ["--version"], DOCKER_VERSION_RE)
            aws = pool.submit(self.probe, self.aws, ["--version"], AWS_VERSION_RE)
            helper = pool.submit(self.find_helper)
            self.docker_version, self.aws_version = docker.result()[1], aws.result()[1]
            helper.result()

    def probe(self, program, args, pattern):
        return tool_probe([program] + args, pattern, self.env) if program else (False, None)

    def find_helper(self):
        """The helper users' docker finds (login PATH) and the one their cron jobs and units find
        (CALLER_PATH, None when none): it runs if each runs, and is as old as the older one."""
        self.helper = shutil.which(HELPER_NAME, path=USER_PATH)
        self.caller_helper = shutil.which(HELPER_NAME, path=CALLER_PATH)
        found = unique([os.path.realpath(path) for path in (self.helper, self.caller_helper) if path])
        probes = [self.probe(path, ["-v"], HELPER_VERSION_RE) for path in found] or [(False, None)]
        self.helper_runs = all(ran for ran, _ in probes)
        self.helper_version = min((version for _, version in probes), key=version_tuple)

    def summary(self):
        return {
            "os": os_label(self.os_info),
            "arch": self.machine,
            "docker": self.docker_version or (None if not self.docker else "unknown"),
            "aws_cli": self.aws_version or (None if not self.aws else "unknown"),
            "helper": self.helper_version or (None if not self.helper else "unknown"),
        }

    def root_env(self):
        """Environment for root's own tools: SSM sets no HOME, and the AWS CLI wants one."""
        env = dict(self.env)
        env.setdefault("HOME", pwd.getpwuid(0).pw_dir or "/root")
        env["AWS_PAGER"] = ""
        return env
