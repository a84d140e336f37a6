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
import shutil
import subprocess

from .commands import run_command
from .credential_files import UserCredentials
from .docker_client import CONFIG_NAME
from .docker_model import NEWEST_DOCKER
from .log import log
from .orders import FileRef, ReadOrder
from .outcomes import READER_NOMAD, READER_SWARM, AgentError
from .params import unique
from .users import Account

KUBELET_UNITS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
KUBELET_ARGS = ["/etc/sysconfig/kubelet", "/etc/default/kubelet"]  # KUBELET_EXTRA_ARGS
NOMAD_CONFIG_DIR = "/etc/nomad.d"
DAEMON_TIMEOUT = 5  # `docker info` answers in milliseconds; a hung daemon must not hold every action
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
    """The file kubelet reads credentials from, kubelet running or only installed (a binary, a unit,
    its root directory: it starts again at the next boot), or None: the first that exists of
    <--root-dir>/config.json, <its working directory>/config.json, root's ~/.docker/config.json and
    /.docker/config.json (kubernetes pkg/credentialprovider/config.go DefaultDockerConfigJSONPaths;
    cmd/kubelet/app/server.go sets the preferred path to the root directory), else root's file.
    --root-dir is read from the running kubelet's command line, else from its unit, drop-ins and
    the KUBELET_EXTRA_ARGS files; the working directory is the running one's, else the unit's (/)."""
    root_dir, cwd, text = "/var/lib/kubelet", "/", ""
    for name in [name for name in os.listdir(proc) if name.isdigit()]:
        try:
            with open("%s/%s/comm" % (proc, name)) as handle:
                if handle.read().strip() != "kubelet":
                    continue
            with open("%s/%s/cmdline" % (proc, name)) as handle:
                text = handle.read().replace("\0", " ")
            cwd = os.readlink("%s/%s/cwd" % (proc, name))
            break
        except OSError:
            continue
    else:
        units = ["%s/kubelet.service%s" % (d, s) for d in KUBELET_UNITS for s in ("", ".d/*.conf")]
        text = "\n".join(read_file(path) for pattern in units + KUBELET_ARGS for path in glob.glob(pattern))
        installed = shutil.which("kubelet", path="/usr/local/bin:/usr/bin:/bin") or os.path.isdir(root_dir)
        if not (text or installed):
            return None
        found = re.search(r"(?m)^\s*WorkingDirectory=(/\S*)", text)
        cwd = found.group(1) if found else cwd
    found = re.search(r"--root-dir[= ]+[\"']?([^\s\"']+)", text)
    home = os.path.join(pwd.getpwuid(0).pw_dir, ".docker")
    paths = [
        os.path.join(d, CONFIG_NAME) for d in (found.group(1) if found else root_dir, cwd, home, "/.docker")
    ]
    return next((path for path in paths if os.path.isfile(path)), os.path.join(home, CONFIG_NAME))


def read_file(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1024 * 1024)
    except OSError:
        return ""


def kubelet_entry(run):
    """(account, user report, credentials) for kubelet's own file, read as docker's loader reads it,
    its registries the managed ones it holds; None when kubelet reads no file of its own. A file it
    cannot safely read is reported."""
    path = run.kubelet
    if path is None or path == os.path.join(pwd.getpwuid(0).pw_dir, ".docker", CONFIG_NAME):
        return None
    account = ReaderAccount(path)
    user = run.report.user(path)
    order = ReadOrder("kubelet", "docker", [FileRef(path)], path, docker_version=NEWEST_DOCKER)
    creds = UserCredentials(run.host, account, environments=[], orders=[order])
    try:
        view = creds.docker_view(order)[1]
    except AgentError as error:
        run.report.problem(error.reason, "%s: %s" % (path, error.message), user)
        return None
    account.registries = [r for r in run.params.registries if view.keys_for(r)]
    return account, user, creds


def report_unmanaged(run, loaded):
    """Notices for the readers the agent does not manage: Nomad's auth.config file when it is no
    managed user's file, and this node's Swarm services when it is a manager."""
    managed = [ref.path for _, _, creds in loaded for ref in creds.refs()]
    for path in nomad_configs():
        text = read_file(path)
        # HCL `auth { config = "..." }`, JSON "auth": {"config": "..."}, the legacy client option
        # "docker.auth.config" (either syntax)
        blocks = re.findall(r"\bauth\"?\s*[:=]?\s*\[?\s*\{([^}]*)\}", text)
        found = [m for b in blocks for m in re.findall(r"\bconfig\"?\s*[=:]\s*\"([^\"]+)\"", b)]
        found += re.findall(r"\"docker\.auth\.config\"\s*[=:]\s*\"([^\"]+)\"", text)
        for file in unique(found):
            if file not in managed:
                why = "Nomad (%s) reads %s, no managed user's config: its tokens are not renewed"
                notice(run, READER_NOMAD, why % (path, file))
    if not run.host.docker:
        return
    try:
        done = run_command(
            [run.host.docker, "info", "--format", SWARM_FORMAT], run.host.root_env(), timeout=DAEMON_TIMEOUT
        )
    except subprocess.TimeoutExpired:  # a hung daemon (its socket takes connections, never answers)
        run.report.message_parts.append(
            "docker daemon: no answer in %d s, Swarm services not checked" % DAEMON_TIMEOUT
        )
        log(run.report.message_parts[-1])
        return
    except (OSError, subprocess.SubprocessError):
        return
    if done.returncode == 0 and done.stdout.split() == [b"active", b"true"]:
        why = "this node is a Swarm manager: services created --with-registry-auth keep their own copy"
        notice(run, READER_SWARM, why)


def nomad_configs(proc="/proc"):
    """Nomad's configuration files: /etc/nomad.d's, and those a running `nomad agent` was given with
    -config (a file, or a directory whose *.hcl and *.json it loads: nomad command/agent/config.go
    LoadConfig)."""
    places = [NOMAD_CONFIG_DIR]
    for name in [name for name in os.listdir(proc) if name.isdigit()]:
        try:
            with open("%s/%s/comm" % (proc, name)) as handle:
                if handle.read().strip() != "nomad":
                    continue
            with open("%s/%s/cmdline" % (proc, name), "rb") as handle:
                argv = handle.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if "agent" in argv:
            pairs = zip(argv, argv[1:] + [""])  # noqa: B905 - Python 3.6
            places += [
                re.sub(r"^--?config=", "", a) if "=" in a else b
                for a, b in pairs
                if re.match(r"--?config\b", a)
            ]
    paths = []
    for place in unique(places):
        paths += (
            sorted(glob.glob(place + "/*.hcl") + glob.glob(place + "/*.json"))
            if os.path.isdir(place)
            else [place]
        )
    return unique(paths)


def notice(run, reason, message):
    log(message)
    run.report.notices.append((reason, message))
