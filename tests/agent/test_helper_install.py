"""Installing the credential helper (agent/helper_install.py): which package manager, which release."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent import helper_install, stores
from agent.helper_install import PROBE_TIMEOUT, package_manager, package_sources, probe, release_url
from agent.host import release_arch
from tests.agent.on_instance import STUBS


@pytest.mark.parametrize(
    ("os_release", "manager"),
    [
        ({"ID": "amzn", "VERSION_ID": "2"}, "yum"),
        ({"ID": "amzn", "VERSION_ID": "2023"}, "dnf"),
        ({"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "20.04"}, "apt"),
        ({"ID": "debian", "VERSION_ID": "11"}, "apt"),
        ({"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "8.9"}, None),
        ({}, None),
    ],
)
def test_package_manager_per_distribution(os_release: dict[str, str], manager: str) -> None:
    assert package_manager(os_release) == manager


def test_release_url_follows_the_official_layout() -> None:
    base = "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com/"
    assert release_url(base, "0.9.1", "arm64") == (
        "https://amazon-ecr-credential-helper-releases.s3.us-east-2.amazonaws.com"
        "/0.9.1/linux-arm64/docker-credential-ecr-login"
    )
    assert release_arch("x86_64") == "amd64"
    assert release_arch("aarch64") == "arm64"
    assert release_arch("s390x") is None


# ---------------------------------------------------------------- where the package manager downloads from

DEBIAN_12_SOURCES = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""
# AL2023's /etc/yum.repos.d/amazonlinux.repo: the host is made of dnf variables (/etc/dnf/vars).
AL2023_REPO = """[amazonlinux]
name=Amazon Linux 2023 repository
mirrorlist=https://al2023-repos-$awsregion-de612dc2.s3$dualstack.$awsregion.$awsdomain/core/mirrors/$releasever/$basearch/$mirrorlist
enabled=1

