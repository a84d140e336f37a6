"""What every login session's environment gets (/etc/environment): the switch that keeps users' own
`docker login` working once credHelpers send a registry to ecr-login (KeepUserDockerLogin).

docker login stores through credHelpers[registry]; ecr-login's `store` answers "not implemented" and
the login fails, unless the helper is 0.9.0+ and the caller's environment has
AWS_ECR_IGNORE_CREDS_STORAGE=true, exactly "true" (amazon-ecr-credential-helper ecr-login/ecr.go Add,
CHANGELOG 0.9.0, #847): then it stores nothing and succeeds, and pulls go on through the helper.
The variable must be where docker runs. /etc/environment is read by pam_env (readenv=1) in the PAM
stacks of login, su, sshd and cron on the supported distributions; systemd services get it only from
their unit (Environment=), which the agent leaves to their owners.
"""

import os
import re
import stat

from .outcomes import CONFIG_UNSAFE, AgentError

ENVIRONMENT_FILE = "/etc/environment"
IGNORE_CREDS_STORAGE = "AWS_ECR_IGNORE_CREDS_STORAGE"


def keep_user_docker_login(path=ENVIRONMENT_FILE):
    """Make path set AWS_ECR_IGNORE_CREDS_STORAGE=true; True when it changed (backed up first, the
    rest kept, owner and mode kept), False when it already did. A symlink or non-regular file, or one
    that turns the variable off (false, 0, no, off: an administrator's choice), is refused
    (config_unsafe); another value ("1", "TRUE": meant on, but only "true" is honoured) is replaced."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno != 2:  # ENOENT: a new file, root's and 0644 as distributions ship it
            raise AgentError(CONFIG_UNSAFE, "%s: %s" % (path, error.strerror)) from None
        raw, info = b"", None
    else:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != 0:
                raise AgentError(CONFIG_UNSAFE, "%s is not a regular file of root's" % path)
            raw = handle.read(1024 * 1024)
    pattern = r"^\s*(?:export\s+)?%s\s*=\s*(.*)$" % IGNORE_CREDS_STORAGE
    lines = raw.decode("utf-8", "surrogateescape").splitlines()
    values = [re.match(pattern, line).group(1).strip("\"' ") for line in lines if re.match(pattern, line)]
    if values == ["true"]:
        return False
    off = [value for value in values if value.lower() in ("false", "0", "no", "off")]
    if off:  # an administrator turned it off: their choice, kept
        raise AgentError(CONFIG_UNSAFE, "%s sets %s=%s: left as it is" % (path, IGNORE_CREDS_STORAGE, off[0]))
    kept = [line for line in lines if not re.match(pattern, line)]
    text = "\n".join(kept + ["%s=true" % IGNORE_CREDS_STORAGE]) + "\n"
    mode = stat.S_IMODE(info.st_mode) if info else 0o644
    if info:
        write_root_file(path + ".ecr-fleet-auth.bak", raw, 0o600)
    write_root_file(path, text.encode("utf-8", "surrogateescape"), mode)
    return True


def write_root_file(path, content, mode):
    """Atomically replace a file of root's: temp file beside it, fsync, rename."""
    temp = "%s.ecr-fleet-auth.%d.tmp" % (path, os.getpid())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, path)
