"""The real docker CLI as the judge of a config file: does it load it, which auths key does it read.

`docker context ls` loads the config and touches no network, so whether it warns is docker's own
verdict (cli/config/config.go `load`: "WARNING: Error parsing config file"); `docker login <host>`
without a password shows which auths key docker reads for a host ("[Username: ...]").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.prerequisites import require

DOCKER = "/usr/local/bin/docker"


def installed_docker_version() -> tuple[int, int] | None:
    if not os.access(DOCKER, os.X_OK):
        return None
    done = subprocess.run([DOCKER, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\d+)\.(\d+)", done.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


class RealDocker:
    """The docker CLI with a throwaway DOCKER_CONFIG, without network (a private net namespace as root)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        isolate = os.geteuid() == 0 and shutil.which("unshare") is not None
        self.prefix = ["unshare", "--net"] if isolate else []

    def run(self, config: bytes, *args: str) -> subprocess.CompletedProcess[str]:
        (self.folder / "config.json").write_bytes(config)
        return subprocess.run(
            [*self.prefix, DOCKER, *args],
            env={"DOCKER_CONFIG": str(self.folder), "PATH": "/usr/bin:/bin", "HOME": str(self.folder)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def loads(self, config: bytes) -> bool:
        """docker's verdict: it loads the file unless it prints its parse warning."""
        done = self.run(config, "context", "ls")
        return "WARNING: Error" not in done.stderr

    def username_for(self, config: bytes, host: str) -> str | None:
        """The user name docker finds for host in the file store (file_store.go Get), or None."""
        done = self.run(config, "login", host)
        match = re.search(r"\[Username: ([^\]]*)\]", done.stderr)
        return match.group(1) if match else None


def real_docker_in(folder: Path) -> RealDocker:
    """The docker CLI this machine has (a prerequisite: missing, the test is skipped, or fails under CI)."""
    require(installed_docker_version() is not None, f"docker CLI at {DOCKER}")
    return RealDocker(folder)
