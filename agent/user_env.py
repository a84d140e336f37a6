"""The environment a user's container clients run with, as far as it decides which credential files they
read: DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME (and TMPDIR, podman's
last resort for its runtime directory).

A user runs clients in more than one kind of session, and each sees its own environment; a kind is
modelled for a user who has it (detected, not assumed):
- login: a login shell (SSH, `su -`, the console). pam_env reads /etc/environment (NAME=VALUE, an
  optional `export `, quotes stripped, no expansion: linux-pam modules/pam_env/pam_env.c
  _parse_env_file); the shell then runs /etc/profile.d/*.sh and the user's ~/.profile,
  ~/.bash_profile, ~/.bash_login and ~/.bashrc. pam_systemd sets XDG_RUNTIME_DIR=/run/user/<uid>
  (pam_systemd(8)), a directory that exists while the user has a session (when it does not, no file
  in it can answer).
- su: the same shell files in a session pam_systemd did not open (`sudo -iu`, `su -` from another
  session): no XDG_RUNTIME_DIR, so rootless podman and buildah find their runtime directory
  themselves (/run/user/<uid> when it is the user's, else $TMPDIR/podman-run-<uid>: containers_client).
  Modelled for them only (read_order): skopeo there reads /run/containers/<uid>/auth.json, which a
  user cannot even search once root's podman made /run/containers 0700, and nothing the agent writes
  could change that.
- units, for users with systemd user units (~/.config/systemd/user, Quadlet's ~/.config/containers/
  systemd and /etc/containers/systemd/users/<uid>) or lingering (/var/lib/systemd/linger/<user>):
  environment.d(5), *.conf in /usr/lib/environment.d, /etc/environment.d and
  ~/.config/environment.d, KEY=VALUE with ${VAR}, $VAR, ${VAR:-default} and ${VAR:+alternate}
  expansion; XDG_RUNTIME_DIR as for logins.
- services, for root (system services, Run Command, cron) and users with a crontab
  (/var/spool/cron/crontabs/<user>, /var/spool/cron/<user>): /etc/environment only (cron's PAM
  stack), no XDG_RUNTIME_DIR.
From shell files only what a static reading can decide is taken: `export NAME=VALUE` (or NAME=VALUE
and `export NAME`), at the top level or under `if` / `&&` conditions or a `case` on the user's name
or uid ($USER, $LOGNAME, $(id -un), $(whoami), $UID, $(id -u)); values may use $HOME, $USER,
$LOGNAME, ~ and the variables modelled here. A file sourced (`. file`, `source file`) by a known path
is read in its place (the user's or root's files, three levels deep); one whose path or contents
the agent cannot read is reported. Any other assignment of a modelled variable (computed by shell
code, under other conditions, in a function) is what the agent cannot know: it is reported
(environment_unknown) and the variable keeps the value the agent could establish.
"""

import fnmatch
import os
import re
import stat

MODELLED = ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "TMPDIR")
# What a credential helper run by a client takes from the session (the AWS SDK's settings, proxies):
# the helper is proven with these as each kind of session has them (stores.CredentialStores.probe).
HELPER_VARIABLE = re.compile(r"^(AWS_[A-Z0-9_]+|(?i:https?_proxy|no_proxy|all_proxy))$")
ETC_ENVIRONMENT = "/etc/environment"
PROFILE_DIR = "/etc/profile.d"
USER_PROFILES = (".profile", ".bash_profile", ".bash_login", ".bashrc")
ENVIRONMENT_D = ("/usr/lib/environment.d", "/etc/environment.d")
USER_ENVIRONMENT_D = ".config/environment.d"
RUNTIME_DIR = "/run/user/%d"
MAX_SOURCE_BYTES = 256 * 1024

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
WORD = r"(?:\"[^\"]*\"|'[^']*'|[^\s;&|\"'()<>]+)"
ASSIGNMENT = re.compile(
    r"^(?:export\s+)?(" + NAME + r")=(" + WORD + r"?)\s*(?:;\s*export\s+(" + NAME + r"))?;?$"
)
EXPORT = re.compile(r"^export\s+(" + NAME + r"(?:\s+" + NAME + r")*)\s*;?$")
SUBJECT = r"\"?\$(?:\{?(USER|LOGNAME|UID)\}?|\((id -un|whoami|id -u)\))\"?"
TEST = re.compile(
    r"^(?:\[\[?|test)\s+" + SUBJECT + r"\s+(==?|!=|-eq|-ne)\s+[\"']?([A-Za-z0-9._-]+)[\"']?\s*(?:\]\]?)?$"
)
IF_LINE = re.compile(r"^(if|elif)\s+(.+?)(?:\s*;\s*then)?$")
ONE_LINE_IF = re.compile(r"^if\s+(.+?)\s*;\s*then\s+(.+?)\s*;?\s*fi$")
AND_LINE = re.compile(r"^(.+?)\s*&&\s*(.+)$")
OPENERS = re.compile(r"^(?:case|for|while|until|select)\b|\{\s*$|\(\)\s*\{?")
SOURCE = re.compile(r"^(?:\.|source)\s+(" + WORD + r")\s*;?$")
CASE = re.compile(r"^case\s+" + SUBJECT + r"\s+in$")
CASE_BRANCH = re.compile(r"^\(?([^()]+)\)\s*(.*?)\s*(;;)?$")
MAX_SOURCE_DEPTH = 3
CLOSERS = re.compile(r"^(?:esac|done|\})\s*;?$")
REFERENCE = re.compile(r"\$(?:\{(" + NAME + r")(?:(:[-+])([^}]*))?\}|(" + NAME + r"))")


