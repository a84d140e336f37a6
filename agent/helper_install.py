"""Installing amazon-ecr-credential-helper: the distribution's package, else the release binary
(checked against its published sha256 before it becomes executable)."""

import hashlib
import os
import platform
import re
import shutil
import ssl
import subprocess
import tempfile
import urllib.request

from .commands import COMMAND_TIMEOUT, run_command, time_left
from .host import release_arch
from .log import log
from .outcomes import CHECKSUM_MISMATCH, HELPER_INSTALL_FAILED, UNSUPPORTED_OS, AgentError
from .stores import HELPER_NAME

HELPER_PACKAGE = "amazon-ecr-credential-helper"
RELEASE_INSTALL_DIR = "/usr/local/bin"
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
INSTALL_TIMEOUT = 600


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


def package_commands(manager):
    if manager == "dnf":
        return [["dnf", "install", "-y", HELPER_PACKAGE]]
    if manager == "yum":
        # AL2 ships it in the docker extras topic.
        return [
            ["yum", "install", "-y", HELPER_PACKAGE],
            ["amazon-linux-extras", "enable", "docker"],
            ["yum", "install", "-y", HELPER_PACKAGE],
        ]
    # Freshly booted Ubuntu often holds the dpkg lock (unattended-upgrades): wait for it a while.
    apt_install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"]
    return [apt_install + [HELPER_PACKAGE], ["apt-get", "update"], apt_install + [HELPER_PACKAGE]]


def install_with_package_manager(host, manager):
    """True once the package is installed; commands after the first are retries with a fix applied."""
    env = host.root_env()
    env["DEBIAN_FRONTEND"] = "noninteractive"
    for argv in package_commands(manager):
        program = shutil.which(argv[0], path=host.path)
        if program is None:
            continue
        try:
            completed = run_command(
                [program] + argv[1:], env, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT
            )
        except (OSError, subprocess.SubprocessError) as error:
            log("%s failed: %s" % (" ".join(argv), error))
            continue
        log("%s exited %d" % (" ".join(argv), completed.returncode))
        if completed.returncode == 0 and argv[1] == "install":
            return True
    return False


def install_helper(params, host):
    """Install the helper: the distribution's package where there is one, else the release binary."""
    if platform.system() != "Linux":
        raise AgentError(UNSUPPORTED_OS, "not Linux")
    manager = package_manager(host.os_info)
    if manager and install_with_package_manager(host, manager):
        host.find_helper()
        if host.helper_runs:
            return manager
        # The package is "installed" but its binary is gone or broken (deleted by hand, say):
        # installing it again is a no-op for the package manager.
        log(
            "%s has %s but %s does not run; trying the release binary"
            % (manager, HELPER_PACKAGE, HELPER_NAME)
        )
    elif manager:
        log("%s could not install %s; trying the release binary" % (manager, HELPER_PACKAGE))
    arch = release_arch(host.machine)
    if arch is None:
        raise AgentError(UNSUPPORTED_OS, "no release binary for architecture %s" % host.machine)
    url = release_url(params.release_base_url, params.helper_version, arch)
    install_release_binary(url, RELEASE_INSTALL_DIR)
    return "release binary"


def release_url(base, version, arch):
    # Releases live at <base>/<X.Y.Z>/linux-<amd64|arm64>/docker-credential-ecr-login (+ .sha256); the
    # bucket has versioned paths only, so the version is always a real one (the document pins a default).
    return "%s/%s/linux-%s/%s" % (base.rstrip("/"), version, arch, HELPER_NAME)


def https_open(url):
    """urlopen that refuses to leave https (a redirect to http would drop the transport's integrity)."""
    # The URL is https by the ReleaseBaseUrl pattern, re-checked in read_params.
    response = urllib.request.urlopen(  # noqa: S310
        url, timeout=max(1, min(COMMAND_TIMEOUT, time_left())), context=ssl.create_default_context()
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


def install_release_binary(url, install_dir):
    """Download to a temp file beside the target, verify its sha256, and only then make it executable."""
    expected = fetch_checksum(url)
    os.makedirs(install_dir, mode=0o755, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=install_dir, prefix="." + HELPER_NAME + ".")
    try:
        digest = download_to(url, fd)
        if digest != expected:
            raise AgentError(CHECKSUM_MISMATCH, "sha256 of %s is %s, expected %s" % (url, digest, expected))
        os.chmod(temp, 0o755)  # noqa: S103 - an executable for every user, owned by root
        os.rename(temp, os.path.join(install_dir, HELPER_NAME))
        log("installed %s from %s" % (HELPER_NAME, url))
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def download_to(url, fd):
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, https_open(url) as response:
            while True:
                chunk = response.read(1024 * 1024)
                if not chunk:
                    break
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
