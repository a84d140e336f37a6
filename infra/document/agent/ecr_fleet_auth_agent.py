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
import time
import traceback
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

RESULT_SCHEMA = 1
RESULT_LINE_MAX_BYTES = 2000

# --- outcomes and reason codes (docs/reference/contract.md, "The agent's result line") ---
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
# A credential helper or store the user's docker config names for a registry is missing or cannot run.
HELPER_UNAVAILABLE = "helper_unavailable"
# Not a failure: a docker config (or its backup) holding credentials was made owner-only.
MODE_TIGHTENED = "mode_tightened"
CHECKSUM_MISMATCH = "checksum_mismatch"
UNSUPPORTED_OS = "unsupported_os"
CONFIG_CORRUPT = "config_corrupt"
CONFIG_UNSAFE = "config_unsafe"
CONFIG_UNWRITABLE = "config_unwritable"
# Larger than the agent reads (MAX_CONFIG_BYTES); docker itself sets no limit.
CONFIG_TOO_LARGE = "config_too_large"
# A config or backup holding credentials that other users can read (`check` reports, the others fix).
SECRET_READABLE = "secret_readable"  # noqa: S105 - a reason code, not a secret
# A token left beside the helper (the file's auths, or the user's credential store) for a managed registry.
STALE_CREDENTIALS = "stale_credentials"
# The run stopped short of the document's execution timeout (see TIMEOUT_ENV) so it could still report.
OUT_OF_TIME = "out_of_time"
NO_SUCH_USER = "no_such_user"
NO_HOME = "no_home"
INTERNAL_ERROR = "internal_error"
# no_python is emitted by entrypoint.sh, never by this file.

# --- per user x registry states ---
STATE_HELPER = "helper"
STATE_LOGGED_IN = "logged_in"
STATE_STALE_AUTH = "stale_auth"
STATE_NONE = "none"
STATE_HELPER_UNAVAILABLE = "helper_unavailable"

# --- parameter patterns: copies of lambda_src/ecr_fleet_auth/contract.py (a test keeps them equal) ---
ACTIONS = ("refresh", "helper", "check")
AUTO_USERS = "auto"
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
HELPER_VERSION_PATTERN = "^" + HELPER_SEMVER_RE + "$"
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
# Where docker login gets its root-only scratch config (removed after); /tmp where there is no /run.
SCRATCH_DIR = "/run"
CONFIG_DIR_NAME = ".docker"
CONFIG_NAME = "config.json"
BACKUP_NAME = "config.json.ecr-fleet-auth.bak"
TEMP_PREFIX = ".config.json.ecr-fleet-auth."
TEMP_SUFFIX = ".tmp"
NEW_CONFIG_MODE = 0o600
# A file holding a credential (a config with tokens, any backup) is readable by its owner only.
SECRET_FILE_MODE = 0o600
NEW_CONFIG_DIR_MODE = 0o700
# What docker, run by a user, searches for docker-credential-<name>: the directories every supported
# distribution's login PATH has (/etc/profile, login.defs); root's adds the sbin ones. ~/bin and other
# per-user additions are not modelled (cron and systemd units do not see them either).
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The agent's own AWS credentials (the instance profile, or DHMC's role) are not the user's: a user's
# helper runs without them, as the user's docker would.
AGENT_CREDENTIALS = re.compile(
    r"AWS_(ACCESS_KEY|SECRET|SESSION_TOKEN|SECURITY_TOKEN|SHARED_CRED|CONFIG_FILE|PROFILE|DEFAULT_PROFILE"
    r"|ROLE|WEB_IDENTITY|CONTAINER_)"
)
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
# Go's encoding/json refuses deeper nesting ("exceeded max depth", scanner.go maxNestingDepth).
MAX_JSON_DEPTH = 10000
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
# A login with less than this left is renewed (tokens last 12 hours): a re-run within 2 hours of a good
# run changes nothing, and runs that reach the instance less than 10 hours apart renew every token in time.
REFRESH_MARGIN = datetime.timedelta(hours=10)
COMMAND_TIMEOUT = 120
# One call of a credential helper or store (docker waits forever; a hung one must not stall the run).
HELPER_TIMEOUT = 15
# The document's step timeout (executionTimeoutSeconds), exported by the document's script; without it
# (the agent run by hand) the document's default. The agent stops a tenth of it (5 to 30 s) short.
TIMEOUT_ENV = "ECR_FLEET_AUTH_TIMEOUT"
DEFAULT_TIMEOUT = 600
IDENTITY_TIMEOUT = 20
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


# When the run must wrap up (time.monotonic()); set by run() from the document's timeout.
DEADLINE = [float("inf")]


def time_left():
    return DEADLINE[0] - time.monotonic()


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
        self.helper = shutil.which(HELPER_NAME, path=USER_PATH)  # where users' docker finds it
        # In parallel: the AWS CLI alone takes a few hundred milliseconds to print its version.
        with ThreadPoolExecutor(max_workers=3) as pool:
            docker = pool.submit(self.probe, self.docker, ["--version"], DOCKER_VERSION_RE)
            aws = pool.submit(self.probe, self.aws, ["--version"], AWS_VERSION_RE)
            helper = pool.submit(self.probe, self.helper, ["-v"], HELPER_VERSION_RE)
            self.docker_version, self.aws_version = docker.result()[1], aws.result()[1]
            self.helper_runs, self.helper_version = helper.result()

    def probe(self, program, args, pattern):
        return tool_probe([program] + args, pattern, self.env) if program else (False, None)

    def find_helper(self):
        self.helper = shutil.which(HELPER_NAME, path=USER_PATH)
        self.helper_runs, self.helper_version = self.probe(self.helper, ["-v"], HELPER_VERSION_RE)

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


# ---------------------------------------------------------------- docker's own reading of config.json
#
# The agent decides every user x registry state the way docker itself does, from docker/cli's
# sources: cli/config/configfile/file.go (the typed ConfigFile, LoadFromReader, decodeAuth,
# getConfiguredCredentialStore), cli/config/credentials/file_store.go (Get, ConvertToHostname) and
# native_store.go (Get, Store), and Go's encoding/json, which docker decodes the file with:
# - a JSON value of the wrong type for any field docker types is an error, though decoding goes on;
#   docker then prints "WARNING: Error parsing config file" and works with what it half-loaded, and
#   its next save (a `docker login`) writes that half back: other registries' credentials are lost
#   (docker/cli #5075). Such a file is `config_corrupt` here and never touched;
# - unknown keys are ignored, `null` is accepted anywhere, object keys match field names
#   case-insensitively (Go's fold: also U+017F and U+212A), repeated map fields merge;
# - only the first JSON value is read (what follows it is never looked at); an empty file is fine;
#   nesting deeper than 10000 levels is an error (Go's maxNestingDepth);
# - every `auth` must be standard base64 (padded; CR and LF ignored) of `user:password`.
# Which fields docker types depends on its version: the schema below carries the versions in which
# each field exists (docker/cli's git history, tests/agent/test_docker_model.py), and the host's docker
# version picks them. A version that cannot be read counts as the newest the schema knows: the likeliest
# reading (distribution builds print odd versions, not old ones), and one that never calls a config
# corrupt for a field today's docker no longer types.


class ConfigRejected(Exception):
    """docker's loader would fail on the file (the message says why, in docker's terms)."""


class JsonObject(list):
    """A JSON object as its (key, value) pairs: order and repeated keys kept, as Go's decoder sees them.

    `span` is where it stands in the file's text, so that a rewrite copies what it does not edit
    byte for byte (None once edited, or for a new one)."""

    span = None


class JsonArray(list):
    span = None


class JsonNumber(object):
    """A JSON number as written: docker types no number, and a rewrite keeps unknown keys' text."""

    def __init__(self, text):
        self.text = text


