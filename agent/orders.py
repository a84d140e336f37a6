"""A read order: the files one client reads for a registry, in the order it reads them (read_order)."""


class FileRef(object):
    """A credential file a client reads: its path, and whether it is in the legacy ~/.dockercfg format."""

    def __init__(self, path, legacy=False):
        self.path = path
        self.legacy = legacy

    def key(self):
        return (self.path, self.legacy)


class ReadOrder(object):
    """The files one client reads for a registry, in order, and what else decides its answer.

    rules: "docker" (one file, docker's loader: the docker CLI, nerdctl) or "containers" (each file
    in turn, containers/image's reading); user_path: the file the user named (REGISTRY_AUTH_FILE,
    DOCKER_CONFIG), where this client's own login writes; required: a file the client refuses to run
    without (podman and buildah stat --authfile before pulling)."""

    def __init__(
        self,
        client,
        rules,
        files,
        docker_path,
        *,
        user_path=None,
        required=None,
        docker_version=None,
        config_path=None,
    ):
        self.clients = [client]
        self.sessions = []  # the kinds of session (user_env) whose clients read in this order
        self.docker_path = docker_path  # docker's config.json for this user and environment
        self.config_path = config_path  # containers' own persistent auth.json (XDG_CONFIG_HOME), if read
        self.rules = rules
        self.files = files
        self.user_path = user_path
        self.required = required
        self.docker_version = docker_version  # docker's rules: the loader's docker version

    def key(self):
        files = tuple(ref.key() for ref in self.files)
        return (self.rules, files, self.user_path, self.required, self.docker_version)
