"""Which container clients this host has, and their versions: detected, not assumed.

The docker CLI, nerdctl, and the containers family (podman, skopeo, buildah: containers/image reads
their credentials). Each is known by what `<program> --version` prints, not by its file name: the
podman-docker package's `docker` is a shell script that runs podman (podman-docker's /usr/bin/docker:
`exec /usr/bin/podman "$@"`), so `docker --version` prints `podman version 4.3.1`, and that `docker`
is podman, with podman's version, never docker 4.3. A `docker` that is nerdctl (a symlink some hosts
make) is nerdctl likewise.
"""

import re

# Each client's --version line: docker/cli cli/cobra.go ("Docker version %s, build %s"); podman, skopeo
# and buildah print "<name> version X" (cobra's default template, their cmd/*/main.go Version); nerdctl
# likewise (cmd/nerdctl/main.go, `Use: "nerdctl"`).
VERSION_LINE = re.compile(r"^(Docker|podman|skopeo|buildah|nerdctl) version ([0-9][0-9A-Za-z.+~-]*)", re.M)
CLIENT_NAMES = ("docker", "nerdctl", "podman", "skopeo", "buildah")
# Who reads which file: docker's rules (docker_client), containers/image's (containers_client).
FAMILY = {
    "docker": "docker",
    "nerdctl": "docker",
    "podman": "containers",
    "skopeo": "containers",
    "buildah": "containers",
}


class Client(object):
    """One container client on this host: its name (what it is, whatever its file is called), the program
    that runs it, and the version it printed (None when it printed none the agent can read)."""

    def __init__(self, name, program, version):
        self.name = name
        self.program = program
        self.version = version

    @property
    def family(self):
        return FAMILY[self.name]

    @property
    def version_tuple(self):
        return version_tuple(self.version)


def version_tuple(text):
    """(major, minor, patch) of a version string; None when it has none."""
    match = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", text or "")
    return tuple(int(number or 0) for number in match.groups()) if match else None


def identify(name, output):
    """(client name, version) from what `<name> --version` printed; the printed name wins over the file's."""
    match = VERSION_LINE.search(output)
    if not match:
        return name, None
    return match.group(1).lower(), match.group(2)


def clients_from_probes(probes):
    """[Client] from [(file name, program path, ran, output)]: one per client (the podman-docker `docker`
    and `podman` itself are one podman), the docker CLI first; and the name `docker` runs when it is not
    the docker CLI (podman-docker's shim), else None."""
    found, exact = {}, set()
    docker_runs = None
    for name, program, ran, output in probes:
        if not ran:
            continue
        client_name, version = identify(name, output)
        if name == "docker" and client_name != "docker":
            docker_runs = client_name
        if client_name not in found or (name == client_name and client_name not in exact):
            found[client_name] = Client(client_name, program, version)
            if name == client_name:
                exact.add(client_name)
    return [found[name] for name in CLIENT_NAMES if name in found], docker_runs
