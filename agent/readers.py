"""Readers of registry credentials other than users' docker: the agent manages kubelet's file and
reports Nomad's and Swarm's copies, each with what to do.

Managed, kubelet (self-managed Kubernetes nodes): it reads the first of /var/lib/kubelet/config.json,
<its working directory>/config.json, $HOME/.docker/config.json and /.docker/config.json that exists
(kubernetes pkg/credentialprovider/config.go DefaultDockerConfigJSONPaths), re-read every 5 minutes,
and of it only `auths`: its DockerConfigJSON has no credHelpers or credsStore. So the file it reads
stays auths-only: `helper` never turns it into credHelpers, and `refresh` and `helper` renew the
tokens of the managed registries it holds. kubelet's own file is listed in the report under its path.

Reported, Nomad: its docker driver reads the file named by `auth { config = ... }` in its client
configuration, `auths` first, and runs `auth.helper` without HOME (hashicorp/nomad
drivers/docker/utils.go; nomad #5527): a file that is no managed user's is not renewed.
Reported, Swarm: `docker service create/update --with-registry-auth` stores the caller's credentials
with the service once; they are never renewed (moby #36126): on a manager, the next step is
`docker service update --with-registry-auth <service>` after each renewal.
"""

import glob
import os
import pwd
import re
import subprocess

from .commands import run_command
from .credential_files import UserCredentials
from .docker_client import CONFIG_NAME
from .docker_model import NEWEST_DOCKER
from .log import log
from .orders import FileRef, ReadOrder
from .outcomes import READER_NOMAD, READER_SWARM, AgentError
from .users import Account

KUBELET_FILE = "/var/lib/kubelet/config.json"
NOMAD_CONFIGS = "/etc/nomad.d/*"
# docker info's Go template for the Swarm state, built at run time: SSM substitutes double braces.
SWARM_FORMAT = "%s.Swarm.LocalNodeState%s %s.Swarm.ControlAvailable%s" % ("{" * 2, "}" * 2, "{" * 2, "}" * 2)


class ReaderAccount(Account):
    """A reader's file of root's, in a folder of its own (kubelet's), handled as a user's docker config
    (its folder as the config's)."""

    def __init__(self, path, registries=None):
        Account.__init__(self, path, 0, 0, os.path.dirname(path))
        self.registries = registries

    @property
    def config_dir(self):
        return self.home


def kubelet_file(proc="/proc"):
    """The file a running kubelet reads credentials from (its own, else root's docker config), or None."""
    for name in [name for name in os.listdir(proc) if name.isdigit()]:
        try:
            with open("%s/%s/comm" % (proc, name)) as handle:
                if handle.read().strip() == "kubelet":
                    break
        except OSError:
            continue
    else:
        return None
    if os.path.isfile(KUBELET_FILE):
        return KUBELET_FILE
    return os.path.join(pwd.getpwuid(0).pw_dir, ".docker", CONFIG_NAME)


def kubelet_entry(run):
    """(account, user report, credentials) for kubelet's own file, read as docker's loader reads it,
    its registries the managed ones it holds; None when kubelet reads no file of its own. A file it
    cannot safely read is reported."""
    if run.kubelet != KUBELET_FILE:
        return None
    account = ReaderAccount(KUBELET_FILE)
    user = run.report.user(KUBELET_FILE)
    files = [FileRef(KUBELET_FILE)]
    order = ReadOrder("kubelet", "docker", files, KUBELET_FILE, docker_version=NEWEST_DOCKER)
    creds = UserCredentials(run.host, account, environments=[], orders=[order])
    try:
        view = creds.docker_view(order)[1]
    except AgentError as error:
        run.report.problem(error.reason, "%s: %s" % (KUBELET_FILE, error.message), user)
        return None
    account.registries = [r for r in run.params.registries if view.keys_for(r)]
    return account, user, creds


def report_unmanaged(run, loaded):
    """Notices for the readers the agent does not manage: Nomad's auth.config file when it is no
    managed user's file, and this node's Swarm services when it is a manager."""
    managed = [ref.path for _, _, creds in loaded for ref in creds.refs()]
    for path in glob.glob(NOMAD_CONFIGS):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(1024 * 1024)
        except OSError:
            continue
        for block in re.findall(r"auth\s*\{([^}]*)\}", text):
            found = re.search(r"\bconfig\s*=\s*\"([^\"]+)\"", block)
            if found and found.group(1) not in managed:
                why = "Nomad (%s) reads %s, no managed user's config: its tokens are not renewed"
                notice(run, READER_NOMAD, why % (path, found.group(1)))
    if not run.host.docker:
        return
    try:
        done = run_command(
            [run.host.docker, "info", "--format", SWARM_FORMAT],
            run.host.root_env(),
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return
    if done.returncode == 0 and done.stdout.split() == [b"active", b"true"]:
        why = "this node is a Swarm manager: services created --with-registry-auth keep their own copy"
        notice(run, READER_SWARM, why)


def notice(run, reason, message):
    log(message)
    run.report.notices.append((reason, message))
