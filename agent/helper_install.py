"""Installing amazon-ecr-credential-helper: the distribution's package, else the release binary
(checked against its published sha256 before it becomes executable)."""

import glob
import hashlib
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from .commands import COMMAND_TIMEOUT, run_command, time_left
from .host import HELPER_VERSION_RE, release_arch, tool_probe
from .host_clients import version_tuple
from .log import log
from .outcomes import (
    CHECKSUM_MISMATCH,
    HELPER_INSTALL_FAILED,
    HELPER_SOURCE_UNREACHABLE,
    HELPER_TOO_OLD,
    UNSUPPORTED_OS,
    AgentError,
)
from .params import unique
from .stores import CALLER_PATH, HELPER_NAME, helper_needs, older_than

HELPER_PACKAGE = "amazon-ecr-credential-helper"
RELEASE_INSTALL_DIR = "/usr/local/bin"
CALLER_BIN = "/usr/bin"  # on every caller's PATH (stores.CALLER_PATH): the release is linked here
# AWS_ECR_IGNORE_CREDS_STORAGE (KeepUserDockerLogin) is honoured from 0.9.0 on (#847).
IGNORE_CREDS_STORAGE_SINCE = (0, 9, 0)
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
# Downloading (the package, its indexes, lock waits) may be stopped at any moment: nothing is
# installed yet. The transaction, from the packages already downloaded, is never stopped: it starts
# only with this much of the run left, and runs to its end.
DOWNLOAD_TIMEOUT = 240
TRANSACTION_SECONDS = 150
# A source that does not answer in this time is taken as unreachable: a private subnet without NAT
# drops the packets (a connection would hang for minutes), and a broken proxy or a tarpit takes the
# connection and never answers (apt, urllib would wait out each of their own timeouts).
PROBE_TIMEOUT = 4
# A download that stalls this long between reads is given up (the source answered the probe).
IDLE_TIMEOUT = 15
TLS_TARGETS = set()  # (host, port) reached directly over https: probed with a TLS handshake
APT_LOCK = ["-o", "DPkg::Lock::Timeout=120"]  # a fresh Ubuntu's unattended-upgrades holds it a while


def package_manager(os_info):
    """The package manager that carries amazon-ecr-credential-helper here, or None."""
    os_id = os_info.get("ID", "")
    like = os_info.get("ID_LIKE", "").split()
    version = os_info.get("VERSION_ID", "")
    if os_id == "amzn":
        return "yum" if version == "2" else "dnf"  # AL2 has yum; AL2023 and later dnf
    if os_id in ("debian", "ubuntu") or "debian" in like or "ubuntu" in like:
        return "apt"
    return None


def package_steps(manager):
    """(downloads, transaction): commands that only fetch (each a retry of the one before, with a fix
    applied), then the one that installs from what they fetched, offline."""
    if manager == "apt":
        fetch = ["apt-get", "install", "-y", "--no-install-recommends", "--download-only"] + APT_LOCK
        fetch += ["-o", "Acquire::http::Timeout=20", "-o", "Acquire::https::Timeout=20", HELPER_PACKAGE]
        install = ["apt-get", "install", "-y", "--no-install-recommends", "--no-download"] + APT_LOCK
        return [fetch, ["apt-get", "update"], fetch], install + [HELPER_PACKAGE]
    fetch = [manager, "install", "-y", "--downloadonly", "--setopt=timeout=20", HELPER_PACKAGE]
    install = [manager, "install", "-y", "--cacheonly", HELPER_PACKAGE]
    if manager == "yum":  # AL2 ships it in the docker extras topic
        return [fetch, ["amazon-linux-extras", "enable", "docker"], fetch], install
    return [fetch], install


