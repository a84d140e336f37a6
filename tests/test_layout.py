"""The tree shows the architecture (docs/development/layout.md): distinct names, imports one way."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

from tests.support.template import PROJECT_ROOT

PRODUCT = ("lambda_src", "infra", "agent")
TREE = (*PRODUCT, "localfleet", "tools", "bench", "demo", "tests")
# Names that are many by nature.
SHARED_NAMES = {"__init__.py", "__main__.py", "conftest.py", "py.typed"}


def _files(*folders: str) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted((PROJECT_ROOT / folder).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return modules


def test_no_product_file_shares_its_name_with_another_file() -> None:
    others = _files(*TREE) + [path for path in PROJECT_ROOT.glob("*") if path.is_file()]
    for product_file in [*_files(*PRODUCT), PROJECT_ROOT / "app.py"]:
        if product_file.name in SHARED_NAMES:
            continue
        twins = [path for path in others if path.name == product_file.name and path != product_file]
        assert not twins, f"{product_file.relative_to(PROJECT_ROOT)} shares its name with {twins}"


# The runner's layers, lowest first: a module imports from its own layer and the layers before it.
RUNNER_LAYERS = ("shared", "aws", "run", "new_instances")
RUNNER_PACKAGE = PROJECT_ROOT / "lambda_src" / "ecr_fleet_auth"


def _runner_modules_imported(path: Path) -> set[str]:
    """The runner's modules ``path`` imports, relative imports resolved (``ecr_fleet_auth.run.planning``)."""
    package = path.relative_to(PROJECT_ROOT / "lambda_src").parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return {module for module in found if module.split(".")[0] == "ecr_fleet_auth"}


def test_every_runner_module_sits_in_a_layer() -> None:
    loose = [path.name for path in RUNNER_PACKAGE.glob("*.py") if path.name != "__init__.py"]
    assert loose == [], "each module of the runner belongs in one of its layers"
    folders = {path.name for path in RUNNER_PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == set(RUNNER_LAYERS)


def test_each_runner_layer_imports_only_itself_and_the_layers_below() -> None:
    """shared <- aws <- run <- new_instances, and handler.py above them all (docs/development/layout.md):
    the contract and settings know no adapter, an adapter no run, a run no instance event."""
    checked = 0
    for rank, layer in enumerate(RUNNER_LAYERS):
        allowed = {"ecr_fleet_auth", *(f"ecr_fleet_auth.{below}" for below in RUNNER_LAYERS[: rank + 1])}
        for path in sorted((RUNNER_PACKAGE / layer).glob("*.py")):
            checked += 1
            for module in _runner_modules_imported(path):
                owner = ".".join(module.split(".")[:2])
                assert owner in allowed, f"{path.relative_to(PROJECT_ROOT)} imports {module}: above {layer}"
    assert checked > 25


def test_the_layers_check_reads_relative_imports() -> None:
    """The check above is only as good as its reading of ``from ..run import runner``."""
    path = RUNNER_PACKAGE / "new_instances" / "triggers.py"
    assert "ecr_fleet_auth.run.runner" in _runner_modules_imported(path)
    assert "ecr_fleet_auth.shared.contract" in _runner_modules_imported(path)


def test_the_runner_imports_nothing_from_the_rest_of_the_tree() -> None:
    for path in _files("lambda_src"):
        if path.suffix == ".py":
            roots = {module.split(".")[0] for module in _imported_modules(path)}
            rest = {"agent", "ecr_fleet_auth_cdk", "localfleet", "tools", "bench", "demo", "tests", "app"}
            assert not roots & rest, path


def test_the_agent_imports_only_the_standard_library_and_itself() -> None:
    """It runs on instances as one file with nothing installed; the packing ships agent/ alone."""
    modules = [path for path in _files("agent") if path.suffix == ".py"]
    assert len(modules) > 10
    for path in modules:
        roots = {module.split(".")[0] for module in _imported_modules(path)}
        assert roots <= set(sys.stdlib_module_names) | {"agent"}, path
        relative = [
            node
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and node.level
        ]
        assert all(node.level == 1 for node in relative), path


def test_the_product_imports_none_of_its_users() -> None:
    """product (lambda_src, infra, agent, app.py) <- simulator (localfleet) <- demo, tools, bench; tests
    may import anything. Function-level imports count too."""
    users = {"localfleet", "tools", "bench", "demo", "tests"}
    for path in [*_files(*PRODUCT), PROJECT_ROOT / "app.py"]:
        if path.suffix == ".py":
            used = {module.split(".")[0] for module in _imported_modules(path)} & users
            assert not used, f"{path.relative_to(PROJECT_ROOT)} imports {used}"


def test_nothing_but_the_tests_imports_the_agent() -> None:
    """The stack reads agent/ as files to pack (infra/document/script.py), never as code to run."""
    for path in _files("lambda_src", "infra", "localfleet", "tools", "bench", "demo"):
        if path.suffix == ".py":
            assert "agent" not in {module.split(".")[0] for module in _imported_modules(path)}, path


def test_the_stack_uses_only_the_runners_contract_and_settings() -> None:
    for path in [*_files("infra"), PROJECT_ROOT / "app.py"]:
        if path.suffix == ".py":
            used = {m for m in _imported_modules(path) if m.startswith("ecr_fleet_auth.")}
            assert {".".join(m.split(".")[:3]) for m in used} <= {
                "ecr_fleet_auth.shared",  # from ecr_fleet_auth.shared import contract
                "ecr_fleet_auth.shared.contract",
                "ecr_fleet_auth.shared.settings",
            }, path


def test_infra_is_imported_only_as_the_package_it_is_installed_as() -> None:
    """infra/ is the package ecr_fleet_auth_cdk (the wheel's and the editable install's name): imported
    as `infra` too, each of its files would be loaded twice, as two modules with their own classes."""
    sources = [*_files(*TREE), *PROJECT_ROOT.glob("*.py")]
    for path in sources:
        if path.suffix == ".py":
            assert "infra" not in {module.split(".")[0] for module in _imported_modules(path)}, path
    with pytest.raises(ImportError, match="import ecr_fleet_auth_cdk, not infra"):
        importlib.import_module("infra")


def test_each_infra_file_holds_one_construct() -> None:
    """One construct per concern, one concern per file: a file named for its construct is where a
    reader looks for it (a stack is a construct too). Counted on the imported classes, so a construct
    built on another of ours (``class X(EcrFleetAuth)``) or on a NestedStack counts as well."""
    from constructs import Construct  # noqa: PLC0415 - the CDK's, only for this test

    for path in _files("infra"):
        if path.suffix != ".py" or path.name == "__init__.py":
            continue
        module_name = ".".join(
            ("ecr_fleet_auth_cdk", *path.relative_to(PROJECT_ROOT / "infra").with_suffix("").parts)
        )
        module = importlib.import_module(module_name)
        constructs = [
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module_name and issubclass(value, Construct)
        ]
        assert len(constructs) <= 1, f"{path.relative_to(PROJECT_ROOT)} holds {constructs}"
