"""The accounts to manage: those named, or `auto`: root, the docker group's members, and the users who
run a rootless client of the host (their own files show it).

A rootless client leaves its user's own state behind, which is what the agent looks for (owned by the
user, for a client family the host has):
- podman, buildah, skopeo: rootless storage ~/.local/share/containers (containers-storage.conf(5)),
  the user's containers configuration ~/.config/containers (auth.json, registries, Quadlet units:
  podman-systemd.unit(5)), the runtime directory /run/user/<uid>/containers, podman's and buildah's
  fallbacks $TMPDIR/podman-run-<uid> and containers-user-<uid>, and Quadlet units for the user in
  /etc/containers/systemd/users/<uid>;
- rootless docker (docs.docker.com "Rootless mode", dockerd-rootless-setuptool.sh): its user unit
  ~/.config/systemd/user/docker.service, data ~/.local/share/docker, socket /run/user/<uid>/docker.sock;
- rootless nerdctl (containerd-rootless-setuptool.sh): ~/.config/systemd/user/containerd.service,
  ~/.local/share/containerd, ~/.local/share/nerdctl.
/etc/subuid entries alone are no evidence: useradd allocates them for every new user.
"""

import grp
import os
import pwd
import stat

from .docker_client import CONFIG_DIR_NAME
from .log import log
from .params import AUTO_USERS


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


ROOTLESS_EVIDENCE = {
    "containers": (
        "~/.local/share/containers",
        "~/.config/containers",
        "/run/user/%(uid)d/containers",
        "/tmp/podman-run-%(uid)d",
        "/tmp/containers-user-%(uid)d",
        "/etc/containers/systemd/users/%(uid)d",
    ),
    "docker": (
        "~/.config/systemd/user/docker.service",
        "~/.local/share/docker",
        "/run/user/%(uid)d/docker.sock",
    ),
    "nerdctl": (
        "~/.config/systemd/user/containerd.service",
        "~/.local/share/containerd",
        "~/.local/share/nerdctl",
    ),
}


def resolve_users(users, host=None):
    """(accounts, unknown names). `auto` = root, members of the docker group, users of rootless clients."""
    if users == AUTO_USERS:
        return auto_accounts(host), []
    accounts, unknown = [], []
    for name in users:
        try:
            accounts.append(Account.from_pwd(pwd.getpwnam(name)))
        except KeyError:
            unknown.append(name)
    return accounts, unknown


def auto_accounts(host=None):
    names = [pwd.getpwuid(0).pw_name]
    try:
        docker_group = grp.getgrnam("docker")
    except KeyError:
        docker_group = None
    if docker_group is not None:
        members = list(docker_group.gr_mem)
        members += [entry.pw_name for entry in pwd.getpwall() if entry.pw_gid == docker_group.gr_gid]
        names += sorted(set(members) - set(names))
    families = rootless_families(host)
    if families:
        rootless = [entry.pw_name for entry in pwd.getpwall() if runs_rootless(entry, families)]
        names += sorted(set(rootless) - set(names))
    accounts = []
    for name in names:
        try:
            accounts.append(Account.from_pwd(pwd.getpwnam(name)))
        except KeyError:
            log("docker group member %s has no passwd entry; ignored" % name)
    return accounts


def rootless_families(host):
    """Which families' rootless traces count: those whose client the host has."""
    families = set()
    for client in getattr(host, "clients", []):
        families.add("nerdctl" if client.name == "nerdctl" else client.family)
    return families


def runs_rootless(entry, families):
    """Whether a (non-root) user has the traces of a rootless client of one of these families."""
    if entry.pw_uid == 0 or not entry.pw_dir:
        return False
    values = {"uid": entry.pw_uid}
    for family in families:
        for pattern in ROOTLESS_EVIDENCE[family]:
            path = pattern % values
            if path.startswith("~/"):
                path = os.path.join(entry.pw_dir, path[2:])
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if (info.st_uid == entry.pw_uid or path.startswith("/etc/")) and not stat.S_ISLNK(info.st_mode):
                return True
    return False