JSON_SPACE = re.compile(r"[ \t\n\r]*")
JSON_SCALAR = re.compile(r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)|true|false|null")
JSON_LITERALS = {"true": True, "false": False, "null": None}
EMPTY_DOCUMENT = object()


def skip_space(text, pos):
    return JSON_SPACE.match(text, pos).end()


def json_key(text, pos):
    """(key, position after its colon) of an object member starting at pos."""
    pos = skip_space(text, pos)
    if text[pos : pos + 1] != '"':
        raise ValueError("object key expected at %d" % pos)
    key, pos = json.decoder.scanstring(text, pos + 1, True)
    pos = skip_space(text, pos)
    if text[pos : pos + 1] != ":":
        raise ValueError("colon expected at %d" % pos)
    return key, pos + 1


def parse_json(text, pos):
    """(value, end) of the JSON value at text[pos:], as Go's encoding/json reads it: strict syntax
    (no NaN, no trailing comma, no control character in a string), nesting up to Go's limit. Iterative:
    Python's own decoder recurses, and Python 3.12 stops it near 1,500 levels whatever the limit."""
    stack = []  # [container, start, pending key] of each open array or object
    while True:  # here a value is due
        pos = skip_space(text, pos)
        char = text[pos : pos + 1]
        if char in ("{", "["):
            if len(stack) == MAX_JSON_DEPTH:
                raise ValueError("exceeded max depth")
            entry = [JsonObject() if char == "{" else JsonArray(), pos, None]
            stack.append(entry)
            pos = skip_space(text, pos + 1)
            if text[pos : pos + 1] != ("}" if char == "{" else "]"):
                if char == "{":
                    entry[2], pos = json_key(text, pos)
                continue
            pos += 1
            value = stack.pop()[0]
            value.span = (entry[1], pos)
        elif char == '"':
            value, pos = json.decoder.scanstring(text, pos + 1, True)
        else:
            match = JSON_SCALAR.match(text, pos)
            if not match:
                raise ValueError("value expected at %d" % pos)
            pos = match.end()
            value = JsonNumber(match.group()) if match.group(1) else JSON_LITERALS[match.group()]
        while stack:  # the value goes into the innermost open container; close those that end here
            entry = stack[-1]
            container = entry[0]
            is_object = isinstance(container, JsonObject)
            container.append((entry[2], value) if is_object else value)
            pos = skip_space(text, pos)
            char = text[pos : pos + 1]
            if char == ",":
                pos += 1
                if is_object:
                    entry[2], pos = json_key(text, pos)
                break
            if char != ("}" if is_object else "]"):
                raise ValueError("comma or end expected at %d" % pos)
            pos += 1
            value = stack.pop()[0]
            value.span = (entry[1], pos)
        else:
            return value, pos


def parse_json_document(text):
    """(first JSON value, where it ends) of text as Go's json.Decoder reads it; EMPTY_DOCUMENT for
    whitespace only. The text is the file decoded with surrogateescape: bytes survive a rewrite."""
    start = skip_space(text, 0)
    if start == len(text):
        return EMPTY_DOCUMENT, start
    try:
        return parse_json(text, start)
    except ValueError as error:
        raise ConfigRejected("not valid JSON (%s)" % str(error).split(":")[0]) from None


STRING = "string"


def go_map(kind):
    return ("map", kind)


def go_list(kind):
    return ("list", kind)


def go_field(name, kind=STRING, since=None, until=None):
    """A struct field: its JSON name and type, and the docker versions [since, until) that have it."""
    return (name, kind, since, until)


AUTH_CONFIG = (
    "struct",
    "AuthConfig",
    (
        go_field("username"),
        go_field("password"),
        go_field("auth"),
        go_field("email", until=(29, 0)),
        go_field("serveraddress"),
        go_field("identitytoken"),
        go_field("registrytoken"),
    ),
)
PROXY_CONFIG = (
    "struct",
    "ProxyConfig",
    (
        go_field("httpProxy"),
        go_field("httpsProxy"),
        go_field("noProxy"),
        go_field("ftpProxy"),
        go_field("allProxy", since=(23, 0)),
    ),
)
KUBERNETES_CONFIG = ("pointer", ("struct", "KubernetesConfig", (go_field("allNamespaces"),)))
CONFIG_FILE = (
    "struct",
    "ConfigFile",
    (
        go_field("auths", go_map(AUTH_CONFIG)),
        go_field("HttpHeaders", go_map(STRING)),
        go_field("psFormat"),
        go_field("imagesFormat"),
        go_field("networksFormat"),
        go_field("pluginsFormat"),
        go_field("volumesFormat"),
        go_field("statsFormat"),
        go_field("detachKeys"),
        go_field("credsStore"),
        go_field("credHelpers", go_map(STRING)),
        go_field("serviceInspectFormat"),
        go_field("servicesFormat"),
        go_field("tasksFormat"),
        go_field("secretFormat"),
        go_field("configFormat"),
        go_field("nodesFormat"),
        go_field("pruneFilters", go_list(STRING)),
        go_field("proxies", go_map(PROXY_CONFIG), since=(17, 7)),
        go_field("experimental", since=(18, 1), until=(29, 0)),
        go_field("orchestrator", since=(18, 1), until=(18, 6)),
        go_field("stackOrchestrator", since=(18, 6), until=(24, 0)),
        go_field("kubernetes", KUBERNETES_CONFIG, since=(18, 6), until=(23, 0)),
        go_field("currentContext", since=(19, 3)),
        go_field("cliPluginsExtraDirs", go_list(STRING), since=(19, 3)),
        go_field("plugins", go_map(go_map(STRING)), since=(19, 3)),
        go_field("aliases", go_map(STRING), since=(19, 3)),
        go_field("features", go_map(STRING), since=(26, 1)),
    ),
)
# docker/cli's first release is 17.06; an older docker is read as 17.06. An unreadable version is read
# as this one (every field typed today, none typed only in the past): see the section's comment.
NEWEST_DOCKER = (99, 0)
# Loader changes by docker version (file.go history): an empty file is no error since 20.10
# (io.EOF ignored); `null` no longer crashes docker since 23.0 (Decode(configFile), not &configFile);
# an empty `auth` is skipped since 20.10; an empty user name in `auth` is refused since 23.0.
EMPTY_FILE_SINCE = (20, 10)
NULL_DOCUMENT_SINCE = (23, 0)
SKIP_EMPTY_AUTH_SINCE = (20, 10)
NO_EMPTY_USER_SINCE = (23, 0)
KUBERNETES_NAMESPACES = ("", "enabled", "disabled")


def field_exists(field, version):
    """Whether docker `version` ((major, minor)) types this field."""
    _, _, since, until = field
    return (since is None or version >= since) and (until is None or version < until)


def go_fold(name):
    """Go's encoding/json key folding as far as ASCII field names go: ASCII case, and the two
    non-ASCII runes that fold into ASCII letters (U+017F long s, U+212A Kelvin sign)."""
    out = []
    for char in name:
        if char == "\u017f":
            out.append("S")
        elif char == "\u212a":
            out.append("K")
        else:
            out.append(char.upper() if char < "\x80" else char)
    return "".join(out)


def json_kind(value):
    if isinstance(value, JsonObject):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, JsonNumber):
        return "number"
    return "string"


def go_zero(kind):
    if kind == STRING:
        return ""
    return {} if kind[0] == "struct" else None


def match_field(fields, key):
    """The struct field a JSON key sets: an exact name first, else a case-folded one (Go's rule)."""
    for field in fields:
        if field[0] == key:
            return field
    folded = go_fold(key)
    for field in fields:
        if go_fold(field[0]) == folded:
            return field
    return None


