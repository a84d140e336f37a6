"""Where the docker CLI reads and writes a user's credentials: one file.

docker/cli cli/config/config.go Dir(): $DOCKER_CONFIG, else ~/.docker (the passwd home when HOME is
unset, getHomeDir); config.json in it is the only file read and written (`--config` on the command
line is a per-command choice the agent cannot see). Its loader is docker_model's, by docker version.
"""

import os

from .docker_model import NEWEST_DOCKER, docker_version_tuple
from .orders import FileRef, ReadOrder

CONFIG_DIR_NAME = ".docker"
CONFIG_NAME = "config.json"


def config_dir(environment, home):
    return environment.get("DOCKER_CONFIG") or os.path.join(home, CONFIG_DIR_NAME)


def config_path(environment, home):
    return os.path.join(config_dir(environment, home), CONFIG_NAME)


def read_orders(client, account, environment, docker_version=None):
    path = config_path(environment, account.home)
    version = docker_version or docker_version_tuple(client.version) or NEWEST_DOCKER
    return [ReadOrder(client.name, "docker", [FileRef(path)], path, docker_version=version)]
