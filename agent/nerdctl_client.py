"""Where nerdctl reads a user's credentials: docker's file, with docker's own code.

containerd/nerdctl docs/registry.md: "nerdctl uses ${DOCKER_CONFIG}/config.json for the authentication
with image registries. $DOCKER_CONFIG defaults to $HOME/.docker", credHelpers included;
pkg/imgutil/dockerconfigresolver/credentialsstore.go loads it with docker/cli's config.Load. Rootless
nerdctl runs as the user and reads the same file. One difference from docker: a file docker/cli cannot
parse is a hard error for nerdctl (ErrUnableToInstantiate), where docker only warns; the agent leaves
such a file untouched and reports it (config_corrupt) either way. nerdctl vendors a current docker/cli,
so its loader is read as the newest docker's.
"""

from . import docker_client
from .docker_model import NEWEST_DOCKER


def read_orders(client, account, environment):
    return docker_client.read_orders(client, account, environment, NEWEST_DOCKER)
