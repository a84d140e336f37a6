"""Runs the agent: `python3 -m agent` here, and `python3 <the packed file>` on an instance.

The document's packing (infra/document/script.py) puts this file at the root of the zip application,
beside the agent's modules as one xz-compressed payload (lzma packs them a tenth smaller than gzip
did, which SSM's 64 KB document limit needs; zipimport reads only stored or deflated entries): each
module as a line `<path> <length>` and its bytes. There the package is not importable until this file
decompresses the modules in memory and imports them from there, each compiled under its path in the
application (agent.pyz/agent/actions.py), so a traceback names the repository's file and line.
Python's lzma module ships with every distribution's python3 (libpython3.x-stdlib, python3-libs);
where it is missing, the one result line says so."""

import importlib.abc
import importlib.util
import os
import sys
import zipfile

PAYLOAD = "agent.xz"
PACKAGE = "agent"
UNPACK_FAILED = (
    '{"schema":1,"action":null,"outcome":"failed","reason":"agent_unpack_failed",'
    '"message":"could not unpack the agent (%s)","host":null,"users":[]}'
)


class PayloadImporter(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finds and loads the agent's modules from the decompressed payload."""

    def __init__(self, archive, payload):
        self.archive = archive
        self.sources = modules(payload)

    def entry(self, fullname):
        """The payload's entry for a module of the agent, or None."""
        name = PACKAGE + "/__init__.py" if fullname == PACKAGE else fullname.replace(".", "/") + ".py"
        return name if fullname.split(".")[0] == PACKAGE and name in self.sources else None

    def find_spec(self, fullname, path=None, target=None):
        name = self.entry(fullname)
        if name is None:
            return None
        origin = os.path.join(self.archive, name)
        return importlib.util.spec_from_loader(fullname, self, origin=origin, is_package=fullname == PACKAGE)

    def get_source(self, fullname):
        return self.sources[self.entry(fullname)].decode("utf-8")

    def get_code(self, fullname):
        name = self.entry(fullname)
        return compile(self.sources[name], os.path.join(self.archive, name), "exec", dont_inherit=True)

    def is_package(self, fullname):
        return fullname == PACKAGE


def modules(payload):
    """{path: source} of a payload: `<path> <length>` lines, each followed by that many bytes."""
    found, position = {}, 0
    while position < len(payload):
        end = payload.index(b"\n", position)
        name, size = payload[position:end].decode("utf-8").rsplit(" ", 1)
        position = end + 1 + int(size)
        found[name] = payload[end + 1 : position]
    return found


def install(archive):
    """Make the agent importable from the application at `archive` (raises when it cannot be unpacked)."""
    import lzma  # noqa: PLC0415 - its absence must end in the result line, not a traceback

    with zipfile.ZipFile(archive) as outer:
        payload = lzma.decompress(outer.read(PAYLOAD))
    sys.meta_path.insert(0, PayloadImporter(archive, payload))


def run():
    archive = os.path.dirname(os.path.abspath(__file__))
    if zipfile.is_zipfile(archive):  # the packed agent: its modules are in the payload
        try:
            install(archive)
        except ImportError:
            sys.stdout.write(UNPACK_FAILED % "no lzma module in this Python" + "\n")
            return 1
        except Exception as error:  # noqa: BLE001 - whatever broke the payload, the result line says so
            sys.stdout.write(UNPACK_FAILED % type(error).__name__ + "\n")
            return 1
    from agent.main import main  # noqa: PLC0415 - importable only now

    return main()


if __name__ == "__main__":
    sys.exit(run())