def go_decode(value, kind, current, path, version):
    """What Go's json.Unmarshal makes of value for a field of `kind`, starting from `current`."""
    if value is None:  # null leaves strings and structs alone, and makes maps, slices, pointers nil
        return current if kind == STRING or kind[0] == "struct" else None
    if kind == STRING:
        if isinstance(value, str):
            return value
        raise mismatch(value, path, "string")
    tag = kind[0]
    if tag == "map":
        if not isinstance(value, JsonObject):
            raise mismatch(value, path, "a map")
        result = current if current is not None else {}
        for key, item in value:  # each element starts from zero; a repeated key replaces the earlier one
            result[key] = go_decode(item, kind[1], go_zero(kind[1]), path + "." + key, version)
        return result
    if tag == "list":
        if isinstance(value, JsonObject) or not isinstance(value, list):
            raise mismatch(value, path, "a list")
        return [go_decode(item, kind[1], go_zero(kind[1]), path + "[]", version) for item in value]
    if tag == "pointer":
        return go_decode(value, kind[1], current if current is not None else {}, path, version)
    if not isinstance(value, JsonObject):
        raise mismatch(value, path, "an object")
    fields = [field for field in kind[2] if field_exists(field, version)]
    result = dict(current)
    for key, item in value:
        field = match_field(fields, key)
        if field is not None:  # unknown keys are ignored
            name = field[0]
            result[name] = go_decode(
                item, field[1], result.get(name, go_zero(field[1])), path + "." + name, version
            )
    return result


def mismatch(value, path, expected):
    return ConfigRejected(
        "%s: docker expects %s, the file has a JSON %s" % (path.lstrip("."), expected, json_kind(value))
    )


BASE64_STD = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def decode_auth(auth, version, key):
    """(user, password) from an `auth` value, or ConfigRejected: decodeAuth in file.go."""
    if auth == "":
        return "", ""
    data = auth.replace("\r", "").replace("\n", "")  # Go's base64 decoder skips CR and LF
    if not BASE64_STD.match(data):
        raise ConfigRejected("auths.%s.auth is not base64" % key)
    user, colon, password = base64.b64decode(data).partition(b":")
    if not colon or (not user and version >= NO_EMPTY_USER_SINCE):
        raise ConfigRejected("auths.%s.auth is not base64 of user:password" % key)
    return user.decode("utf-8", "replace"), password.strip(b"\x00").decode("utf-8", "replace")


class Credential(object):
    """What docker holds for a registry: user and password, or an identity or registry token."""

    def __init__(self, username="", password="", identity_token="", registry_token="", email=""):
        self.username = username
        self.password = password
        self.identity_token = identity_token
        self.registry_token = registry_token
        self.email = email

    @property
    def is_secret(self):
        return bool(self.username or self.password or self.identity_token or self.registry_token)

    @property
    def is_empty(self):
        """An entry docker's file store treats as unchanged when a store login writes `{}`."""
        return not (self.is_secret or self.email)

    def digest(self):
        """Fingerprint of a user:password login (None for anything else), as recorded with its expiry."""
        if self.identity_token or self.registry_token or not (self.username or self.password):
            return None
        return auth_digest(basic_auth(self.username, self.password))

    def __repr__(self):
        return "Credential(%s, secret=%s)" % (self.username, "yes" if self.is_secret else "no")


class DockerView(object):
    """The parts of a loaded ConfigFile that decide where docker finds each registry's credentials."""

    def __init__(self, auths, cred_helpers, creds_store):
        self.auths = auths  # key as written -> Credential
        self.cred_helpers = cred_helpers
        self.creds_store = creds_store

    def store_for(self, server):
        """getConfiguredCredentialStore: credHelpers[server] (even ""), else credsStore; "" = the file."""
        if self.cred_helpers is not None and server in self.cred_helpers:
            return self.cred_helpers[server]
        return self.creds_store

    def keys_for(self, server):
        """Every auths key docker's file store reads as this server: the exact key, then legacy forms."""
        return [key for key in self.auths if key == server or convert_to_hostname(key) == server]

    def file_credential(self, server):
        """fileStore.Get: the exact key, else the first legacy key (Go's map order is random anyway)."""
        if server in self.auths:
            return self.auths[server]
        for key in self.keys_for(server):
            return self.auths[key]
        return None

    def holds_secrets(self):
        return any(credential.is_secret for credential in self.auths.values())


class DockerModel(object):
    """docker's config loader for one docker version ((major, minor); None: NEWEST_DOCKER)."""

    def __init__(self, version):
        self.version = tuple(version or NEWEST_DOCKER)

    def load(self, raw):
        """(document, DockerView) as docker loads raw, or ConfigRejected where docker warns and half-loads."""
        document = parse_json_document(raw.decode("utf-8", "surrogateescape"))[0]
        return document, self.view(document)

    def view(self, document):
        if document is EMPTY_DOCUMENT:
            if self.version < EMPTY_FILE_SINCE:
                raise ConfigRejected("empty (docker before 20.10 cannot parse an empty file)")
            return DockerView({}, None, "")
        if document is None and self.version < NULL_DOCUMENT_SINCE:
            raise ConfigRejected("null (docker before 23.0 crashes on it)")
        if document is not None and not isinstance(document, JsonObject):
            raise ConfigRejected("docker expects a JSON object, the file has a JSON %s" % json_kind(document))
        loaded = go_decode(document, CONFIG_FILE, {}, "", self.version)
        auths = {}
        for key, entry in (loaded.get("auths") or {}).items():
            username, password = entry.get("username", ""), entry.get("password", "")
            auth = entry.get("auth", "")
            if auth or self.version < SKIP_EMPTY_AUTH_SINCE:
                username, password = decode_auth(auth, self.version, key)
            auths[key] = Credential(
                username,
                password,
                entry.get("identitytoken", ""),
                entry.get("registrytoken", ""),
                entry.get("email", ""),
            )
        namespaces = (loaded.get("kubernetes") or {}).get("allNamespaces", "")
        if namespaces not in KUBERNETES_NAMESPACES:
            raise ConfigRejected("kubernetes.allNamespaces must be enabled or disabled")
        return DockerView(auths, loaded.get("credHelpers"), loaded.get("credsStore", ""))


def docker_version_tuple(text):
    match = re.match(r"^(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


# --- ConvertToHostname (credentials/file_store.go) and the part of Go's url.Parse it relies on

URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
URL_USERINFO = re.compile(r"^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$")
URL_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
URL_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:\[\]<>\"]*$")


def convert_to_hostname(key):
    """The host:port docker's file store reads an auths key as (`https://host/v1/` -> host)."""
    if "://" in key:
        host = url_host_port(key)
        if host:
            return host
    return key.split("/", 1)[0]


def url_host_port(text):
    """Hostname[:port] of text as Go's url.Parse gives it, or None where Parse fails or finds no host."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return None
    text, _, fragment = text.partition("#")
    scheme, colon, rest = text.partition(":")
    if not colon or not URL_SCHEME.match(scheme) or URL_BAD_ESCAPE.search(fragment):
        return None
    rest = rest.partition("?")[0]
    if not rest.startswith("//") or rest.startswith("///"):
        return None
    authority, slash, path = rest[2:].partition("/")
    if URL_BAD_ESCAPE.search(path):
        return None
    userinfo, at, host = authority.rpartition("@")
    if at and (not URL_USERINFO.match(userinfo) or URL_BAD_ESCAPE.search(userinfo)):
        return None
    if host.startswith("[") or "%" in host or not URL_HOST_CHARS.match(host):
        return None  # IPv6 literals and escapes never name an ECR registry
    name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    if colon and not port.isdigit() and port != "":
        return None  # Go: invalid port
    if not name:
        return None
    return "%s:%s" % (name, port) if port else name


# --- the file as written, and the agent's edits to it: nothing in the file is lost. What the agent does
# not edit is copied byte for byte (its span in the text), data after the first JSON value stays, and a
# map field written more than once keeps every occurrence (even those a later `null` hides from docker):
# the agent's entry goes into the last occurrence, or a new one after a trailing null.


def field_places(document, name):
    """Indexes of the top-level pairs docker reads as field `name` (exact or folded key)."""
    folded = go_fold(name)
    return [index for index, (key, _) in enumerate(document) if go_fold(key) == folded]


def set_in_map(document, name, key, value):
    """Make docker's map field `name` hold key -> value, however the file spells or repeats the field."""
    remove_from_map(document, name, (key,))
    places = field_places(document, name)
    target = document[places[-1]][1] if places else None
    if not isinstance(target, JsonObject):  # absent, or null: Go's decoder reads a map after it anew
        target = JsonObject()
        document.append((name, target))
    target.span = None
    target.append((key, value))


