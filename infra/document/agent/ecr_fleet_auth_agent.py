"""ecr-fleet-auth on-instance agent: keeps docker on this instance logged in to ECR.

Run as root by the SSM document (through entrypoint.sh). Parameters arrive as
$SSM_Action, $SSM_Registries, $SSM_Users, $SSM_HelperVersion and $SSM_ReleaseBaseUrl.
Actions:
  refresh  one ECR token per region (the instance's own role), then
           `docker login --password-stdin` for every registry x user;
  helper   install amazon-ecr-credential-helper if missing, point each user's
           docker config at it (credHelpers), drop stored auths, verify;
  check    read-only report.
stdout carries exactly one compact JSON result line; logs go to stderr.

Standard library only. Runs on Python 3.6+ (RHEL 8's platform-python; Amazon Linux 2 has 3.7);
the lint gate (vermin) holds it to what 3.7 accepts.
Safety: a user's docker config is read by root only through O_NOFOLLOW opens and
ownership checks, and every change to it (docker login, our own edits, the
backup) is made by a process running with that user's privileges, so nothing
the user controls can make root write anywhere else.
"""

import base64
import datetime
import errno
import fcntl
import grp
import hashlib
import json
import os
import platform
import pwd
import re
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import traceback
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

RESULT_SCHEMA = 1
RESULT_LINE_MAX_BYTES = 2000

# --- outcomes and reason codes (CONTRACT.md section 5) ---
CHANGED = "changed"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
FAILED = "failed"

OK = "ok"
INVALID_PARAMETER = "invalid_parameter"
NOT_ROOT = "not_root"
LOCKED = "locked"
DOCKER_MISSING = "docker_missing"
AWS_CLI_MISSING = "aws_cli_missing"
NO_CREDENTIALS = "no_credentials"
TOKEN_FAILED = "token_failed"  # noqa: S105 - a reason code, not a secret
LOGIN_FAILED = "login_failed"
HELPER_INSTALL_FAILED = "helper_install_failed"
HELPER_VERIFY_FAILED = "helper_verify_failed"
CHECKSUM_MISMATCH = "checksum_mismatch"
UNSUPPORTED_OS = "unsupported_os"
CONFIG_CORRUPT = "config_corrupt"
CONFIG_UNSAFE = "config_unsafe"
CONFIG_UNWRITABLE = "config_unwritable"
NO_SUCH_USER = "no_such_user"
NO_HOME = "no_home"
INTERNAL_ERROR = "internal_error"
# no_python is emitted by entrypoint.sh, never by this file.

# --- per user x registry states ---
STATE_HELPER = "helper"
STATE_LOGGED_IN = "logged_in"
STATE_STALE_AUTH = "stale_auth"
STATE_NONE = "none"

# --- parameter patterns: copies of lambda_src/ecr_fleet_auth/contract.py (a test keeps them equal) ---
ACTIONS = ("refresh", "helper", "check")
AUTO_USERS = "auto"
LATEST_HELPER = "latest"
PARTITION_DOMAINS = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
)
REGION_RE = r"[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2}"
PUBLIC_REGISTRY = "public.ecr.aws"
PRIVATE_REGISTRY_RE = (
    r"[0-9]{12}\.dkr\.ecr(?:-fips)?\."
    + REGION_RE
    + r"\.(?:"
    + "|".join(re.escape(domain) for domain in PARTITION_DOMAINS)
    + ")"
)
REGISTRY_RE = r"(?:" + re.escape(PUBLIC_REGISTRY) + "|" + PRIVATE_REGISTRY_RE + ")"
MAX_REGISTRIES = 20
USER_NAME_RE = r"[A-Za-z_][A-Za-z0-9._-]{0,31}"
MAX_USERS = 50
HELPER_SEMVER_RE = r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}"


def _list_of(item, most):
    return "%s(?:,%s){0,%d}" % (item, item, most - 1)


REGISTRIES_PATTERN = "^" + _list_of(REGISTRY_RE, MAX_REGISTRIES) + "$"
USERS_PATTERN = "^(?:" + AUTO_USERS + "|" + _list_of(USER_NAME_RE, MAX_USERS) + ")$"
HELPER_VERSION_PATTERN = "^(?:" + LATEST_HELPER + "|" + HELPER_SEMVER_RE + ")$"
RELEASE_BASE_URL_PATTERN = (
    r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~-]+)*/?$"
)
PRIVATE_REGISTRY_REGION = re.compile(r"^[0-9]{12}\.dkr\.ecr(?:-fips)?\.(" + REGION_RE + r")\.")
# ECR Public issues its tokens from us-east-1 only.
PUBLIC_REGISTRY_REGION = "us-east-1"