[amazonlinux-debuginfo]
mirrorlist=https://debuginfo.example.invalid/$basearch/mirror.list
enabled=0
"""


def files(root: Path, contents: dict[str, str]) -> str:
    for name, text in contents.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_apt_sources_in_both_formats_give_their_hosts(tmp_path: Path) -> None:
    """sources.list(5): one-line `deb [options] uri suite components` (comments start with #) and
    deb822 `.sources` stanzas with `URIs:`; only *.list and *.sources files are read."""
    root = files(
        tmp_path,
        {
            "/etc/apt/sources.list.d/debian.sources": DEBIAN_12_SOURCES,
            "/etc/apt/sources.list.d/extra.list": "# deb http://commented.example/ x main\n"
            "deb [arch=amd64 signed-by=/k.gpg] https://apt.example:8443/repo stable main\n",
            "/etc/apt/sources.list.d/old.list.disabled": "deb http://ignored.example/ x main\n",
        },
    )
    assert package_sources("apt", root) == [("apt.example", 8443), ("deb.debian.org", 80)]


@pytest.mark.parametrize(
    "contents",
    [
        {"/etc/apt/sources.list": "deb mirror+file:/etc/apt/mirrors.txt bookworm main\n"},
        {"/etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\n",
         "/etc/apt/apt.conf.d/90proxy": 'Acquire::http::Proxy "http://proxy.internal:3128";\n'},
        {},
    ],
    ids=["local-mirror-list", "apt-proxy", "no-sources"],
)  # fmt: skip
def test_apt_sources_the_agent_cannot_judge_are_not_judged(tmp_path: Path, contents: dict[str, str]) -> None:
    """A source through a proxy of apt's own, or not plain http(s), is tried, not probed."""
    assert package_sources("apt", files(tmp_path, contents)) is None


def test_dnf_variables_in_the_host_are_resolved_and_disabled_repositories_skipped(tmp_path: Path) -> None:
    root = files(
        tmp_path,
        {
            "/etc/yum.repos.d/amazonlinux.repo": AL2023_REPO,
            "/etc/dnf/vars/awsregion": "eu-west-1\n",
            "/etc/dnf/vars/awsdomain": "amazonaws.com\n",
            "/etc/dnf/vars/dualstack": "\n",
        },
    )
    assert package_sources("dnf", root) == [
        ("al2023-repos-eu-west-1-de612dc2.s3.eu-west-1.amazonaws.com", 443)
    ]
    (tmp_path / "etc/dnf/vars/awsdomain").unlink()
    assert package_sources("dnf", root) is None, "a host still holding a variable cannot be probed"


# ---------------------------------------------------------------- probing before a download


def answering_server() -> socket.socket:
    """A listener that answers any request with an HTTP status line (a mirror, or a proxy's error)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_probe_tells_an_answering_port_from_a_closed_one_a_black_hole_and_a_tarpit(tmp_path: Path) -> None:
    """A black hole (a listener whose accept queue is full: Linux drops further SYNs) is what a
    private subnet without NAT is to a public mirror: connect() hangs. A tarpit (a broken proxy: it
    takes the connection, here into a listener's queue, and never answers) would hold apt and urllib
    for each of their own timeouts. The probe gives up on both after PROBE_TIMEOUT, on a closed port
    at once; a source that answers anything (an HTTP error too) is reachable."""
    listening = answering_server()
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(5)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname(), timeout=2)
    targets = [listening.getsockname(), closed.getsockname(), hole.getsockname(), tarpit.getsockname()]
    helper_install.TLS_TARGETS.add(tarpit.getsockname())  # an https source: a handshake that never ends
    try:
        started = time.monotonic()
        answered = probe(targets)
        took = time.monotonic() - started
    finally:
        for sock in (listening, closed, hole, filler, tarpit):
            sock.close()
    assert [answered[target] for target in targets] == [True, False, False, False]
    assert PROBE_TIMEOUT - 1 < took < PROBE_TIMEOUT + 2, "all at once, bounded by one timeout"


# ---------------------------------------------------------------- a transaction is never stopped


class FakeHost:
    def __init__(self, path: str) -> None:
        self.path = path

    def root_env(self) -> dict[str, str]:
        stub = {name: value for name, value in os.environ.items() if name.startswith("ECR_FLEET_AUTH_STUB_")}
        return {"PATH": self.path, **stub}


def stub_package_manager(folder: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tests/agent/stubs/package-manager.sh as `name`, on a PATH of its own, recording in folder and
    installing into folder/installed."""
    monkeypatch.setenv("ECR_FLEET_AUTH_STUB_DIR", str(folder))
    monkeypatch.setenv("ECR_FLEET_AUTH_STUB_TARGET", str(folder / "installed"))
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / name
    program.write_bytes((STUBS / "package-manager.sh").read_bytes())
    program.chmod(0o755)
    (folder / "calls.log").write_text("")
    (folder / "payload").write_text("")
    return bin_dir


def test_a_transaction_that_outlasts_the_runs_deadline_is_not_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping dpkg, rpm or yum mid-transaction can leave the package database needing repair
    (dpkg: "dpkg was interrupted, you must manually run 'dpkg --configure -a'"). Here the run's
    deadline passes as soon as the transaction has begun, and the transaction still runs to its end
    (the stub pauses 2 s in it and installs into a scratch file)."""
    bin_dir = stub_package_manager(tmp_path, "dnf", monkeypatch)
    (tmp_path / "transaction-seconds").write_text("2")
    clock = {"left": 1000.0}
    monkeypatch.setattr(helper_install, "time_left", lambda: clock["left"])
    real_run = subprocess.run

    def run(argv: list[str], **options: Any) -> Any:
        if "--cacheonly" in argv:
            clock["left"] = -1.0
        return real_run(argv, **options)

    monkeypatch.setattr(subprocess, "run", run)

    assert helper_install.install_with_package_manager(FakeHost(f"{bin_dir}:/usr/bin:/bin"), "dnf")
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        "dnf install -y --downloadonly --setopt=timeout=20 amazon-ecr-credential-helper",
        "dnf install -y --cacheonly amazon-ecr-credential-helper",
        "dnf transaction done",
    ]
    assert (tmp_path / "installed").exists()


def test_no_transaction_starts_without_the_time_to_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = stub_package_manager(tmp_path, "dnf", monkeypatch)
    monkeypatch.setattr(helper_install, "time_left", lambda: helper_install.TRANSACTION_SECONDS - 1.0)
    assert not helper_install.install_with_package_manager(FakeHost(f"{bin_dir}:/usr/bin:/bin"), "dnf")
    assert (tmp_path / "calls.log").read_text() == "", "not even the download: nothing could follow it"
    assert not (tmp_path / "installed").exists()


@pytest.mark.parametrize(
    ("registry", "needed"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "0.0.0"),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "0.2.0"),
        ("public.ecr.aws", "0.5.0"),
        ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "0.8.0"),
        ("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "0.8.0"),
        ("123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "0.9.0"),
        ("123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "0.9.0"),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", "0.10.0"),
        ("123456789012.dkr-ecr-fips.us-west-2.on.aws", "0.10.0"),
        ("123456789012.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn", "0.10.0"),
        ("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "0.11.0"),
        ("ecr-public.aws.com", "0.12.0"),
    ],
)
def test_each_registry_kind_needs_the_first_release_that_knows_it(registry: str, needed: str) -> None:
    """amazon-ecr-credential-helper CHANGELOG.md: 0.2.0 FIPS endpoints, 0.5.0 ECR Public (#253), 0.8.0
    the C2S pattern (#433), 0.9.0 the new isolated regions (#850), 0.10.0 dual-stack (#967), 0.11.0 the
    EUSC partition (#1034), 0.12.0 ECR Public's dual-stack endpoint (#1055); `get` for a name the
    pattern does not match answers "credentials not found in native keychain" (ecr-login/ecr.go)."""
    assert stores.dotted(helper_install.minimum_version(registry)) == needed
    assert helper_install.minimum_version(registry, keep_user_login=True) >= (0, 9, 0)


class DivertHost:
    """What link_for_callers needs of the host: a PATH with dpkg-divert (here a stand-in that records
    its arguments) and root's environment."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder)

    def root_env(self) -> dict[str, str]:
        return {"PATH": self.path + ":/usr/bin:/bin"}


@pytest.mark.parametrize("killed_at", range(5))
def test_the_callers_helper_never_goes_missing_whenever_the_swap_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_at: int
) -> None:
    """The package's binary in /usr/bin replaced by a link to the release, the run SIGKILLed before
    each of its steps (symlink to a temp name, hard link to .distrib, dpkg-divert, rename over the
    name) or not at all: at every point the name exists and runs a helper (the old or the new one),
    and a second run completes the swap. dpkg-divert(1): without --rename (the default) the diversion
    only records where the package's upgrades go; rename(2) replaces the name atomically."""
    bin_dir, tools = tmp_path / "usr-bin", tmp_path / "tools"
    bin_dir.mkdir()
    tools.mkdir()
    name = bin_dir / stores.HELPER_NAME
    name.write_text("#!/bin/sh\necho 0.6.0\n")
    name.chmod(0o755)
    release = tmp_path / "release"
    release.write_text("#!/bin/sh\necho 0.12.0\n")
    release.chmod(0o755)
    divert = tools / "dpkg-divert"
    divert.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/diversions\n')
    divert.chmod(0o755)
    steps = [0]

    def step(real: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if steps[0] == killed_at:
                os._exit(9)  # as SIGKILL: no finally, no cleanup
            steps[0] += 1
            return real(*args, **kwargs)

        return wrapped

    host = DivertHost(tools)
    pid = os.fork()
    if pid == 0:
        monkeypatch.setattr(os, "symlink", step(os.symlink))
        monkeypatch.setattr(os, "link", step(os.link))
        monkeypatch.setattr(helper_install, "run_command", step(helper_install.run_command))
        monkeypatch.setattr(os, "rename", step(os.rename))
        try:
            helper_install.link_for_callers(host, str(release), str(bin_dir))  # type: ignore[arg-type]
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] >> 8 == (9 if killed_at < 4 else 0)
    ran = subprocess.run([str(name)], capture_output=True, check=True).stdout
    assert ran == (b"0.12.0\n" if killed_at == 4 else b"0.6.0\n")

    helper_install.link_for_callers(host, str(release), str(bin_dir))  # type: ignore[arg-type]
    assert os.readlink(name) == str(release)
    assert (bin_dir / (stores.HELPER_NAME + ".distrib")).read_text() == "#!/bin/sh\necho 0.6.0\n"
    assert f"--local --divert {name}.distrib --add {name}" in (tmp_path / "diversions").read_text()
    assert not list(bin_dir.glob("*.tmp"))
