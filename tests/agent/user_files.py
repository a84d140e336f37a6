"""A user's home and docker config for the agent's unit tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
# The user the unit tests act as: an unprivileged uid every Linux has.
NOBODY = 65534


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_config(home: Path, content: bytes, mode: int = 0o600, owner: int = NOBODY) -> Path:
    folder = home / ".docker"
    folder.mkdir(exist_ok=True)
    os.chown(folder, owner, owner)
    path = folder / "config.json"
    path.write_bytes(content)
    os.chmod(path, mode)
    os.chown(path, owner, owner)
    return path