# --- where things live ---
HELPER_NAME = "docker-credential-ecr-login"
HELPER_PACKAGE = "amazon-ecr-credential-helper"
HELPER_CRED_NAME = "ecr-login"
RELEASE_INSTALL_DIR = "/usr/local/bin"
STATE_DIR = "/var/lib/ecr-fleet-auth"
LOGINS_FILE = "logins.json"
# /run is a root-only tmpfs on every supported distribution, writable even when / is read-only.
LOCK_FILE = "/run/ecr-fleet-auth.lock"
CONFIG_DIR_NAME = ".docker"
CONFIG_NAME = "config.json"
BACKUP_NAME = "config.json.ecr-fleet-auth.bak"
TEMP_PREFIX = ".config.json.ecr-fleet-auth."
TEMP_SUFFIX = ".tmp"
NEW_CONFIG_MODE = 0o600
NEW_CONFIG_DIR_MODE = 0o700
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
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
# A login whose token still has this long to live is left alone (tokens last 12 hours).
REFRESH_MARGIN = datetime.timedelta(hours=6)
COMMAND_TIMEOUT = 120
INSTALL_TIMEOUT = 600
MESSAGE_MAX_CHARS = 300


# ---------------------------------------------------------------- small helpers


def log(message):
    """Human-readable progress for the SSM stderr stream (never carries a token)."""
    stamp = datetime.datetime.utcnow().strftime("%H:%M:%S")
    sys.stderr.write("ecr-fleet-auth %s %s\n" % (stamp, message))
    sys.stderr.flush()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value):
    """A timestamp as the AWS CLI prints it (ISO 8601 or epoch seconds), or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2}:?\d{2})?$", text)
    if not match:
        return None
    moment = datetime.datetime.strptime(match.group(1) + "T" + match.group(2), "%Y-%m-%dT%H:%M:%S")
    offset = (match.group(4) or "+00:00").replace(":", "")
    sign = -1 if offset[0] == "-" else 1
    delta = datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return (moment - sign * delta).replace(tzinfo=datetime.timezone.utc)


def run_command(argv, env, **options):
    """subprocess.run with the agent's defaults: no stdin, output captured, cwd / (the script's dir is
    root-only, and user steps must not start there), a timeout so one stuck tool cannot hang the run."""
    if "input" not in options:  # Python 3.6 refuses stdin next to input, even None
        options.setdefault("stdin", subprocess.DEVNULL)
    options.setdefault("stdout", subprocess.PIPE)
    options.setdefault("stderr", subprocess.PIPE)
    options.setdefault("timeout", COMMAND_TIMEOUT)
    return subprocess.run(argv, check=False, env=env, cwd="/", **options)


def auth_digest(auth):
    """Short fingerprint of a stored auth value: ties a recorded expiry to the login it belongs to."""
    return hashlib.sha256(auth.encode("utf-8")).hexdigest()[:16]


def basic_auth(username, password):
    return base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


class AgentError(Exception):
    """A failure with a stable reason code."""

    def __init__(self, reason, message):
        Exception.__init__(self, message)
        self.reason = reason
        self.message = message


class Token(object):
    """An ECR authorization token; its repr never shows the password."""

    def __init__(self, username, password, expires_at):
        self.username = username
        self.password = password
        self.expires_at = expires_at

    def __repr__(self):
        return "Token(%s, expires_at=%s)" % (self.username, self.expires_at)


# ---------------------------------------------------------------- parameters


class Params(object):
    def __init__(self, action, registries, users, helper_version, release_base_url):
        self.action = action
        self.registries = registries
        self.users = users
        self.helper_version = helper_version
        self.release_base_url = release_base_url


def fullmatch(pattern, value):
    return re.fullmatch(pattern, value) is not None


def read_params(environ):
    """Re-validate the document parameters: the agent trusts nothing it did not check itself."""
    action = environ.get("SSM_Action", "")
    if action not in ACTIONS:
        raise AgentError(INVALID_PARAMETER, "Action must be one of %s" % ", ".join(ACTIONS))
    checks = (
        ("Registries", REGISTRIES_PATTERN),
        ("Users", USERS_PATTERN),
        ("HelperVersion", HELPER_VERSION_PATTERN),
        ("ReleaseBaseUrl", RELEASE_BASE_URL_PATTERN),
    )
    values = {}
    for name, pattern in checks:
        value = environ.get("SSM_" + name, "")
        if not fullmatch(pattern, value):
            raise AgentError(INVALID_PARAMETER, "parameter %s is missing or malformed" % name)
        values[name] = value
    registries = unique(values["Registries"].split(","))
    users = AUTO_USERS if values["Users"] == AUTO_USERS else unique(values["Users"].split(","))
    return Params(action, registries, users, values["HelperVersion"], values["ReleaseBaseUrl"])


def unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def token_source(registry):
    """(service, region) whose token opens this registry: one token serves every registry of a region."""
    if registry == PUBLIC_REGISTRY:
        return ("ecr-public", PUBLIC_REGISTRY_REGION)
    match = PRIVATE_REGISTRY_REGION.match(registry)
    if not match:
        raise AgentError(INVALID_PARAMETER, "not an ECR registry: %s" % registry)
    return ("ecr", match.group(1))


# ---------------------------------------------------------------- host facts


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


def tool_version(argv, pattern, env):
    try:
        completed = run_command(argv, env, stderr=subprocess.STDOUT)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(pattern, completed.stdout.decode("utf-8", "replace"))
    return match.group(1) if match else None


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
        self.helper = shutil.which(HELPER_NAME, path=self.path)
        # In parallel: the AWS CLI alone takes a few hundred milliseconds to print its version.
        with ThreadPoolExecutor(max_workers=3) as pool:
            docker = pool.submit(self.version_of, self.docker, ["--version"], DOCKER_VERSION_RE)
            aws = pool.submit(self.version_of, self.aws, ["--version"], AWS_VERSION_RE)
            helper = pool.submit(self.version_of, self.helper, ["-v"], HELPER_VERSION_RE)
            self.docker_version, self.aws_version = docker.result(), aws.result()
            self.helper_version = helper.result()

    def version_of(self, program, args, pattern):
        return tool_version([program] + args, pattern, self.env) if program else None

    def find_helper(self):
        self.helper = shutil.which(HELPER_NAME, path=self.path)
        self.helper_version = self.version_of(self.helper, ["-v"], HELPER_VERSION_RE)

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


# ---------------------------------------------------------------- users


class Account(object):
    def __init__(self, name, uid, gid, home):
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home

    @classmethod
    def from_pwd(cls, entry):
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    @property
    def config_dir(self):
        return os.path.join(self.home, CONFIG_DIR_NAME)


def resolve_users(users):
    """(accounts, unknown names). `auto` = root plus members of the docker group."""
    if users == AUTO_USERS:
        return auto_accounts(), []
    accounts, unknown = [], []
    for name in users:
        try:
            accounts.append(Account.from_pwd(pwd.getpwnam(name)))
        except KeyError:
            unknown.append(name)
    return accounts, unknown


def auto_accounts():
    names = [pwd.getpwuid(0).pw_name]
    try:
        docker_group = grp.getgrnam("docker")
    except KeyError:
        docker_group = None
    if docker_group is not None:
        members = list(docker_group.gr_mem)
        members += [entry.pw_name for entry in pwd.getpwall() if entry.pw_gid == docker_group.gr_gid]
        names += sorted(set(members) - set(names))
    accounts = []
    for name in names:
        try:
            accounts.append(Account.from_pwd(pwd.getpwnam(name)))
        except KeyError:
            log("docker group member %s has no passwd entry; ignored" % name)
    return accounts


# ---------------------------------------------------------------- docker config (read as root, safely)


class DockerConfig(object):
    """A user's config.json as found: parsed data, raw bytes and mode (None when absent)."""

    def __init__(self, data, raw, mode):
        self.data = data
        self.raw = raw
        self.mode = mode

    @property
    def exists(self):
        return self.raw is not None


