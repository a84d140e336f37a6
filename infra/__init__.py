"""ecr-fleet-auth as a CDK construct library: ``EcrFleetAuth`` and its typed props.

Installed, this folder is the package ``ecr_fleet_auth_cdk`` (the wheel, or the repository's
editable install); that is its only name, so no file here is ever loaded twice as two modules.

    from ecr_fleet_auth_cdk import EcrFleetAuth

    EcrFleetAuth(stack, "FleetAuth", target_tag_values=["enabled"], topic=existing_topic)

The names below are imported on first use, so that reading a constant (the agent's path, say)
does not start the CDK's runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if __name__ != "ecr_fleet_auth_cdk":
    raise ImportError(f"import ecr_fleet_auth_cdk, not {__name__}: infra/ is that package's source folder")

if TYPE_CHECKING:
    from .fleet_auth import EcrFleetAuth
    from .nag import add_checks
    from .props import EcrFleetAuthProps

__all__ = ["EcrFleetAuth", "EcrFleetAuthProps", "__version__", "add_checks"]
_EXPORTS = {"EcrFleetAuth": "fleet_auth", "EcrFleetAuthProps": "props", "add_checks": "nag"}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415 - read once, on demand

        return version("ecr-fleet-auth")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
