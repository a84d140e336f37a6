"""What the constructs read at synth from outside their own folder, and where the wheel carries it.

In the repository each source is read where it is; the wheel carries a copy of each as package
data of ``ecr_fleet_auth_cdk`` under the name on the left, made from the source on the right when
the wheel is built (``setup.py``), never kept by hand. Moving a source means changing it here only.
This module imports only the standard library: ``setup.py`` runs it to learn the same table.
"""

from __future__ import annotations

from pathlib import Path

# The runner's Lambda asset: handler.py and the ecr_fleet_auth package, nothing else.
RUNNER_ASSET = "runner_asset"
# The on-instance agent's package (and its shell shim), which the document construct packs into the
# document's step; the folder's name is the package's, so the wheel keeps it.
AGENT = "agent"
# The pins the tests ran with; the runner's Powertools layer is the release pinned there.
PINS = "constraints.txt"

BUNDLED: dict[str, str] = {
    RUNNER_ASSET: "lambda_src",
    AGENT: "agent",
    PINS: "constraints.txt",
}

PACKAGE_ROOT = Path(__file__).resolve().parent  # infra/ in the repository, ecr_fleet_auth_cdk/ installed
REPOSITORY_ROOT = PACKAGE_ROOT.parent


def bundled(name: str) -> Path:
    """The source ``name`` (a folder or a file): the wheel's copy when installed, else the repository's."""
    for candidate in (PACKAGE_ROOT / name, REPOSITORY_ROOT / BUNDLED[name]):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"ecr_fleet_auth_cdk: {name} is missing (neither {PACKAGE_ROOT / name} in the installed package "
        f"nor {BUNDLED[name]} of the repository): reinstall the wheel"
    )