def open_config_dir(account):
    """fd of the user's .docker directory, or None if absent. Refuses symlinks and foreign owners."""
    try:
        home_fd = os.open(account.home, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        reason = NO_HOME if error.errno == errno.ENOENT else CONFIG_UNSAFE
        raise AgentError(reason, "home %s of %s unusable: %s" % (account.home, account.name, error)) from None
    try:
        try:
            dir_fd = os.open(CONFIG_DIR_NAME, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=home_fd)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return None
            raise AgentError(
                CONFIG_UNSAFE, "%s is a symlink or not a directory" % account.config_dir
            ) from None
    finally:
        os.close(home_fd)
    info = os.fstat(dir_fd)
    if info.st_uid != account.uid:
        os.close(dir_fd)
        raise AgentError(CONFIG_UNSAFE, "%s is not owned by %s" % (account.config_dir, account.name))
    return dir_fd


def read_config(account):
    """The user's docker config, read without following symlinks and left untouched when bad."""
    dir_fd = open_config_dir(account)
    if dir_fd is None:
        return DockerConfig({}, None, None)
    try:
        return read_config_at(dir_fd, account)
    finally:
        os.close(dir_fd)


def read_config_at(dir_fd, account):
    path = os.path.join(account.config_dir, CONFIG_NAME)
    try:
        fd = os.open(CONFIG_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return DockerConfig({}, None, None)
        if error.errno == errno.ELOOP:
            raise AgentError(CONFIG_UNSAFE, "%s is a symlink" % path) from None
        raise AgentError(CONFIG_CORRUPT, "%s unreadable: %s" % (path, error.strerror)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise AgentError(CONFIG_UNSAFE, "%s is not a regular file" % path)
        if info.st_uid != account.uid:
            raise AgentError(CONFIG_UNSAFE, "%s is not owned by %s" % (path, account.name))
        if info.st_size > MAX_CONFIG_BYTES:
            raise AgentError(CONFIG_CORRUPT, "%s is implausibly large" % path)
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    return DockerConfig(parse_config(raw, path), raw, stat.S_IMODE(info.st_mode))


def parse_config(raw, path):
    if not raw.strip():
        return {}  # docker itself treats an empty file as an empty config
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise AgentError(CONFIG_CORRUPT, "%s is not valid JSON" % path) from None
    if not isinstance(data, dict):
        raise AgentError(CONFIG_CORRUPT, "%s is not a JSON object" % path)
    for key in ("auths", "credHelpers"):
        if not isinstance(data.get(key, {}), dict):
            raise AgentError(CONFIG_CORRUPT, "%s: %s is not an object" % (path, key))
    return data


def registry_host(key):
    """The host an `auths` key names: docker has stored both `host` and `https://host/v1/` forms."""
    host = re.sub(r"^[a-z]+://", "", key)
    return host.split("/", 1)[0]


def auth_keys(config_data, registry):
    return [key for key in config_data.get("auths", {}) if registry_host(key) == registry]


def stored_auth(config_data, registry):
    """The static credential docker holds for the registry ('' when only a credsStore entry)."""
    for key in auth_keys(config_data, registry):
        entry = config_data["auths"][key]
        if isinstance(entry, dict):
            return entry.get("auth") or ""
        return ""
    return None


def uses_helper(config_data, registry):
    helpers = config_data.get("credHelpers", {})
    return helpers.get(registry) == HELPER_CRED_NAME or config_data.get("credsStore") == HELPER_CRED_NAME


def registry_state(config_data, registry, record):
    """helper / stale_auth / logged_in (+ expires_at when we know it) / none."""
    auth = stored_auth(config_data, registry)
    if uses_helper(config_data, registry):
        return {"state": STATE_STALE_AUTH if auth is not None else STATE_HELPER}
    if auth is None:
        return {"state": STATE_NONE}
    return logged_in_state(record_expiry(record, auth))


def logged_in_state(expires_at):
    state = {"state": STATE_LOGGED_IN}
    if expires_at is not None:
        state["expires_at"] = format_time(expires_at)
        if expires_at <= utc_now():
            state["expired"] = True
    return state


def with_helper(config_data, registries):
    """The config with credHelpers set for the registries and their stored auths dropped; all else kept."""
    merged = json.loads(json.dumps(config_data))
    helpers = merged.setdefault("credHelpers", {})
    for registry in registries:
        helpers[registry] = HELPER_CRED_NAME
        for key in auth_keys(merged, registry):
            del merged["auths"][key]
    return merged


def render_config(data):
    # The layout docker itself writes (tab indent), so a later `docker login` diff stays small.
    return (json.dumps(data, indent="\t") + "\n").encode("utf-8")


# ---------------------------------------------------------------- acting as the user


def privilege_dropper(account):
    """A function for a forked child: become the user, so the kernel, not our checks, bounds every write.

    The group list is looked up here, before the fork: NSS lookups are not safe between fork and exec.
    """
    groups = os.getgrouplist(account.name, account.gid)

    def drop():
        os.setgroups(groups)
        os.setgid(account.gid)
        os.setuid(account.uid)
        os.umask(0o077)

    return drop


def user_env(host, account):
    env = dict(host.env)
    for name in ("HOME", "USER", "LOGNAME", "DOCKER_CONFIG", "XDG_RUNTIME_DIR"):
        env.pop(name, None)
    env.update(
        HOME=account.home,
        USER=account.name,
        LOGNAME=account.name,
        DOCKER_CONFIG=account.config_dir,
    )
    return env


def run_as_user(account, func, *args):
    """Run func(*args) in a child process with the user's uid/gids; raise AgentError on failure."""
    drop_privileges = privilege_dropper(account)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        status = 0
        try:
            drop_privileges()
            func(*args)
        except AgentError as error:
            os.write(write_end, ("%s\n%s" % (error.reason, error.message)).encode("utf-8", "replace"))
            status = 1
        except OSError as error:
            # ELOOP/ENOTDIR: a symlink where ~/.docker should be; anything else (EROFS, EACCES, ENOSPC...)
            # means the user's config cannot be written.
            reason = CONFIG_UNSAFE if error.errno in (errno.ELOOP, errno.ENOTDIR) else CONFIG_UNWRITABLE
            os.write(write_end, ("%s\n%s" % (reason, error)).encode("utf-8", "replace"))
            status = 1
        except BaseException as error:  # never let the child return into the parent's code
            os.write(write_end, ("%s\n%r" % (INTERNAL_ERROR, error)).encode("utf-8", "replace"))
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        detail = pipe.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        reason, _, message = detail.partition("\n")
        raise AgentError(reason or INTERNAL_ERROR, message or "user step failed")


def user_config_dir_fd(account, create):
    """(As the user) fd of ~/.docker, created 0700 when asked; symlinks refused."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(account.config_dir, flags)
    except OSError as error:
        if error.errno != errno.ENOENT or not create:
            raise
    os.mkdir(account.config_dir, NEW_CONFIG_DIR_MODE)
    return os.open(account.config_dir, flags)


def remove_stale_temps(dir_fd):
    """Temp files left by a run killed mid-write are ours to delete; config.json was never touched."""
    for name in os.listdir(dir_fd):
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            os.unlink(name, dir_fd=dir_fd)


def replace_file_at(dir_fd, name, content, mode):
    """Write content to name atomically: temp file, fsync, rename; a crash leaves old or new, never half."""
    temp = "%s%d%s" % (TEMP_PREFIX, os.getpid(), TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def write_as_user(account, name, content, mode, create_dir):
    """Replace ``name`` in the user's docker config dir (run as the user, see run_as_user)."""
    dir_fd = user_config_dir_fd(account, create=create_dir)
    try:
        remove_stale_temps(dir_fd)
        replace_file_at(dir_fd, name, content, mode)
    finally:
        os.close(dir_fd)


def backup_config(account, config):
    """Keep the pre-change config beside it (same mode) before anything rewrites it."""
    if config.exists:
        run_as_user(account, write_as_user, account, BACKUP_NAME, config.raw, config.mode, False)


def save_config(account, config, data):
    """Back up, then atomically replace the user's config, as the user; owner and mode kept."""
    backup_config(account, config)
    mode = config.mode if config.exists else NEW_CONFIG_MODE
    run_as_user(account, write_as_user, account, CONFIG_NAME, render_config(data), mode, True)


def run_user_command(host, account, argv, secret=None, *, discard_stdout=False, extra_env=None):
    """Run argv with the user's privileges; a secret goes only to stdin. Returns (rc, diagnostics)."""
    env = user_env(host, account)
    env.update(extra_env or {})
    feed = {"input": secret.encode("utf-8")} if secret is not None else {}
    try:
        stdout = subprocess.DEVNULL if discard_stdout else subprocess.PIPE
        completed = run_command(argv, env, stdout=stdout, preexec_fn=privilege_dropper(account), **feed)
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    except OSError as error:
        return 127, str(error)
    diagnostics = (completed.stderr or b"") + (completed.stdout or b"")
    return completed.returncode, redact(diagnostics.decode("utf-8", "replace"), secret)


def redact(text, secret):
    text = text.strip()
    if secret:
        text = text.replace(secret, "<redacted>")
    return text[-500:]


# ---------------------------------------------------------------- login records (expiry for `check`)


def load_records(state_dir):
    path = os.path.join(state_dir, LOGINS_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_records(state_dir, records):
    """Root's own record of expiries, keyed by a fingerprint of the stored auth (never the token)."""
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        info = os.lstat(state_dir)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
            log("state dir %s is not a root-owned directory; expiry not recorded" % state_dir)
            return
        dir_fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            replace_file_at(dir_fd, LOGINS_FILE, (json.dumps(records, sort_keys=True) + "\n").encode(), 0o600)
        finally:
            os.close(dir_fd)
    except OSError as error:
        log("could not record login expiries: %s" % error)


def record_for(records, account, registry):
    entry = records.get(account.name, {}).get(registry)
    return entry if isinstance(entry, dict) else None


def record_expiry(record, auth):
    if not record or not auth or record.get("auth_sha256") != auth_digest(auth):
        return None
    return parse_time(record.get("expires_at"))


def remember_login(records, account, registry, auth, expires_at):
    entry = {"auth_sha256": auth_digest(auth)}
    if expires_at is not None:
        entry["expires_at"] = format_time(expires_at)
    records.setdefault(account.name, {})[registry] = entry


def is_fresh(record, auth, now):
    expires_at = record_expiry(record, auth)
    return expires_at is not None and expires_at - now > REFRESH_MARGIN


# ---------------------------------------------------------------- tokens


CREDENTIAL_ERRORS = (
    "Unable to locate credentials",
    "NoCredentialsError",
    "AccessDenied",
    "UnrecognizedClient",
    "InvalidClientTokenId",
    "ExpiredToken",
    "not authorized",
    "SignatureDoesNotMatch",
)


def fetch_token(host, source):
    """One GetAuthorizationToken with the instance's own credentials; the token arrives on a pipe."""
    service, region = source
    argv = [host.aws, service, "get-authorization-token", "--region", region, "--output", "json"]
    try:
        completed = run_command(argv, host.root_env())
    except subprocess.TimeoutExpired:
        raise AgentError(TOKEN_FAILED, "%s token for %s timed out" % (service, region)) from None
    except OSError as error:
        raise AgentError(AWS_CLI_MISSING, "cannot run the AWS CLI: %s" % error) from None
    errors = completed.stderr.decode("utf-8", "replace").strip()
    if completed.returncode != 0:
        reason = NO_CREDENTIALS if any(marker in errors for marker in CREDENTIAL_ERRORS) else TOKEN_FAILED
        raise AgentError(reason, "%s token for %s: %s" % (service, region, errors[-300:]))
    return parse_token(completed.stdout, service, region)


def parse_token(stdout, service, region):
    try:
        data = json.loads(stdout.decode("utf-8"))["authorizationData"]
        if isinstance(data, list):  # private ECR returns a list, ECR Public a single object
            data = data[0]
        decoded = base64.b64decode(data["authorizationToken"]).decode("utf-8")
        username, password = decoded.split(":", 1)
    except (ValueError, KeyError, IndexError, TypeError):
        raise AgentError(TOKEN_FAILED, "unexpected %s token response for %s" % (service, region)) from None
    return Token(username, password, parse_time(data.get("expiresAt")))


def fetch_tokens(host, sources):
    """{source: Token or AgentError}; regions are fetched in parallel, one call each."""
    results = {}
    if not sources:
        return results

    def attempt(source):
        try:
            return fetch_token(host, source)
        except AgentError as error:
            return error

    with ThreadPoolExecutor(max_workers=min(8, len(sources))) as pool:
        for source, outcome in zip(sources, list(pool.map(attempt, sources))):  # noqa: B905 - 3.7
            results[source] = outcome
            if isinstance(outcome, AgentError):
                log("token %s/%s failed: %s" % (source[0], source[1], outcome.message))
            else:
                log("token %s/%s obtained" % source)
    return results


# ---------------------------------------------------------------- the report


class UserReport(object):
    def __init__(self, name):
        self.name = name
        self.registries = {}
        self.reason = None
        self.changed = False

    def as_dict(self):
        entry = {"user": self.name, "registries": self.registries}
        if self.reason:
            entry["reason"] = self.reason
        if self.changed:
            entry["changed"] = True
        return entry


class Report(object):
    """Collects what happened; renders the single result line."""

    def __init__(self, action):
        self.action = action if action in ACTIONS else None
        self.host = None
        self.users = []
        self.problems = []
        self.changes = 0
        self.message_parts = []

    def user(self, name):
        report = UserReport(name)
        self.users.append(report)
        return report

    def problem(self, reason, message, user=None):
        log("%s: %s" % (reason, message))
        self.problems.append((reason, message))
        if user is not None and user.reason is None:
            user.reason = reason

    def outcome(self):
        if self.problems and self.action != "check":
            return FAILED
        return CHANGED if self.changes else UNCHANGED

    def result(self, outcome=None, reason=None, message=None):
        outcome = outcome or self.outcome()
        if reason is None:
            reason = self.problems[0][0] if self.problems else OK
        if message is None:
            message = "; ".join(self.message_parts + [text for _, text in self.problems[:2]])
        return {
            "schema": RESULT_SCHEMA,
            "action": self.action,
            "outcome": outcome,
            "reason": reason,
            "message": message[:MESSAGE_MAX_CHARS],
            "host": self.host,
            "users": [user.as_dict() for user in self.users],
        }


def result_line(result, limit=RESULT_LINE_MAX_BYTES):
    """Compact JSON within the byte limit: users that do not fit are dropped and counted.

    Users with nothing to report go first, so the ones with a problem stay visible.
    """
    users = list(result.get("users") or [])
    line = compact(result)
    drop_order = [i for i in reversed(range(len(users))) if is_quiet(users[i])]
    drop_order += [i for i in reversed(range(len(users))) if not is_quiet(users[i])]
    dropped = set()
    while len(line.encode("utf-8")) > limit and len(dropped) < len(users):
        dropped.add(drop_order[len(dropped)])
        kept = [user for index, user in enumerate(users) if index not in dropped]
        line = compact(dict(result, users=kept, users_truncated=len(dropped)))
    if len(line.encode("utf-8")) > limit:
        trimmed = dict(
            result, users=[], users_truncated=len(users), host=None, message=result["message"][:80]
        )
        line = compact(trimmed)
    return line


def is_quiet(user):
    """A user entry without a problem: neither a user-level reason nor a per-registry error."""
    registries = user.get("registries") or {}
    return not user.get("reason") and not any("error" in state for state in registries.values())


def compact(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


# ---------------------------------------------------------------- actions


class Run(object):
    """Everything one action needs: parameters, host, the users to manage, the report, where state lives."""

    def __init__(self, params, host, report, state_dir):
        self.params = params
        self.host = host
        self.report = report
        self.state_dir = state_dir
        self.accounts, self.unknown = resolve_users(params.users)

    def load_user_configs(self):
        """[(account, user report, config)] for users whose config is safe to read; the others reported."""
        loaded = []
        for name in self.unknown:
            self.report.problem(NO_SUCH_USER, "no such user: %s" % name, self.report.user(name))
        for account in self.accounts:
            user = self.report.user(account.name)
            if not os.path.isdir(account.home) and self.params.users == AUTO_USERS:
                # A service account in the docker group without a home has no docker config to manage.
                user.reason = NO_HOME
                continue
            try:
                config = read_config(account)
            except AgentError as error:
                self.report.problem(error.reason, error.message, user)
                continue
            loaded.append((account, user, config))
        return loaded


def plural(count, singular, plural_form):
    return "%d %s" % (count, singular if count == 1 else plural_form)


def action_check(run):
    records = load_records(run.state_dir)
    for account, user, config in run.load_user_configs():
        for registry in run.params.registries:
            record = record_for(records, account, registry)
            user.registries[registry] = registry_state(config.data, registry, record)
    if not run.host.docker:
        run.report.problems.insert(0, (DOCKER_MISSING, "docker CLI not found"))
    run.report.message_parts.append(
        "checked %s x %s"
        % (
            plural(len(run.report.users), "user", "users"),
            plural(len(run.params.registries), "registry", "registries"),
        )
    )
    return run.report.result()


class Login(object):
    """One user x registry pair that refresh may have to log in."""

    def __init__(self, account, user, config, registry):
        self.account = account
        self.user = user
        self.config = config
        self.registry = registry

    def fail(self, report, reason, message):
        report.problem(reason, "%s@%s: %s" % (self.account.name, self.registry, message), self.user)
        self.user.registries[self.registry] = dict(
            registry_state(self.config.data, self.registry, None), error=reason
        )


def action_refresh(run):
    host, report = run.host, run.report
    if not host.docker:
        return report.result(FAILED, DOCKER_MISSING, "docker CLI not found")
    records = load_records(run.state_dir)
    pending = plan_logins(run, records)
    if pending and not host.aws:  # an instance fully on the helper needs no AWS CLI
        return report.result(FAILED, AWS_CLI_MISSING, "AWS CLI not found")
    # A token is fetched only for regions where some login needs one.
    tokens = fetch_tokens(host, unique([token_source(login.registry) for login in pending]))
    logged_in, backed_up = set(), set()
    for login in pending:
        token = tokens[token_source(login.registry)]
        if isinstance(token, AgentError):
            login.fail(report, token.reason, token.message)
            continue
        expected = basic_auth(token.username, token.password)
        if stored_auth(login.config.data, login.registry) != expected:
            if not docker_login(run, login, token, backed_up):
                continue
            logged_in.add(login.account.name)
        remember_login(records, login.account, login.registry, expected, token.expires_at)
        login.user.registries[login.registry] = logged_in_state(token.expires_at)
    if pending:
        save_records(run.state_dir, records)
    registries = plural(len(run.params.registries), "registry", "registries")
    if logged_in:
        report.message_parts.append(
            "logged in %s to %s" % (plural(len(logged_in), "user", "users"), registries)
        )
    else:
        report.message_parts.append("no login needed for %s" % registries)
    return report.result()


def plan_logins(run, records):
    """The logins that may need a token; helper-managed and still-fresh ones are only reported."""
    now = utc_now()
    pending = []
    for account, user, config in run.load_user_configs():
        for registry in run.params.registries:
            record = record_for(records, account, registry)
            auth = stored_auth(config.data, registry)
            if uses_helper(config.data, registry) or is_fresh(record, auth, now):
                user.registries[registry] = registry_state(config.data, registry, record)
            else:
                pending.append(Login(account, user, config, registry))
    return pending


def docker_login(run, login, token, backed_up):
    """`docker login --password-stdin` as the user, after one backup per user; True when it succeeded."""
    account = login.account
    try:
        if account.name not in backed_up:
            backup_config(account, login.config)
            backed_up.add(account.name)
    except AgentError as error:
        login.fail(run.report, error.reason, "backup failed: %s" % error.message)
        return False
    argv = [run.host.docker, "login", "--username", token.username, "--password-stdin", login.registry]
    code, diagnostics = run_user_command(run.host, account, argv, secret=token.password)
    if code != 0:
        reason = CONFIG_UNWRITABLE if "read-only file system" in diagnostics.lower() else LOGIN_FAILED
        login.fail(run.report, reason, "docker login failed: %s" % diagnostics[-200:])
        return False
    log("%s: logged in to %s" % (account.name, login.registry))
    login.user.changed = True
    run.report.changes += 1
    return True


def action_helper(run):
    host, report = run.host, run.report
    if not host.docker:
        return report.result(FAILED, DOCKER_MISSING, "docker CLI not found")
    if not host.helper:
        try:
            how = install_helper(run.params, host)
        except AgentError as error:
            return report.result(FAILED, error.reason, error.message)
        host.find_helper()
        if not host.helper:
            return report.result(FAILED, HELPER_INSTALL_FAILED, "installed via %s but not on PATH" % how)
        report.changes += 1
        report.message_parts.append("installed %s via %s" % (HELPER_NAME, how))
        report.host = host.summary()
    configured = 0
    loaded = run.load_user_configs()
    for account, user, config in loaded:
        desired = with_helper(config.data, run.params.registries)
        if desired != config.data or not config.exists:
            try:
                save_config(account, config, desired)
            except AgentError as error:
                report.problem(error.reason, "%s: %s" % (account.name, error.message), user)
                continue
            log("%s: credHelpers set for %s" % (account.name, ", ".join(run.params.registries)))
            user.changed = True
            report.changes += 1
            configured += 1
        for registry in run.params.registries:
            user.registries[registry] = registry_state(desired, registry, None)
            verify_helper(host, account, user, registry, report)
    if configured:
        report.message_parts.append("helper configured for %s" % plural(configured, "user", "users"))
    else:
        report.message_parts.append("helper already configured for %s" % plural(len(loaded), "user", "users"))
    return report.result()


def verify_helper(host, account, user, registry, report):
    """A real `docker-credential-ecr-login get` as the user; its output (a token) is discarded."""
    # The helper's cache would be one more file holding a token: keep it off for this probe.
    code, diagnostics = run_user_command(
        host,
        account,
        [host.helper, "get"],
        secret=registry,
        discard_stdout=True,
        extra_env={"AWS_ECR_DISABLE_CACHE": "true"},
    )
    if code != 0:
        user.registries[registry]["error"] = HELPER_VERIFY_FAILED
        report.problem(
            HELPER_VERIFY_FAILED,
            "%s@%s: helper get failed: %s" % (account.name, registry, diagnostics[-200:]),
            user,
        )


# ---------------------------------------------------------------- helper installation


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
        return manager
    if manager:
        log("%s could not install %s; trying the release binary" % (manager, HELPER_PACKAGE))
    arch = release_arch(host.machine)
    if arch is None:
        raise AgentError(UNSUPPORTED_OS, "no release binary for architecture %s" % host.machine)
    url = release_url(params.release_base_url, params.helper_version, arch)
    install_release_binary(url, RELEASE_INSTALL_DIR)
    return "release binary"


def release_url(base, version, arch):
    # Releases live at <base>/<version>/linux-<arch>/...; `latest` is published as a version directory.
    return "%s/%s/linux-%s/%s" % (base.rstrip("/"), version, arch, HELPER_NAME)


def https_open(url):
    """urlopen that refuses to leave https (a redirect to http would drop the transport's integrity)."""
    # The URL is https by the ReleaseBaseUrl pattern, re-checked in read_params.
    response = urllib.request.urlopen(  # noqa: S310
        url, timeout=COMMAND_TIMEOUT, context=ssl.create_default_context()
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


# ---------------------------------------------------------------- lock and main


def acquire_lock(path):
    """An fd holding an exclusive flock on path, or None when another run holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


ACTION_HANDLERS = {"refresh": action_refresh, "helper": action_helper, "check": action_check}


def run(environ, lock_path=LOCK_FILE, state_dir=STATE_DIR):
    """Do the requested action; returns the result dict (never raises for expected failures)."""
    report = Report(environ.get("SSM_Action"))
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
        return ACTION_HANDLERS[params.action](run)
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


if __name__ == "__main__":
    sys.exit(main())