def remove_from_map(document, name, keys):
    for index in field_places(document, name):
        target = document[index][1]
        if isinstance(target, JsonObject) and any(key in keys for key, _ in target):
            target[:] = [(key, value) for key, value in target if key not in keys]
            target.span = None


def json_text(value, text, depth=0):
    """JSON in the layout docker writes (tab indent) for what the agent edited; the rest as in text."""
    span = getattr(value, "span", None)
    if span:
        return text[span[0] : span[1]]
    if isinstance(value, JsonObject):  # only the document and maps the agent edited: a few levels deep
        if not value:
            return "{}"
        pad = "\t" * (depth + 1)
        items = [pad + json.dumps(key) + ": " + json_text(item, text, depth + 1) for key, item in value]
        return "{\n" + ",\n".join(items) + "\n" + "\t" * depth + "}"
    if isinstance(value, JsonNumber):
        return value.text
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return json.dumps(value)


class DockerAuthFile(object):
    """One user's ~/.docker/config.json: as found, as docker reads it, and the agent's edits to it.

    This class is "a user's registry auth" for docker; another client's file (podman's
    containers-auth.json) would be a sibling with the same questions and edits.
    """

    def __init__(self, model, raw=None, mode=None, backup_mode=None):
        self.model = model
        self.raw = raw
        self.mode = mode
        self.backup_mode = backup_mode  # set when a backup exists that others may read
        self.text = (raw or b"").decode("utf-8", "surrogateescape")
        self.document, self.end = parse_json_document(self.text)
        self.view = model.view(self.document) if raw is not None else DockerView({}, None, "")
        self.edited = None

    @property
    def exists(self):
        return self.raw is not None

    # --- questions docker would answer
    def store_for(self, registry):
        return self.view.store_for(registry)

    def file_credential(self, registry):
        return self.view.file_credential(registry)

    def stale_secret_keys(self, registry):
        """auths keys for this registry that still hold a secret (left beside a helper)."""
        return [key for key in self.view.keys_for(registry) if self.view.auths[key].is_secret]

    # --- edits (to a fresh parse of the text; `render` gives the new bytes)
    def _editable(self):
        if self.edited is None:
            document = parse_json_document(self.text)[0]
            self.edited = document if isinstance(document, JsonObject) else JsonObject()
            self.edited.span = None
        return self.edited

    @property
    def changed(self):
        return self.edited is not None

    def set_login(self, registry, username, password):
        """What a file-store `docker login` writes: the exact key, the whole entry replaced."""
        set_in_map(
            self._editable(), "auths", registry, JsonObject([("auth", basic_auth(username, password))])
        )

    def mark_in_store(self, registry):
        """What a store `docker login` leaves in the file: `{}` under the exact key (skipped when there)."""
        current = self.view.auths.get(registry)
        if current is None or not current.is_empty:
            set_in_map(self._editable(), "auths", registry, JsonObject())

    def use_helper(self, registry):
        """credHelpers[registry] = ecr-login; every auths key docker reads as it removed (docker logout)."""
        if (self.view.cred_helpers or {}).get(registry) != HELPER_CRED_NAME:
            set_in_map(self._editable(), "credHelpers", registry, HELPER_CRED_NAME)
        keys = self.view.keys_for(registry)
        if keys:
            remove_from_map(self._editable(), "auths", keys)

    def render(self):
        tail = self.text[self.end :] if skip_space(self.text, self.end) < len(self.text) else "\n"
        return (json_text(self._editable(), self.text) + tail).encode("utf-8", "surrogateescape")


def registry_state(auth_file, registry, record, stores):
    """helper / stale_auth / helper_unavailable / logged_in (+ expires_at when known) / none.

    `stores` (CredentialStores) runs the user's credential helpers as docker would. A state that is a
    problem carries it as "problem" (an AgentError), which Run.note_state reports and takes out.
    """
    name = auth_file.store_for(registry)
    try:
        if name == HELPER_CRED_NAME:
            stores.verify(registry)
            stale = ["auths." + key for key in auth_file.stale_secret_keys(registry)]
            for store, server in stale_stores(auth_file, [registry]):
                try:
                    if stores.credential(store, server) is not None:
                        stale.append("docker-credential-%s (%s)" % (store, server))
                except AgentError:
                    pass  # a store docker cannot run hands nothing to anyone
            if stale:
                why = "a token from before the helper is still in %s" % ", ".join(stale)
                return {"state": STATE_STALE_AUTH, "problem": AgentError(STALE_CREDENTIALS, why)}
            return {"state": STATE_HELPER}
        credential = stores.credential(name, registry) if name else auth_file.file_credential(registry)
    except AgentError as error:
        return {"state": STATE_HELPER_UNAVAILABLE, "helper": name, "problem": error}
    if credential is None or not credential.is_secret:
        return {"state": STATE_NONE}
    return logged_in_state(record_expiry(record, credential.digest()))


def logged_in_state(expires_at):
    state = {"state": STATE_LOGGED_IN}
    if expires_at is not None:
        state["expires_at"] = format_time(expires_at)
        if expires_at <= utc_now():
            state["expired"] = True
    return state


# ---------------------------------------------------------------- the config on disk (read as root, safely)