def install_with_package_manager(host, manager):
    """True once the package is installed. Downloads are stopped when they take too long; the
    transaction is started only with TRANSACTION_SECONDS left, and is never stopped."""
    env = host.root_env()
    env["DEBIAN_FRONTEND"] = "noninteractive"
    downloads, transaction = package_steps(manager)
    fetched = False
    for argv in downloads:
        program = shutil.which(argv[0], path=host.path)
        budget = min(DOWNLOAD_TIMEOUT, time_left() - TRANSACTION_SECONDS)
        if program is None or budget <= 0:
            continue
        try:
            done = run_command([program] + argv[1:], env, stderr=subprocess.STDOUT, timeout=budget)
        except (OSError, subprocess.SubprocessError) as error:
            log("%s failed: %s" % (" ".join(argv), error))
            continue
        log("%s exited %d" % (" ".join(argv), done.returncode))
        fetched = done.returncode == 0 and argv[1] == "install"
        if fetched:
            break
    program = shutil.which(transaction[0], path=host.path)
    if not fetched or program is None or time_left() < TRANSACTION_SECONDS:
        return False
    try:  # no timeout: a package manager stopped mid-transaction can leave the package database broken
        done = subprocess.run(
            [program] + transaction[1:], env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    except OSError as error:
        log("%s failed: %s" % (" ".join(transaction), error))
        return False
    log("%s exited %d" % (" ".join(transaction), done.returncode))
    return done.returncode == 0


def install_helper(params, host):
    """Install the helper: the distribution's package where there is one, else the release binary.
    Every source is probed first: one that cannot be reached fails in seconds, not at its timeouts."""
    if platform.system() != "Linux":
        raise AgentError(UNSUPPORTED_OS, "not Linux")
    manager = package_manager(host.os_info)
    arch = release_arch(host.machine)
    url = release_url(params.release_base_url, params.helper_version, arch or "")
    mirrors = package_sources(manager) if manager else []
    release = connect_target(url)
    answered = probe([release] + (mirrors or []))
    if mirrors is None or any(answered[target] for target in mirrors):  # None: cannot tell, so try
        if install_with_package_manager(host, manager):
            host.find_helper()
            if host.helper_runs:
                return manager
            # The package is "installed" but its binary is gone or broken (deleted by hand, say):
            # installing it again is a no-op for the package manager.
            log(
                "%s has %s but %s does not run; trying the release binary"
                % (manager, HELPER_PACKAGE, HELPER_NAME)
            )
        else:
            log("%s could not install %s; trying the release binary" % (manager, HELPER_PACKAGE))
    elif manager:
        log("%s's mirrors (%s) unreachable" % (manager, ", ".join("%s:%d" % target for target in mirrors)))
    if arch is None:
        raise AgentError(UNSUPPORTED_OS, "no release binary for architecture %s" % host.machine)
    if not answered[release]:
        tried = ["%s:%d" % target for target in (mirrors or []) + [release]]
        raise AgentError(
            HELPER_SOURCE_UNREACHABLE,
            "no connection to %s within %d s: set releaseBaseUrl to a mirror reachable from here"
            % (", ".join(tried), PROBE_TIMEOUT),
        )
    install_release_binary(url, RELEASE_INSTALL_DIR)
    link_for_callers(host, os.path.join(RELEASE_INSTALL_DIR, HELPER_NAME))
    return "release binary"


def connect_target(url):
    """(host, port) a connection to url is made to: its proxy's where one is configured for it."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    target = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        TLS_TARGETS.add(target)
    return target


def package_sources(manager, root=""):
    """[(host, port)] the package manager downloads from, or None when that cannot be told here
    (a proxy in its own configuration, a local or unusual source, variables left unresolved)."""
    if manager == "apt":
        paths = [root + "/etc/apt/sources.list"] + sorted(glob.glob(root + "/etc/apt/sources.list.d/*.list"))
        paths += sorted(glob.glob(root + "/etc/apt/sources.list.d/*.sources"))
        configs = [root + "/etc/apt/apt.conf"] + glob.glob(root + "/etc/apt/apt.conf.d/*")
        pattern = r"(?m)^[ \t]*(?:deb|URIs:)[ \t]+(?:\[[^]\n]*\][ \t]+)?([^\n]*)"
    else:
        paths = sorted(glob.glob(root + "/etc/yum.repos.d/*.repo"))
        configs = [root + "/etc/dnf/dnf.conf", root + "/etc/yum.conf"] + paths
        pattern = r"(?m)^[ \t]*(?:baseurl|mirrorlist|metalink)[ \t]*=[ \t]*([^\n]*)"
    if any(re.search(r"(?i)proxy\s*[=\"]|::proxy", read_text(path)) for path in configs):
        return None
    variables = {}
    for folder in ("/etc/yum/vars", "/etc/dnf/vars"):
        for path in glob.glob(root + folder + "/*"):
            variables[os.path.basename(path)] = read_text(path).strip()
    urls = []
    for path in paths:
        text = read_text(path)
        if manager != "apt":  # only enabled repositories
            text = "\n".join(
                s for s in re.split(r"(?m)^\[", text) if not re.search(r"(?m)^\s*enabled\s*=\s*0", s)
            )
        for match in re.findall(pattern, text):
            urls += [word for word in match.split() if "://" in word]
    targets = []
    for raw in urls:
        url = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), raw)
        if url.split("://", 1)[0] not in ("http", "https") or "$" in url.split("/")[2]:
            return None  # only the host matters: $releasever, $basearch in the path are fine
        targets.append(connect_target(url))
    return unique(targets) or None


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1024 * 1024)
    except OSError:
        return ""


def probe(targets):
    """{(host, port): whether it answered within PROBE_TIMEOUT}, all at once: a TLS handshake for an
    https source reached directly, else the first byte of the answer to an HTTP HEAD (a mirror or a
    proxy: any answer, an error too, is one). Threads are daemons: a name lookup that hangs must not
    hold the agent's exit."""
    answered = dict.fromkeys(targets, False)

    def attempt(target):
        try:
            with socket.create_connection(target, timeout=PROBE_TIMEOUT) as sock:
                if target in TLS_TARGETS:  # reachability only: nothing is sent over it
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    context.wrap_socket(sock, server_hostname=target[0]).close()
                else:
                    sock.sendall(
                        ("HEAD / HTTP/1.0\r\nHost: %s\r\n\r\n" % target[0]).encode("ascii", "replace")
                    )
                    if not sock.recv(1):
                        return
            answered[target] = True
        except (OSError, ValueError):
            pass

    threads = [threading.Thread(target=attempt, args=(target,), daemon=True) for target in answered]
    for thread in threads:
        thread.start()
    stop = time.monotonic() + PROBE_TIMEOUT + 1
    for thread in threads:
        thread.join(max(0, stop - time.monotonic()))
    return dict(answered)


def minimum_version(registry, keep_user_login=False):
    """The helper release this registry needs (stores.MINIMUM_VERSIONS), and 0.9.0 for KeepUserDockerLogin."""
    needed = helper_needs(registry)
    return max(needed, IGNORE_CREDS_STORAGE_SINCE) if keep_user_login else needed


def upgrade_helper(params, host, needed):
    """Replace a helper older than needed with the pinned release (HelperVersion), verified by its
    sha256 and its own -v before it is installed, and make every caller's PATH find it."""
    if older_than(params.helper_version, needed):
        raise AgentError(HELPER_TOO_OLD, "helperVersion is %s" % params.helper_version)
    url = release_url(params.release_base_url, params.helper_version, release_arch(host.machine) or "")
    target = connect_target(url)
    if not probe([target])[target]:
        raise AgentError(HELPER_SOURCE_UNREACHABLE, "no connection to %s:%d" % target)
    install_release_binary(url, RELEASE_INSTALL_DIR, needed)
    link_for_callers(host, os.path.join(RELEASE_INSTALL_DIR, HELPER_NAME))


def link_for_callers(host, helper, bin_dir=CALLER_BIN):
    """Make /usr/bin/docker-credential-ecr-login (every caller's PATH) run helper: a symlink. A file
    there (a package's older binary) is diverted with dpkg-divert --local (package upgrades then go
    to <name>.distrib; `rm` the link and `dpkg-divert --rename --remove` undo it); where that cannot
    be done (no dpkg) it is left, and the caller's helper stays the older one. The name never goes
    missing, whenever the run stops: the package's file is hard-linked to .distrib and the diversion
    added without --rename (dpkg-divert(1): the default), then the new link is renamed over it."""
    link = os.path.join(bin_dir, HELPER_NAME)
    if os.path.realpath(link) == os.path.realpath(helper):
        return False
    temp = link + ".ecr-fleet-auth.tmp"
    if os.path.lexists(temp):
        os.unlink(temp)
    os.symlink(helper, temp)
    try:
        if os.path.lexists(link):
            program = shutil.which("dpkg-divert", path=host.path)
            if program is None:
                raise AgentError(HELPER_TOO_OLD, "%s cannot be replaced (no dpkg-divert)" % link)
            distrib = link + ".distrib"
            if os.path.lexists(distrib):
                os.unlink(distrib)
            os.link(link, distrib, follow_symlinks=False)
            argv = [program, "--local", "--divert", distrib, "--add", link]
            if run_command(argv, host.root_env()).returncode:
                os.unlink(distrib)
                raise AgentError(HELPER_TOO_OLD, "%s cannot be replaced (dpkg-divert failed)" % link)
            log("%s diverted to %s.distrib (dpkg-divert)" % (link, link))
        os.rename(temp, link)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    log("%s now runs %s" % (link, helper))
    return True


def release_url(base, version, arch):
    # Releases live at <base>/<X.Y.Z>/linux-<amd64|arm64>/docker-credential-ecr-login (+ .sha256); the
    # bucket has versioned paths only, so the version is always a real one (the document pins a default).
    return "%s/%s/linux-%s/%s" % (base.rstrip("/"), version, arch, HELPER_NAME)


def https_open(url):
    """urlopen that refuses to leave https (a redirect to http would drop the transport's integrity)."""
    # The URL is https by the ReleaseBaseUrl pattern, re-checked in read_params.
    response = urllib.request.urlopen(  # noqa: S310
        url,
        timeout=max(1, min(IDLE_TIMEOUT, COMMAND_TIMEOUT, time_left())),
        context=ssl.create_default_context(),
    )
    if not response.geturl().startswith("https://"):
        response.close()
        raise AgentError(HELPER_INSTALL_FAILED, "download redirected away from https")
    return response


def fetch_checksum(url):
    try:
        with https_open(url + ".sha256") as response:
            text = response.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise AgentError(HELPER_INSTALL_FAILED, "checksum download failed: %s" % error) from None
    fields = text.split()
    if not fields or not re.match(r"^[0-9a-fA-F]{64}$", fields[0]):
        raise AgentError(CHECKSUM_MISMATCH, "checksum file is not a sha256 digest")
    return fields[0].lower()


def install_release_binary(url, install_dir, needed=(0, 0, 0)):
    """Download to a temp file beside the target, verify its sha256 and that it is at least the version
    needed (by its own -v), and only then make it the installed one."""
    expected = fetch_checksum(url)
    os.makedirs(install_dir, mode=0o755, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=install_dir, prefix="." + HELPER_NAME + ".")
    try:
        digest = download_to(url, fd)
        if digest != expected:
            raise AgentError(CHECKSUM_MISMATCH, "sha256 of %s is %s, expected %s" % (url, digest, expected))
        os.chmod(temp, 0o755)  # noqa: S103 - an executable for every user, owned by root
        says = tool_probe([temp, "-v"], HELPER_VERSION_RE, {"PATH": CALLER_PATH})[1]
        if (version_tuple(says) or (0, 0, 0)) < needed:
            raise AgentError(HELPER_TOO_OLD, "the release at %s says it is %s" % (url, says))
        os.rename(temp, os.path.join(install_dir, HELPER_NAME))
        log("installed %s from %s" % (HELPER_NAME, url))
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def download_to(url, fd):
    digest = hashlib.sha256()
    size = 0
    deadline = time.monotonic() + min(DOWNLOAD_TIMEOUT, time_left())
    try:
        with os.fdopen(fd, "wb") as out, https_open(url) as response:
            while True:
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                if time.monotonic() > deadline:
                    raise AgentError(HELPER_INSTALL_FAILED, "download of %s too slow" % url)
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise AgentError(HELPER_INSTALL_FAILED, "download larger than expected")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise AgentError(HELPER_INSTALL_FAILED, "download of %s failed: %s" % (url, error)) from None
    return digest.hexdigest()
