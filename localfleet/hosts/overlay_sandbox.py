"""A throwaway host: an overlay over this machine's / as a root, in private namespaces.

One holder process (`unshare --mount [--net] sleep infinity`) owns a private mount
namespace and, if asked, a network namespace with loopback only. The instance's
root is an overlayfs over the host's `/` whose writes land in a tmpfs; processes
run chrooted into it (`nsenter --root`), as root or as a user. Servers can run in
the namespace on the host's file view. The host reaches the instance's files
through /proc/<holder>/root. Closing kills every process started; the namespace
and its mounts die with the holder.

The agent's integration tests use one network-isolated sandbox per test module;
the local fleet gives each simulated instance its own sandbox on the host's
loopback, so that one runner, one SSM emulator and one registry serve them all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SERVERS = Path(__file__).parent / "servers"
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
INSTANCE_VENV = "/opt/ecr-fleet-auth/venv"  # where instances see the project's virtualenv
DOCKER_CLI = "/usr/local/bin/docker"
HELPER_BIN = "/usr/bin/docker-credential-ecr-login"
INSTANCE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


PIVOT_ROOT = shutil.which("pivot_root", path="/usr/sbin:/sbin:/usr/bin:/bin") or "pivot_root"
UMOUNT = shutil.which("umount", path="/usr/bin:/bin:/usr/sbin:/sbin") or "umount"

# Prefix for long-lived children: the kernel kills them if the test process dies without cleaning up.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL"]


class Sandbox:
    def __init__(self, workdir: Path, *, network: bool = True) -> None:
        self.workdir = workdir
        self.network = network
        self.root = workdir / "root"
        self.rw = workdir / "rw"
        self.root.mkdir(parents=True, exist_ok=True)
        self.rw.mkdir(exist_ok=True)
        self._servers: list[subprocess.Popen[bytes]] = []
        namespaces = ["--mount", "--net"] if network else ["--mount"]
        self._holder = subprocess.Popen(
            [*DIE_WITH_PARENT, "unshare", *namespaces, "--propagation", "private", "sleep", "infinity"]
        )
        try:
            self._wait_for_namespace()
            if network:
                self._ns(["ip", "link", "set", "lo", "up"])
            self.mount_root()
        except BaseException:
            self.close()
            raise

    # --- namespace plumbing
    def _wait_for_namespace(self) -> None:
        kind = "net" if self.network else "mnt"
        ours = os.readlink(f"/proc/self/ns/{kind}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self._holder.pid}/ns/{kind}") != ours:
                    return
            time.sleep(0.01)
        raise RuntimeError("unshare did not create the namespaces")

    def _nsenter(self) -> list[str]:
        return ["nsenter", "-t", str(self._holder.pid), "-m", *(["-n"] if self.network else [])]

    def _ns(self, argv: list[str]) -> None:
        subprocess.run(self._nsenter() + argv, check=True, capture_output=True, timeout=30)

    def mount_root(self) -> None:
        """A fresh overlay over the host's / as the instance root, with its own /proc, /dev, /run, /tmp,
        the host's /sys read-only (podman statfs()es /sys/fs/cgroup before anything else), and the
        project's virtualenv at a fixed path (the checkout may live under the hidden /tmp)."""
        root, rw = self.root, self.rw
        script = f"""set -e
mount -t tmpfs -o mode=0755 tmpfs {rw}
mkdir {rw}/upper {rw}/work
mount -t overlay overlay -o lowerdir=/,upperdir={rw}/upper,workdir={rw}/work {root}
mount --rbind /dev {root}/dev
mount --rbind /sys {root}/sys
mount -o remount,bind,ro {root}/sys
mount -t proc proc {root}/proc
mount -t tmpfs -o mode=0755 tmpfs {root}/run
mount -t tmpfs -o mode=1777 tmpfs {root}/tmp
mkdir -p {root}{INSTANCE_VENV}
mount --bind {VENV_BIN.parent} {root}{INSTANCE_VENV}
mount -o remount,bind,ro {root}{INSTANCE_VENV}
"""
        self._ns(["sh", "-c", script])

    def reset_root(self) -> None:
        """Throw the instance's changes away (servers keep running)."""
        self._ns(["sh", "-c", f"umount -R {self.root} && umount {self.rw}"])
        self.mount_root()

    def close(self) -> None:
        stop_processes(self._servers)
        if self._holder.poll() is None:
            self._holder.kill()
            self._holder.wait()

    # --- files inside the instance, seen from the test
    def path(self, inside: str) -> Path:
        return Path(f"/proc/{self._holder.pid}/root{self.root}{inside}")

    def write(self, inside: str, text: str | bytes, mode: int = 0o644) -> None:
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        target.write_bytes(data)
        os.chmod(target, mode)

    def changed_files(self) -> dict[str, tuple[bytes, int, int, int]]:
        """Every file the instance wrote since its root was mounted: path -> (content, mode, uid, mtime)."""
        upper = Path(f"/proc/{self._holder.pid}/root{self.rw}/upper")
        files = {}
        for path in upper.rglob("*"):
            if path.is_file() and not path.is_symlink():
                info = path.lstat()
                files["/" + str(path.relative_to(upper))] = (
                    path.read_bytes(),
                    info.st_mode,
                    info.st_uid,
                    info.st_mtime_ns,
                )
        return files

    def bind_file(self, host_path: str, inside: str) -> None:
        """Make a host file appear at `inside` in the instance (until the root is reset)."""
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        self._ns(["mount", "--bind", host_path, f"{self.root}{inside}"])

    def shell_in_namespace(self, script: str) -> None:
        """Root shell in the namespace on the host's file view (e.g. to mount something into the instance)."""
        self._ns(["sh", "-c", script])

    # --- processes
    def enter(self, cwd: str = "/") -> list[str]:
        """The command prefix that runs a program chrooted in the instance (root, its namespaces)."""
        # nsenter opens --root/--wd before entering the namespace: name them through the holder's view.
        inside = f"/proc/{self._holder.pid}/root{self.root}"
        return [*self._nsenter(), f"--root={inside}", f"--wd={inside}{cwd}"]

    def run(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        stdin: bytes | None = None,
        cwd: str = "/",
        timeout: float = 120,
        pivot: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv chrooted in the instance, as root or (with the user's groups) as `user`.

        pivot: in a mount namespace of its own whose root *is* the instance (pivot_root) instead of a
        chroot: the kernel lets no chrooted process create a user namespace (unshare(2), EPERM), which
        rootless podman needs."""
        if pivot:
            script = f'cd {self.root} && {PIVOT_ROOT} . mnt && cd {cwd} && {UMOUNT} -l /mnt && exec "$@"'
            prefix = [
                *self._nsenter(),
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ]
        else:
            prefix = self.enter(cwd)
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
        return subprocess.run(
            prefix + argv,
            env=env if env is not None else {"PATH": INSTANCE_PATH},
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def start_server(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A long-running process in the namespace (host file view); stopped by close()."""
        log = open(self.workdir / f"server-{len(self._servers)}.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [*DIE_WITH_PARENT, *self._nsenter(), *argv],
            env=env or {"PATH": os.environ.get("PATH", INSTANCE_PATH)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._servers.append(server)
        return server

    def server_log(self, server: subprocess.Popen[bytes]) -> Path:
        """Where a server started by start_server writes its output."""
        return self.workdir / f"server-{self._servers.index(server)}.log"

    # moto_server alone imports boto3 and moto for seconds; on a shared 2-core machine at a load of 20
    # the servers of one world took longer than 20 s to open (every test of a module then errors).
    # Only a server that never starts waits this long.
    def wait_for_ports(self, *ports: int, timeout: float = 90) -> None:
        self._ns([sys.executable, str(SERVERS / "wait_for_ports.py"), str(timeout), *map(str, ports)])

    def free_ports(self, count: int) -> list[int]:
        """Ports the kernel picks (bind to port 0) inside the namespace."""
        code = (
            "import socket,sys\n"
            "socks=[socket.socket() for _ in range(int(sys.argv[1]))]\n"
            "[s.bind(('127.0.0.1', 0)) for s in socks]\n"
            "print(' '.join(str(s.getsockname()[1]) for s in socks))\n"
        )
        done = subprocess.run(
            [*self._nsenter(), sys.executable, "-c", code, str(count)], capture_output=True, check=True
        )
        return [int(port) for port in done.stdout.split()]


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate, give each 5 s, then kill; the list is emptied."""
    for process in processes:
        with contextlib.suppress(OSError):
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    processes.clear()