class Environment(object):
    """What one kind of session of the user sees: {variable: value} for the modelled variables."""

    def __init__(self, kind, values, helper_env=None):
        self.kind = kind
        self.values = values
        self.helper_envs = [helper_env or {}]  # what a helper run from each such session gets

    def get(self, name):
        return self.values.get(name) or None


def read_source(path, owner_uid=None):
    """A file's text, or None: owned by root or (for the user's own files, `owner_uid`) the user, bounded
    in size. A user's file is read without following a symlink at its end; the system's are followed
    (Debian's /usr/lib/environment.d/99-environment.conf is a link to /etc/environment)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if owner_uid is not None else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid not in (0, owner_uid):
            return None
        return handle.read(MAX_SOURCE_BYTES).decode("utf-8", "replace")


def unquote(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def pam_env_file(text, values):
    """/etc/environment as pam_env reads it: no expansion, `#` ends the value."""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.startswith("export "):
            line = line[7:]
        name, equals, value = line.partition("=")
        if equals and re.match("^" + NAME + "$", name):
            values[name] = unquote(value.split("#", 1)[0].strip())


def expand(value, values, unset_ok):
    """value with ${VAR}, $VAR, ${VAR:-x}, ${VAR:+x} expanded from values; None when it refers to
    anything else (unless unset_ok, environment.d's rule: an unknown variable expands to nothing)."""
    missing = []

    def substitute(match):
        name = match.group(1) or match.group(4)
        current = values.get(name)
        if current is None and not unset_ok:
            missing.append(name)
            return ""
        if match.group(2) == ":-":
            return current or match.group(3)
        if match.group(2) == ":+":
            return match.group(3) if current else ""
        return current or ""

    result = REFERENCE.sub(substitute, value)
    if missing or "`" in result or "$" in result:
        return None
    return result


def environment_d_file(text, values):
    for raw_line in text.splitlines():
        line = raw_line.strip()
        name, equals, value = line.partition("=")
        if line.startswith("#") or not equals or not re.match("^" + NAME + "$", name):
            continue
        expanded = expand(unquote(value.strip()), values, True)
        if expanded is not None:
            values[name] = expanded


def shell_value(word, values, home):
    """A shell word's value, as far as the agent can tell without running shell code; None if not."""
    if word.startswith("'"):
        return unquote(word)
    quoted = word.startswith('"')
    text = unquote(word)
    if not quoted and (text == "~" or text.startswith("~/")):
        text = home + text[1:]
    return expand(text, values, False)


def user_test(condition, account):
    """True/False for a test of the user's name or uid, None for any other condition."""
    match = TEST.match(condition.strip())
    if not match:
        return None
    subject = match.group(1) or match.group(2)
    actual = str(account.uid) if subject in ("UID", "id -u") else account.name
    equal = actual == match.group(4)
    return equal if match.group(3) in ("=", "==", "-eq") else not equal


class ShellFile(object):
    """The assignments of one sourced shell file that apply to this user, in order."""

    def __init__(self, path, account, values, unknown, depth=0):
        self.path, self.account, self.values, self.unknown = path, account, values, unknown
        self.depth = depth
        self.pending = {}  # assigned but not (yet) exported: name -> value
        self.blocks = []  # per open block: True (applies), False (does not), None (cannot tell)
        self.cases = []  # per open `case` on the user: (subject's value, whether a branch matched)

    def applies(self):
        return all(self.blocks)

    def decided(self):
        return None not in self.blocks

    def read(self, text):
        for number, line in enumerate(text.splitlines(), 1):
            self.line(line.split(" #", 1)[0].strip(), number)

    def line(self, line, number):
        if not line or line.startswith("#") or line == "then":
            return
        one_line = ONE_LINE_IF.match(line)
        if one_line:
            self.blocks.append(user_test(one_line.group(1), self.account))
            self.statement(one_line.group(2), number)
            self.blocks.pop()
            return
        condition = IF_LINE.match(line)
        if condition:
            verdict = user_test(condition.group(2), self.account)
            if condition.group(1) == "if":
                self.blocks.append(verdict)
            elif self.blocks:  # elif: applies only if nothing before it did
                before = self.blocks[-1]
                self.blocks[-1] = None if before is None or verdict is None else (not before and verdict)
            return
        if self.case_line(line, number):
            return
        if line in ("else", "fi") and self.blocks:
            if line == "fi":
                self.blocks.pop()
            elif self.blocks[-1] is not None:
                self.blocks[-1] = not self.blocks[-1]
            return
        if CLOSERS.match(line) and self.blocks:
            self.blocks.pop()
            return
        if OPENERS.search(line):
            self.blocks.append(None)
            return
        guarded = AND_LINE.match(line)
        if guarded and user_test(guarded.group(1), self.account) is not None:
            self.blocks.append(user_test(guarded.group(1), self.account))
            self.statement(guarded.group(2), number)
            self.blocks.pop()
            return
        self.statement(line, number)

    def case_line(self, line, number):
        """`case "$USER" in` (or another test subject), its `pattern|pattern)` branches, `;;`, `esac`:
        a branch applies when a pattern matches the user (shell glob), and none after one did."""
        opened = CASE.match(line)
        if opened:
            subject = opened.group(1) or opened.group(2)
            actual = str(self.account.uid) if subject in ("UID", "id -u") else self.account.name
            self.cases.append([actual, False, len(self.blocks)])
            self.blocks.append(False)
            return True
        if not self.cases or len(self.blocks) != self.cases[-1][2] + 1:
            return False
        case = self.cases[-1]
        if line in ("esac", "esac;"):
            self.cases.pop()
            self.blocks.pop()
            return True
        if line == ";;":
            self.blocks[-1] = False
            return True
        branch = CASE_BRANCH.match(line)
        if not branch:
            return False
        patterns = [unquote(pattern.strip()) for pattern in branch.group(1).split("|")]
        matched = not case[1] and any(fnmatch.fnmatchcase(case[0], pattern) for pattern in patterns)
        case[1] = case[1] or matched
        self.blocks[-1] = matched
        if branch.group(2):
            self.line(branch.group(2), number)
        if branch.group(3):
            self.blocks[-1] = False
        return True

    def source(self, word, where):
        """`. file` / `source file`: read it as part of this one, when its path is known (else report)."""
        path = shell_value(word, self.values, self.account.home)
        if not self.applies():
            return
        text = None
        if path and self.decided() and self.depth < MAX_SOURCE_DEPTH:
            owner = self.account.uid if path.startswith(self.account.home.rstrip("/") + "/") else 0
            text = read_source(path, owner)
            if text is None and not os.path.lexists(path):
                return  # nothing sourced: nothing set
        if text is None:
            self.unknown.append(("what it sources (%s)" % word, where))
            return
        nested = ShellFile(path, self.account, self.values, self.unknown, self.depth + 1)
        nested.pending = self.pending
        nested.read(text)

    def statement(self, line, number):
        where = "%s:%d" % (self.path, number)
        sourced = SOURCE.match(line)
        if sourced:
            return self.source(sourced.group(1), where)
        if re.match(r"^(?:\.|source)\s", line) and self.applies():
            return self.unknown.append(("what it sources", where))
        assignment = ASSIGNMENT.match(line)
        exported = EXPORT.match(line)
        if assignment and (not assignment.group(3) or assignment.group(3) == assignment.group(1)):
            name = assignment.group(1)
            if name not in MODELLED and not HELPER_VARIABLE.match(name):
                return
            value = shell_value(assignment.group(2), self.values, self.account.home)
            if not self.decided() or value is None:
                self.unknown.append((name, where))
            elif self.applies():
                if line.startswith("export ") or assignment.group(3) or name in self.values:
                    self.values[name] = value
                else:
                    self.pending[name] = value
            return
        if exported:
            for name in exported.group(1).split():
                if name in self.pending and self.applies():
                    self.values[name] = self.pending.pop(name)
            return
        for name in MODELLED:
            if re.search(r"\b" + name + r"=", line):
                self.unknown.append((name, where))


def sorted_sources(folder, suffix):
    try:
        names = sorted(name for name in os.listdir(folder) if name.endswith(suffix))
    except OSError:
        return []
    return [os.path.join(folder, name) for name in names]


def environment_d_sources(account):
    """environment.d(5): *.conf from each directory, ordered by file name; a later directory's file of
    the same name replaces an earlier one's."""
    chosen = {}
    for folder in ENVIRONMENT_D + (os.path.join(account.home, USER_ENVIRONMENT_D),):
        for path in sorted_sources(folder, ".conf"):
            chosen[os.path.basename(path)] = path
    return [chosen[name] for name in sorted(chosen)]


USER_UNITS = (
    "~/.config/systemd/user",
    "~/.config/containers/systemd",
    "/etc/containers/systemd/users/%(uid)d",
)
LINGER = "/var/lib/systemd/linger/%(name)s"
CRONTABS = ("/var/spool/cron/crontabs/%(name)s", "/var/spool/cron/%(name)s")


def has_any(account, patterns):
    values = {"uid": account.uid, "name": account.name}
    for pattern in patterns:
        path = pattern % values
        if path.startswith("~/"):
            path = os.path.join(account.home, path[2:])
        try:  # a file, or a directory with something in it
            if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
                return True
        except OSError:
            continue
    return False


def user_environments(account):
    """([Environment], [(variable, where)]): the distinct environments the user's clients run with, and
    where a modelled variable is set in a way the agent cannot evaluate."""
    unknown = []
    pam = {}
    text = read_source(ETC_ENVIRONMENT)
    if text is not None:
        pam_env_file(text, pam)
    base = {name: value for name, value in pam.items() if name in MODELLED or HELPER_VARIABLE.match(name)}
    session = {"XDG_RUNTIME_DIR": RUNTIME_DIR % account.uid}
    identity = {"HOME": account.home, "USER": account.name, "LOGNAME": account.name}

    login = dict(identity, **base)
    login.update(session)
    user_files = [os.path.join(account.home, name) for name in USER_PROFILES]
    for path in sorted_sources(PROFILE_DIR, ".sh") + user_files:
        owner = account.uid if path in user_files else 0
        text = read_source(path, owner)
        if text is not None:
            ShellFile(path, account, login, unknown).read(text)

    units = dict(identity, **session)
    for path in environment_d_sources(account):
        text = read_source(path, account.uid if path.startswith(account.home + "/") else 0)
        if text is not None:
            environment_d_file(text, units)

    su = dict(login)
    if su.get("XDG_RUNTIME_DIR") == session["XDG_RUNTIME_DIR"]:  # pam_systemd's, not a profile's
        del su["XDG_RUNTIME_DIR"]
    kinds = [("login", login), ("su", su)]
    if has_any(account, USER_UNITS + (LINGER,)):
        kinds.append(("units", units))
    if account.uid == 0 or has_any(account, CRONTABS):
        kinds.append(("services", dict(base)))
    environments = []
    for kind, values in kinds:
        helper_env = {name: value for name, value in values.items() if HELPER_VARIABLE.match(name)}
        environment = Environment(
            kind, {name: values[name] for name in MODELLED if values.get(name)}, helper_env
        )
        same = [other for other in environments if other.values == environment.values]
        if not same:
            environments.append(environment)
        elif helper_env not in same[0].helper_envs:
            same[0].helper_envs.append(helper_env)
    return environments, unknown
