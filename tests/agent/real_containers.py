"""The real containers/image as the judge of credential files: does it load them, which file answers.

`skopeo login --get-login <host>` (and `podman login --get-login`) is containers/common's Login up to its
lookup (pkg/auth/auth.go: config.GetCredentials, then "--get-login" prints the user name found and
returns): no network, the client's own read order and parser. What it prints is the user name of the
file that answered, "not logged into" when none did, or the error that ended the lookup. Debian 12's
skopeo 1.9.3 and podman 4.3.1 are built against containers/image 5.23.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.prerequisites import require

SKOPEO = "/usr/bin/skopeo"
PODMAN = "/usr/bin/podman"


class RealContainers:
    """A containers client run as root with a throwaway HOME and XDG_RUNTIME_DIR, without network."""

    def __init__(self, folder: Path, program: str = SKOPEO) -> None:
        self.folder = folder
        self.program = program
        self.home = folder / "home"
        self.runtime = folder / "run"
        isolate = os.geteuid() == 0 and shutil.which("unshare") is not None
        self.prefix = ["unshare", "--net"] if isolate else []

    def reset(self, files: dict[str, bytes]) -> None:
        """Only these files (paths relative to the folder: home/..., run/..., other/...) exist."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for folder in (self.home, self.runtime):
            folder.mkdir(parents=True, mode=0o700)
        for relative, content in files.items():
            path = self.folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    def pull_refused_before_lookup(self, env: dict[str, str]) -> bool:
        """Whether `podman pull` refuses before any lookup because its --authfile (REGISTRY_AUTH_FILE,
        DOCKER_CONFIG/config.json: GetDefaultAuthFile) does not exist (cmd/podman/images/pull.go:
        CheckAuthFile, "checking authfile: stat ...: no such file or directory"); no network is
        reached either way."""
        base = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.runtime)}
        done = subprocess.run(
            [*self.prefix, self.program, "pull", "--quiet", "registry.invalid/none:1"],
            env={**base, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        refused = [line for line in done.stderr.splitlines() if line.startswith("Error: stat ")]
        return "checking authfile" in done.stderr or bool(refused)

    def get_login(self, host: str, env: dict[str, str] | None = None) -> tuple[str, str]:
        """(stdout, stderr) of `<client> login --get-login host`, HOME and XDG_RUNTIME_DIR in the folder."""
        base = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.runtime)}
        done = subprocess.run(
            [*self.prefix, self.program, "login", "--get-login", host],
            env={**base, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout.strip(), done.stderr.strip()


def real_containers_in(folder: Path, program: str = SKOPEO) -> RealContainers:
    """The containers client this machine has (a prerequisite: missing, the test is skipped, or fails
    under CI)."""
    require(Path(program).exists(), f"{program} (system-packages.txt)")
    return RealContainers(folder, program)
