"""The runner's asset must run on the Lambda runtime plus the Powertools layer alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from infra.runner import LAMBDA_SOURCE

# boto3/botocore come with the runtime; the official Powertools layer is built from
# aws-lambda-powertools[all], which brings pydantic and aws-xray-sdk.
PROVIDED = {"boto3", "botocore", "aws_lambda_powertools", "pydantic", "pydantic_core", "aws_xray_sdk"}
OWN = {"ecr_fleet_auth", "handler"}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:`, which never run."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(child for child in ast.iter_child_nodes(node) if not _is_type_checking_block(child))
    return nodes


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_asset_imports_only_the_runtime_the_layer_and_itself() -> None:
    sources = sorted(LAMBDA_SOURCE.rglob("*.py"))
    assert LAMBDA_SOURCE / "ecr_fleet_auth" / "contract.py" in sources
    for path in sources:
        foreign = _top_level_imports(path) - PROVIDED - OWN - set(sys.stdlib_module_names)
        assert foreign == set(), f"{path.relative_to(LAMBDA_SOURCE)} imports {sorted(foreign)}"


def test_asset_vendors_no_packages() -> None:
    vendored = [p.name for p in LAMBDA_SOURCE.iterdir() if p.suffix in (".dist-info", ".egg-info")]
    assert vendored == []
    assert {p.name for p in LAMBDA_SOURCE.iterdir() if p.is_dir() and not p.name.startswith(".")} <= {
        "ecr_fleet_auth",
        "__pycache__",
    }