def open_config_dir(account):
    """fd of the user's .docker directory, or None if absent. Refuses symlinks and foreign owners.

    NO_HOME where docker, run by the user, could keep no config: the home is missing, or .docker is
    absent and the user may not create it (a service account whose home belongs to root)."""
    try:
        home_fd = os.open(account.home, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        reason = NO_HOME if error.errno == errno.ENOENT else CONFIG_UNSAFE
        raise AgentError(reason, "home %s of %s unusable: %s" % (account.home, account.name, error)) from None
    try:
        try:
            dir_fd = os.open(CONFIG_DIR_NAME, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=home_fd)
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise AgentError(
                    CONFIG_UNSAFE, "%s is a symlink or not a directory" % account.config_dir
                ) from None
            if not may_write(account, os.fstat(home_fd)):
                raise AgentError(
                    NO_HOME, "%s may not create %s in its home" % (account.name, account.config_dir)
                ) from None
            return None
    finally:
        os.close(home_fd)
    info = os.fstat(dir_fd)
    if info.st_uid != account.uid:
        os.close(dir_fd)
        raise AgentError(CONFIG_UNSAFE, "%s is not owned by %s" % (account.config_dir, account.name))
    return dir_fd


def may_write(account, info):
    """Whether the user may create entries in a directory of this stat (owner, group, other bits)."""
    if account.uid in (0, info.st_uid):
        return account.uid == 0 or bool(info.st_mode & 0o200)
    if info.st_gid in os.getgrouplist(account.name, account.gid):
        return bool(info.st_mode & 0o020)
    return bool(info.st_mode & 0o002)


def read_config(account, model):
    """The user's docker config as docker would load it; refused (untouched) when unsafe or rejected."""
    dir_fd = open_config_dir(account)
    if dir_fd is None:
        return DockerAuthFile(model)
    try:
        return read_config_at(dir_fd, account, model)
    finally:
        os.close(dir_fd)


def read_config_at(dir_fd, account, model):
    path = os.path.join(account.config_dir, CONFIG_NAME)
    try:
        fd = os.open(CONFIG_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return DockerAuthFile(model, backup_mode=lax_backup_mode(dir_fd, account))
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
            sizes = (path, info.st_size, MAX_CONFIG_BYTES)
            raise AgentError(CONFIG_TOO_LARGE, "%s has %d bytes; the agent reads at most %d" % sizes)
        if not info.st_mode & stat.S_IRUSR:
            # docker, running as the user, cannot read it: it warns, starts empty, and a login overwrites it.
            raise AgentError(CONFIG_CORRUPT, "%s is not readable by %s" % (path, account.name))
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    try:
        return DockerAuthFile(model, raw, stat.S_IMODE(info.st_mode), lax_backup_mode(dir_fd, account))
    except ConfigRejected as error:
        raise AgentError(CONFIG_CORRUPT, "docker cannot load %s: %s" % (path, error)) from None


def lax_backup_mode(dir_fd, account):
    """The mode of our backup beside the config when group or others may read it (older agents kept
    the config's mode), else None."""
    try:
        info = os.stat(BACKUP_NAME, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode) and info.st_uid == account.uid and info.st_mode & 0o077:
        return stat.S_IMODE(info.st_mode)
    return None


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
    """The environment docker has when the user runs it, as far as the agent can tell: the instance's
    (proxies, CA bundle, region), the user's HOME, USER, LOGNAME and PATH, none of the agent's AWS
    credentials (under DHMC those are not the instance profile the user's own tools get)."""
    env = {name: value for name, value in host.env.items() if not AGENT_CREDENTIALS.match(name)}
    env.update(
        HOME=account.home,
        USER=account.name,
        LOGNAME=account.name,
        PATH=ROOT_PATH if account.uid == 0 else USER_PATH,
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


def restrict_as_user(account, name):
    """Make ``name`` in the user's docker config dir owner-only (run as the user); symlinks refused."""
    dir_fd = user_config_dir_fd(account, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, SECRET_FILE_MODE)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def save_config(run, account, user, auth_file):
    """Back up, then atomically replace the user's config, as the user; the new file as docker reads it.

    Owner and mode are kept, except that a file holding credentials is never left readable by group
    or others (nor is its backup, which is always owner-only): it is made 0600 and that is reported.
    """
    content = auth_file.render()
    try:
        written = DockerAuthFile(auth_file.model, content, NEW_CONFIG_MODE)
    except ConfigRejected as error:  # our own edit must load in docker as we meant it
        raise AgentError(INTERNAL_ERROR, "edited config would not load in docker: %s" % error) from None
    mode = auth_file.mode if auth_file.exists else NEW_CONFIG_MODE
    if written.view.holds_secrets() and mode & 0o077:
        run.report.tightened(user, CONFIG_NAME, mode)
        mode = SECRET_FILE_MODE
    if auth_file.exists:
        run_as_user(account, write_as_user, account, BACKUP_NAME, auth_file.raw, SECRET_FILE_MODE, False)
        if auth_file.backup_mode is not None:
            run.report.tightened(user, BACKUP_NAME, auth_file.backup_mode)
    run_as_user(account, write_as_user, account, CONFIG_NAME, content, mode, True)
    written.mode = mode
    return written


def redact(text, secret):
    text = text.strip()
    if secret:
        text = text.replace(secret, "<redacted>")
    return text[-500:]


# ---------------------------------------------------------------- credential helpers used as stores

# docker-credential-helpers credentials/error.go: what `get` prints when it has nothing for a server.
CREDENTIALS_NOT_FOUND = "credentials not found in native keychain"
# native_store.go: a helper holding an identity token reports this user name.
TOKEN_USERNAME = "<token>"  # noqa: S105 - a marker user name, not a secret
HELPER_SUFFIX_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


class CredentialStores(object):
    """The credential helpers one user's docker runs, found and run as that user's docker would: on
    the user's PATH, with the user's privileges and environment, with docker's own protocol
    (docker-credential-helpers client/client.go, docker/cli credentials/native_store.go): `get` and
    `erase` read the server on stdin, `store` reads {"ServerURL","Username","Secret"}; answers come on
    stdout. A secret is only ever on a pipe and in memory: never in argv, a log or a file of ours."""

    def __init__(self, host, account):
        self.account = account
        self.env = user_env(host, account)
        # helper name -> AgentError once it could not run; (helper name, server) -> what `get` gave
        # (a Credential, None for nothing, or the AgentError it raised); ("verify", server) likewise.
        self.known = {}

    def remember(self, key, func, *args):
        if key not in self.known:
            try:
                self.known[key] = func(*args)
            except AgentError as error:
                self.known[key] = error
        if isinstance(self.known[key], AgentError):
            raise self.known[key]
        return self.known[key]

    def call(self, name, action, stdin, extra_env=None):
        """(rc, stdout, stderr) of `docker-credential-<name> <action>`, or HELPER_UNAVAILABLE."""
        program = "docker-credential-" + name
        why = self.known.get(name)
        if why is None:
            try:
                if not fullmatch(HELPER_SUFFIX_RE, name):
                    raise OSError("not a helper name")
                done = run_command(
                    [program, action],
                    dict(self.env, **(extra_env or {})),
                    input=stdin,
                    timeout=HELPER_TIMEOUT,
                    preexec_fn=privilege_dropper(self.account),
                )
                if done.returncode >= 0 and done.returncode not in (126, 127):  # a wrapper's exec failed
                    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace")
                why = "exit status %d" % done.returncode
            except OSError as error:  # not on the PATH, not executable by the user, not a program
                why = error.strerror or str(error)
            except subprocess.TimeoutExpired:
                why = "no answer in time"
            where = (program, action, self.account.name, self.env["PATH"], why)
            why = self.known[name] = AgentError(HELPER_UNAVAILABLE, "%s %s as %s (PATH %s): %s" % where)
        raise why

    def credential(self, name, server):
        """What `docker-credential-<name> get` holds for server (None when nothing), as docker reads it."""
        return self.remember((name, server), self.get, name, server)

    def get(self, name, server):
        code, stdout, stderr = self.call(name, "get", server.encode("utf-8"))
        answer = stdout.decode("utf-8", "replace").strip()
        if code != 0:
            if answer == CREDENTIALS_NOT_FOUND:
                return None
            # By the protocol stdout carries the error here, never a secret.
            detail = (answer + " " + stderr.strip())[-200:]
            raise AgentError(HELPER_UNAVAILABLE, "docker-credential-%s get failed: %s" % (name, detail))
        try:
            data = json.loads(answer)
            username, secret = data.get("Username") or "", data.get("Secret") or ""
        except (ValueError, AttributeError):
            raise AgentError(HELPER_UNAVAILABLE, "docker-credential-%s get: not JSON" % name) from None
        if username == TOKEN_USERNAME:
            return Credential(identity_token=secret)
        return Credential(username, secret)

    def verify(self, server):
        """Raise why not unless ecr-login gives the user's docker a token for server (then discarded)."""
        self.remember(("verify", server), self.probe, server)

    def probe(self, server):
        # Its cache (a file holding a token) off, its log nowhere (amazon-ecr-credential-helper
        # ecr-login/config: AWS_ECR_CACHE_DIR, else ~/.ecr; then TMPDIR): a read-only probe, fit for check.
        off = {"AWS_ECR_DISABLE_CACHE": "true", "AWS_ECR_CACHE_DIR": "/dev/null", "TMPDIR": "/dev/null"}
        code, stdout, stderr = self.call(HELPER_CRED_NAME, "get", server.encode("utf-8"), off)
        if code:  # then stdout carries an error, not a token (the helper protocol)
            detail = (stdout.decode("utf-8", "replace") + " " + stderr).strip()[-200:]
            raise AgentError(HELPER_VERIFY_FAILED, "%s get failed: %s" % (HELPER_NAME, detail))

    def store(self, name, server, username, secret):
        payload = json.dumps({"ServerURL": server, "Username": username, "Secret": secret}) + "\n"
        code, stdout, stderr = self.call(name, "store", payload.encode("utf-8"))
        if code != 0:
            detail = redact(stdout.decode("utf-8", "replace") + " " + stderr, secret)[-200:]
            raise AgentError(HELPER_UNAVAILABLE, "docker-credential-%s store failed: %s" % (name, detail))
        self.known[(name, server)] = Credential(username, secret)

    def erase(self, name, server):
        code, stdout, stderr = self.call(name, "erase", server.encode("utf-8"))
        if code != 0:
            detail = (stdout.decode("utf-8", "replace") + " " + stderr).strip()[-200:]
            raise AgentError(STALE_CREDENTIALS, "docker-credential-%s erase failed: %s" % (name, detail))
        self.known[(name, server)] = None


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
    """Root's own record of expiries, keyed by a fingerprint of the stored login (never the token)."""
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


def record_expiry(record, digest):
    """The expiry recorded for this very login (same fingerprint), else None."""
    if not record or not digest or record.get("auth_sha256") != digest:
        return None
    return parse_time(record.get("expires_at"))


def remember_login(records, account, registry, digest, expires_at):
    entry = {"auth_sha256": digest}
    if expires_at is not None:
        entry["expires_at"] = format_time(expires_at)
    records.setdefault(account.name, {})[registry] = entry


def is_fresh(record, digest, now):
    expires_at = record_expiry(record, digest)
    return expires_at is not None and expires_at - now > REFRESH_MARGIN


# ---------------------------------------------------------------- tokens and the agent's AWS identity


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


class TokenError(AgentError):
    """A failed token call; its message names the AWS identity the call was made with, once known."""

    def __init__(self, reason, service, region, detail):
        self.service, self.region, self.detail = service, region, detail
        self.identity = None
        AgentError.__init__(self, reason, self.describe())

    def describe(self):
        who = " (%s)" % self.identity if self.identity else ""
        return "%s token for %s%s: %s" % (self.service, self.region, who, self.detail)

    def name_identity(self, identity):
        self.identity = identity
        self.message = self.describe()


def fetch_token(host, source):
    """One GetAuthorizationToken with the instance's own credentials; the token arrives on a pipe."""
    service, region = source
    argv = [host.aws, service, "get-authorization-token", "--region", region, "--output", "json"]
    try:
        completed = run_command(argv, host.root_env())
    except subprocess.TimeoutExpired:
        raise TokenError(TOKEN_FAILED, service, region, "timed out") from None
    except OSError as error:
        raise AgentError(AWS_CLI_MISSING, "cannot run the AWS CLI: %s" % error) from None
    errors = completed.stderr.decode("utf-8", "replace").strip()
    if completed.returncode != 0:
        reason = NO_CREDENTIALS if any(marker in errors for marker in CREDENTIAL_ERRORS) else TOKEN_FAILED
        raise TokenError(reason, service, region, errors[-200:])
    return parse_token(completed.stdout, service, region)


def parse_token(stdout, service, region):
    try:
        data = json.loads(stdout.decode("utf-8"))["authorizationData"]
        if isinstance(data, list):  # private ECR returns a list, ECR Public a single object
            data = data[0]
        decoded = base64.b64decode(data["authorizationToken"]).decode("utf-8")
        username, password = decoded.split(":", 1)
    except (ValueError, KeyError, IndexError, TypeError):
        raise TokenError(TOKEN_FAILED, service, region, "unexpected response") from None
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
    failures = [outcome for outcome in results.values() if isinstance(outcome, TokenError)]
    if failures:  # off the success path: only a failed token call pays for the identity lookup
        arn, error = caller_identity(host, failures[0].region)
        for failure in failures:
            failure.name_identity("as %s" % arn if arn else "no AWS identity: %s" % error)
    return results


def caller_identity(host, region):
    """(ARN, None) of the identity the agent's AWS calls use, or (None, why not).

    Under Default Host Management Configuration Run Command hands the agent the DHMC role, not the
    instance profile (amazon-ssm-agent #610), so this can differ from what users' own pulls use.
    """
    if not host.aws:
        return None, "AWS CLI not found"
    # Short timeouts, one attempt: many private subnets reach ECR but have no STS endpoint, and the
    # report must not wait minutes for an answer it can do without. Regional STS, as VPC endpoints are.
    argv = [host.aws, "sts", "get-caller-identity", "--region", region, "--output", "json"]
    argv += ["--cli-connect-timeout", "5", "--cli-read-timeout", "10"]
    env = host.root_env()
    env.update(AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard", AWS_STS_REGIONAL_ENDPOINTS="regional")
    try:
        completed = run_command(argv, env, timeout=IDENTITY_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        return None, str(error)[-120:]
    if completed.returncode != 0:
        return None, completed.stderr.decode("utf-8", "replace").strip()[-120:]
    try:
        arn = json.loads(completed.stdout.decode("utf-8"))["Arn"]
    except (ValueError, KeyError, TypeError):
        return None, "unexpected sts response"
    return (arn, None) if isinstance(arn, str) else (None, "unexpected sts response")


# ---------------------------------------------------------------- the report


class UserReport(object):
    def __init__(self, name):
        self.name = name
        self.registries = {}
        self.reason = None
        self.changed = False
        self.tightened = {}  # file name -> its mode before the agent made it owner-only

    def as_dict(self):
        entry = {"user": self.name, "registries": self.registries}
        if self.reason:
            entry["reason"] = self.reason
        if self.changed:
            entry["changed"] = True
        if self.tightened:
            entry["mode_tightened"] = self.tightened
        return entry


class Report(object):
    """Collects what happened; renders the single result line."""

    def __init__(self, action):
        self.action = action if action in ACTIONS else None
        self.host = None
        self.users = []
        self.problems = []
        self.notices = []  # (reason, message): worth reporting, not a failure
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

    def tightened(self, user, name, mode):
        """A file holding credentials that group or others could read was made owner-only (0600)."""
        user.tightened[name] = "%04o" % mode
        user.changed = True
        self.changes += 1
        message = "%s: %s was %04o, now %04o (it holds credentials)" % (
            user.name,
            name,
            mode,
            SECRET_FILE_MODE,
        )
        log(message)
        self.notices.append((MODE_TIGHTENED, message))

    def outcome(self):
        if self.problems and self.action != "check":
            return FAILED
        return CHANGED if self.changes else UNCHANGED

    def result(self, outcome=None, reason=None, message=None):
        outcome = outcome or self.outcome()
        if reason is None:
            reason = (self.problems or self.notices or [(OK, "")])[0][0]
        if message is None:
            notes = [text for _, text in self.problems[:2]] + [text for _, text in self.notices[:1]]
            message = "; ".join(notes + self.message_parts)
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
        # docker's loader as of the host's docker CLI (all fields any version types when unknown).
        self.model = DockerModel(docker_version_tuple(host.docker_version))
        self.stores = {}

    def stores_for(self, account):
        if account.name not in self.stores:
            self.stores[account.name] = CredentialStores(self.host, account)
        return self.stores[account.name]

    def load_user_configs(self):
        """[(account, user report, auth file)] for users whose config is safe to read; the others reported.

        With `auto`, an account docker could keep no config for (no home, or one it may not write:
        a service account in the docker group) is listed with reason no_home, not as a failure."""
        loaded = []
        for name in self.unknown:
            self.report.problem(NO_SUCH_USER, "no such user: %s" % name, self.report.user(name))
        for account in self.accounts:
            user = self.report.user(account.name)
            try:
                loaded.append((account, user, read_config(account, self.model)))
            except AgentError as error:
                if error.reason == NO_HOME and self.params.users == AUTO_USERS:
                    log(error.message)
                    user.reason = NO_HOME
                else:
                    self.report.problem(error.reason, error.message, user)
            except Exception as error:  # noqa: BLE001 - one user's surprise must not stop the others
                self.unexpected(user, error)
        return loaded

    def unexpected(self, user, error):
        traceback.print_exc(file=sys.stderr)
        self.report.problem(INTERNAL_ERROR, "%s: unexpected %s" % (user.name, type(error).__name__), user)

    def per_user(self, loaded, step):
        """step(account, user, auth file) for each user; those whose step failed unexpectedly (reported as
        internal_error, traceback on stderr) are left out of what it returns, and the others go on."""
        done = []
        for entry in loaded:
            try:
                step(*entry)
                done.append(entry)
            except Exception as error:  # noqa: BLE001
                self.unexpected(entry[1], error)
        return done

    def note_state(self, user, registry, state):
        """Record a registry's state; a credential helper that cannot run is a problem, never health, and
        a stale token left beside the helper is worth a notice (and, in `check`, the reason)."""
        problem = state.pop("problem", None)
        user.registries[registry] = state
        if problem:
            message = "%s@%s: %s" % (user.name, registry, problem.message)
            if problem.reason == STALE_CREDENTIALS:
                log(message)
                self.report.notices.append((STALE_CREDENTIALS, message))
            else:
                self.report.problem(problem.reason, message, user)

    def guard_secrets(self, account, user, auth_file):
        """A config holding credentials, or a backup, that others may read: `check` reports it; the other
        actions make it owner-only (as the user: the owner stays) and report mode_tightened."""
        lax = [(BACKUP_NAME, auth_file.backup_mode)] if auth_file.backup_mode is not None else []
        if auth_file.mode is not None and auth_file.mode & 0o077 and auth_file.view.holds_secrets():
            lax.append((CONFIG_NAME, auth_file.mode))
        for name, mode in lax:
            where = "%s: %s is %04o" % (account.name, name, mode)
            if self.params.action == "check":
                self.report.problem(SECRET_READABLE, where + ": other users can read its credentials", user)
                continue
            try:
                run_as_user(account, restrict_as_user, account, name)
            except AgentError as error:
                self.report.problem(error.reason, "%s: %s" % (where, error.message), user)
                continue
            self.report.tightened(user, name, mode)


def plural(count, singular, plural_form):
    return "%d %s" % (count, singular if count == 1 else plural_form)


def action_check(run):
    records = load_records(run.state_dir)
    region = token_source(run.params.registries[0])[1]
    with ThreadPoolExecutor(max_workers=1) as pool:  # the identity call overlaps reading the configs
        identity = pool.submit(caller_identity, run.host, region)

        def check_user(account, user, auth_file):
            run.guard_secrets(account, user, auth_file)
            for registry in run.params.registries:
                record = record_for(records, account, registry)
                state = registry_state(auth_file, registry, record, run.stores_for(account))
                run.note_state(user, registry, state)

        run.per_user(run.load_user_configs(), check_user)
        arn, error = identity.result()
    run.report.host["identity"] = arn
    if not run.host.docker:
        run.report.problems.insert(0, (DOCKER_MISSING, "docker CLI not found"))
    run.report.message_parts.append(
        "checked %s x %s"
        % (
            plural(len(run.report.users), "user", "users"),
            plural(len(run.params.registries), "registry", "registries"),
        )
    )
    if arn is None:
        run.report.message_parts.append("no AWS identity for the agent: %s" % error)
    return run.report.result()


class Login(object):
    """One user x registry pair that refresh may have to log in, and where docker keeps its credential."""

    def __init__(self, account, user, registry, store, digest):
        self.account = account
        self.user = user
        self.registry = registry
        self.store = store  # credential helper docker stores it with ("" = the config file)
        self.digest = digest  # fingerprint of what docker holds now (None = nothing usable)
        self.token = None

    def fail(self, report, reason, message):
        report.problem(reason, "%s@%s: %s" % (self.account.name, self.registry, message), self.user)
        self.user.registries[self.registry] = {
            "state": STATE_NONE if self.digest is None else STATE_LOGGED_IN
        }
        self.user.registries[self.registry]["error"] = reason


def action_refresh(run):
    host, report = run.host, run.report
    if not host.docker:
        return report.result(FAILED, DOCKER_MISSING, "docker CLI not found")
    records = load_records(run.state_dir)
    loaded, pending = plan_logins(run, records)
    if pending and not host.aws:  # an instance fully on the helper needs no AWS CLI
        return report.result(FAILED, AWS_CLI_MISSING, "AWS CLI not found")
    # A token is fetched only for regions where some login needs one.
    tokens = fetch_tokens(host, unique([token_source(login.registry) for login in pending]))
    writes = []
    for login in pending:
        token = tokens[token_source(login.registry)]
        if isinstance(token, AgentError):
            login.fail(report, token.reason, token.message)
            continue
        login.token = token
        if login.digest == auth_digest(basic_auth(token.username, token.password)):
            login_done(run, records, login)  # docker already holds this very token
        else:
            writes.append(login)
    # docker login checks each new token once per registry; docker writes nothing (see verify_login).
    refused = {}
    for registry in unique([login.registry for login in writes]):
        refused[registry] = verify_login(host, registry, writes_token(writes, registry))
    logged_in = set()

    def write_user(account, user, auth_file):
        mine = [login for login in writes if login.account is account]
        for login in write_logins(run, (account, user, auth_file), mine, refused):
            login_done(run, records, login)
            logged_in.add(account.name)
        if not auth_file.changed:
            run.guard_secrets(account, user, auth_file)

    run.per_user(loaded, write_user)
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


def writes_token(writes, registry):
    return next(login.token for login in writes if login.registry == registry)


def plan_logins(run, records):
    """(loaded configs, logins that may need a token); helper-managed and fresh ones are only reported."""
    now = utc_now()
    pending = []

    def plan_user(account, user, auth_file):
        stores = run.stores_for(account)
        for registry in run.params.registries:
            record = record_for(records, account, registry)
            store = auth_file.store_for(registry)
            if store == HELPER_CRED_NAME:
                run.note_state(user, registry, registry_state(auth_file, registry, record, stores))
                continue
            try:
                current = stores.credential(store, registry) if store else auth_file.file_credential(registry)
            except AgentError as error:
                state = {"state": STATE_HELPER_UNAVAILABLE, "helper": store, "problem": error}
                run.note_state(user, registry, state)
                continue
            digest = current.digest() if current is not None else None
            if is_fresh(record, digest, now):
                user.registries[registry] = logged_in_state(record_expiry(record, digest))
            else:
                pending.append(Login(account, user, registry, store, digest))

    loaded = run.per_user(run.load_user_configs(), plan_user)
    accounts = [entry[0] for entry in loaded]
    return loaded, [login for login in pending if login.account in accounts]


def write_logins(run, loaded_user, logins, refused):
    """Store each verified token where docker keeps it for this user; returns the logins written.

    A store login goes to the helper (`store`, secret on stdin) and leaves `{}` in the file, a file
    login replaces the registry's entry: what `docker login` writes, without docker's rewrite of
    the rest of the file (docker drops keys it does not know). One backup and one write per user.
    """
    account, user, auth_file = loaded_user
    done = []
    for login in logins:
        if refused[login.registry] is not None:
            login.fail(run.report, refused[login.registry].reason, refused[login.registry].message)
            continue
        token = login.token
        if login.store:
            try:
                run.stores_for(account).store(login.store, login.registry, token.username, token.password)
            except AgentError as error:
                login.fail(run.report, error.reason, error.message)
                continue
            auth_file.mark_in_store(login.registry)
        else:
            auth_file.set_login(login.registry, token.username, token.password)
        done.append(login)
    if auth_file.changed:
        try:
            save_config(run, account, user, auth_file)
        except AgentError as error:
            in_file = [login for login in done if not login.store]
            for login in in_file:
                login.fail(run.report, error.reason, "config not written: %s" % error.message)
            if not in_file:  # the tokens are in the store; only docker's `{}` marker is missing
                run.report.problem(
                    error.reason, "%s: config not written: %s" % (account.name, error.message), user
                )
            done = [login for login in done if login.store]
    for login in done:
        log(
            "%s: logged in to %s%s"
            % (account.name, login.registry, " (%s)" % login.store if login.store else "")
        )
        user.changed = True
        run.report.changes += 1
    return done


def login_done(run, records, login):
    token = login.token
    remember_login(
        records,
        login.account,
        login.registry,
        auth_digest(basic_auth(token.username, token.password)),
        token.expires_at,
    )
    login.user.registries[login.registry] = logged_in_state(token.expires_at)


# docker login stores through this helper name, which exists nowhere: see verify_login.
NO_STORE_HELPER = "ecr-fleet-auth-verify-only"
# cli/command/registry/login.go storeCredentials: printed only after the registry accepted the login.
LOGIN_ACCEPTED_STORE_FAILED = "Error saving credentials"


def verify_login(host, registry, token):
    """None when the registry accepts the token, else an AgentError; as `docker login` checks it.

    docker runs as root with a scratch DOCKER_CONFIG (root-only, removed after) whose credHelpers
    send this registry to a helper that does not exist: docker authenticates with the registry
    (through the daemon, or client-side without one) and only then fails to store. So docker
    verifies the token and writes it nowhere; the agent writes it where each user's docker keeps it.
    """
    try:
        scratch = scratch_dir()
    except OSError as error:
        return AgentError(LOGIN_FAILED, "no scratch directory for docker login: %s" % error)
    try:
        with open(os.path.join(scratch, CONFIG_NAME), "w") as handle:
            json.dump({"credHelpers": {registry: NO_STORE_HELPER}}, handle)
        env = host.root_env()
        env["DOCKER_CONFIG"] = scratch
        argv = [host.docker, "login", "--username", token.username, "--password-stdin", registry]
        try:
            completed = run_command(argv, env, input=token.password.encode("utf-8"))
        except subprocess.TimeoutExpired:
            return AgentError(LOGIN_FAILED, "docker login to %s timed out" % registry)
        except OSError as error:
            return AgentError(DOCKER_MISSING, "cannot run docker: %s" % error)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    diagnostics = redact((completed.stderr + completed.stdout).decode("utf-8", "replace"), token.password)
    if completed.returncode == 0 or LOGIN_ACCEPTED_STORE_FAILED in diagnostics:
        log("registry %s accepted the token" % registry)
        return None
    return AgentError(LOGIN_FAILED, "docker login to %s failed: %s" % (registry, login_failure(diagnostics)))


def login_failure(diagnostics):
    """The telling line of a failed docker login: the registry's refusal if any endpoint gave one
    (docker tries https, then http, and prints the last endpoint's error at the end)."""
    lines = [line.strip() for line in diagnostics.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\b(401|403)\b|unauthori[sz]ed|denied|forbidden", line, re.IGNORECASE):
            match = re.search(r'error="(.*)"$', line)
            return (match.group(1) if match else line)[-200:]
    return (lines[-1] if lines else "no output")[-200:]


def scratch_dir():
    """A new root-only directory on /run (memory, never persisted), else in the temp directory."""
    try:
        return tempfile.mkdtemp(prefix="ecr-fleet-auth-login.", dir=SCRATCH_DIR)
    except OSError:
        return tempfile.mkdtemp(prefix="ecr-fleet-auth-login.")


def action_helper(run):
    host, report = run.host, run.report
    if not host.docker:
        return report.result(FAILED, DOCKER_MISSING, "docker CLI not found")
    if not host.helper_runs:
        try:
            how = install_helper(run.params, host)
        except AgentError as error:
            return report.result(FAILED, error.reason, error.message)
        host.find_helper()
        if not host.helper_runs:
            return report.result(FAILED, HELPER_INSTALL_FAILED, "installed via %s but not runnable" % how)
        report.changes += 1
        report.message_parts.append("installed %s %s via %s" % (HELPER_NAME, host.helper_version or "", how))
        report.host = host.summary()
    configured, already = [], []

    def configure_user(account, user, auth_file):
        stale = stale_stores(auth_file, run.params.registries)
        for registry in run.params.registries:
            auth_file.use_helper(registry)
        if auth_file.changed:
            try:
                auth_file = save_config(run, account, user, auth_file)
            except AgentError as error:
                report.problem(error.reason, "%s: %s" % (account.name, error.message), user)
                return
            log("%s: credHelpers set for %s" % (account.name, ", ".join(run.params.registries)))
            user.changed = True
            report.changes += 1
            configured.append(account)
        else:
            run.guard_secrets(account, user, auth_file)
            already.append(user)
        erase_from_stores(run, account, user, stale)
        for registry in run.params.registries:
            run.note_state(user, registry, registry_state(auth_file, registry, None, run.stores_for(account)))

    run.per_user(run.load_user_configs(), configure_user)
    if configured:
        report.message_parts.append("helper configured for %s" % plural(len(configured), "user", "users"))
    already = [user for user in already if user.reason is None]  # and still fine after the checks
    if already:
        count = plural(len(already), "user", "users")
        report.message_parts.append("helper already configured for %s" % count)
    report.message_parts.append(docker_login_note(host.helper_version))
    return report.result()


def docker_login_note(version):
    """What happens to a user's own `docker login` to a registry now served by the helper."""
    # docker login stores through credHelpers[registry]; ecr-login's `store` answers "not implemented"
    # (amazon-ecr-credential-helper ecr-login/ecr.go Add), unless 0.9+ runs with AWS_ECR_IGNORE_CREDS_STORAGE.
    if helper_version_tuple(version) >= (0, 9, 0):
        return (
            "users' own docker login to these fails unless AWS_ECR_IGNORE_CREDS_STORAGE=true; pulls need none"
        )
    return "users' own docker login to these now fails (helper store: not implemented); pulls need none"


def helper_version_tuple(version):
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", version or "")
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


def stale_stores(auth_file, registries):
    """[(helper, server)] where a credential for a managed registry may lie in a store once the helper
    serves it: the server forms `docker logout` erases (logout.go: host, http://host, https://host),
    in the store docker used for each and in the default credsStore."""
    found = []
    for registry in registries:
        forms = [registry, "http://" + registry, "https://" + registry]
        names = unique([auth_file.store_for(form) for form in forms] + [auth_file.view.creds_store])
        for name in names:
            if name and name != HELPER_CRED_NAME:
                found.extend((name, form) for form in forms)
    return unique(found)


def erase_from_stores(run, account, user, stale):
    """`erase` what those stores still hold (as docker logout would), once the config names the helper.
    What cannot be erased stays in the store, a token docker no longer uses for the registry but a
    secret all the same: reported (stale_credentials) until it is gone."""
    stores = run.stores_for(account)
    for name, server in stale:
        if not shutil.which("docker-credential-" + name, os.F_OK, stores.env["PATH"]):
            continue  # not installed where the user's docker looks: nothing there it could reach
        try:
            if stores.credential(name, server) is None:
                continue
            stores.erase(name, server)
        except AgentError as error:
            why = "a token for %s may still be in docker-credential-%s: %s" % (server, name, error.message)
            run.report.problem(STALE_CREDENTIALS, "%s: %s" % (account.name, why), user)
            continue
        log("%s: erased %s from docker-credential-%s" % (account.name, server, name))
        user.changed = True
        run.report.changes += 1


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
    timeout = environ.get(TIMEOUT_ENV, "")
    timeout = int(timeout) if fullmatch(r"[0-9]{1,5}", timeout) else DEFAULT_TIMEOUT
    # Stop short of the step's timeout: SSM kills the run there, and the result line with it.
    DEADLINE[0] = time.monotonic() + timeout - min(30, max(5, timeout // 10))
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
        result = ACTION_HANDLERS[params.action](run)
        if time_left() <= 0:  # what was left undone failed at once: say why first
            message = "stopped short of the %d s step timeout; %s" % (timeout, result["message"])
            result.update(reason=OUT_OF_TIME, message=message[:MESSAGE_MAX_CHARS])
            if params.action != "check":
                result["outcome"] = FAILED
        return result
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
