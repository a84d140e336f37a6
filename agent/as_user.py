"""Acting as a user: the user's privileges (a forked child drops to them) and environment.

Every change to a user's files is made by a process running as that user, so the kernel, not
the agent's checks, bounds what it can write; the user's credential helpers run the same way."""

import errno
import os
import re

from .outcomes import CONFIG_UNSAFE, CONFIG_UNWRITABLE, INTERNAL_ERROR, AgentError

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
