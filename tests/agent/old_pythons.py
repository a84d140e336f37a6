"""The oldest Pythons the agent meets, as pyenv installs them on this machine."""

from __future__ import annotations

from pathlib import Path

PYENV_VERSIONS = Path("/root/.pyenv/versions")
# The agent's floor and why: the interpreter each stands in for.
OLDEST = [("3.7", "Amazon Linux 2's python3"), ("3.6", "RHEL 8's platform-python")]


def old_python(version: str) -> str | None:
    found = sorted(PYENV_VERSIONS.glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else None
