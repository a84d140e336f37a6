"""The accounts to manage: those named, or `auto` (root and the docker group's members)."""

import grp
import os
import pwd

from .config_file import CONFIG_DIR_NAME
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
