"""localfleet/README.md's rule: imports go one way through the simulator's folders."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.template import PROJECT_ROOT

SIMULATOR = PROJECT_ROOT / "localfleet"
# Each part may import its own layer and the ones below, never above; services of one layer not each other.
LAYERS = {
    "clocks": 0,
    "identity": 0,  # the home account and region
    "synthesized_stack": 0,
    "runner_environment": 1,  # the runner's environment from the synthesized template (tests, benchmarks)
    "transport": 1,
    "ssm": 2,
    "ec2": 2,
    "sqs": 2,
    "iam": 2,
    "cloudformation": 2,
    "eventbridge": 2,
    "stepfunctions": 2,
    "sts": 3,
    "hosts": 3,
    "lambda_runtime": 3,
    "composition": 4,
    "harnesses": 5,
}
# The services, each in the same shape (README's "Layout"): its rooms named from ROOMS, and exactly
# the ones the README says it has.
ROOMS = {"models", "responses", "server"}
SERVICES = {
    "ssm": {"models", "responses", "server"},
    "ec2": {"models", "responses"},
    "sqs": {"models", "responses"},
    "cloudformation": {"models", "responses"},
    "sts": {"responses"},  # a gate in front of moto's STS; what it checks is IAM's state
    "iam": {"models"},
    "eventbridge": {"models"},
    "lambda_runtime": {"models"},
    "stepfunctions": {"models", "server"},  # moto's interpreter, served over HTTP for make demo
}
# The only modules that may import the product, each through a public seam: the CDK app (synthesized),
# the agent's result line, the handler as Lambda starts it in this process (its clock and clients are
# where a simulated clock and sessions go in), the contract's names and the stack's document name.
PRODUCT_USERS = {
    "synthesized_stack.py",
    "hosts/canned_agent.py",
    "harnesses/in_process_runner.py",
    "harnesses/local_fleet.py",
}
PRODUCT = {"ecr_fleet_auth", "handler", "app", "ecr_fleet_auth_cdk", "agent"}
# What uses the simulator: it never imports them.
USERS = {"tools", "bench", "demo", "tests"}


def _part(path: Path) -> str:
    relative = path.relative_to(SIMULATOR)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """Absolute names of every module imported (relative imports resolved)."""
    package = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def _sources() -> list[Path]:
    """Every module of the simulator, the server scripts under ``hosts/servers`` included."""
    return sorted(SIMULATOR.rglob("*.py"))


def _layered_sources() -> list[Path]:
    """The modules the layer check reads. The scripts under ``hosts/servers`` are left out of it only:
    each runs as a separate program (``python path/to/script.py`` inside a container or a subprocess),
    never imported as part of the package, so a layer has no meaning for them; they still may import
    neither the simulator's users nor the product (the two checks below read every module)."""
    return [p for p in _sources() if "servers" not in p.relative_to(SIMULATOR).parts]


def test_every_part_has_a_layer() -> None:
    assert {_part(path) for path in _layered_sources()} - {"__init__"} == set(LAYERS)


def test_imports_go_one_way() -> None:
    for path in _layered_sources():
        part = _part(path)
        if part == "__init__":
            continue
        for module in _imports(path):
            names = module.split(".")
            if names[0] != "localfleet" or len(names) < 2 or names[1] == part:
                continue
            other = names[1]
            assert LAYERS[other] < LAYERS[part], f"{path.relative_to(PROJECT_ROOT)} imports {module}"


def test_every_service_has_the_same_rooms() -> None:
    """One shape per service, as moto has: its state and behaviour in ``models`` (a module, or a
    package where big), its wire in ``responses``, its own HTTP server in ``server``; nothing else,
    and each service exactly the rooms the README gives it."""
    with_a_room = {
        part
        for part in LAYERS
        if any((SIMULATOR / part / name).exists() for name in ("models", "models.py", "responses.py"))
    }
    assert with_a_room == set(SERVICES), "every part with a models or responses room is a service"
    for service, expected in SERVICES.items():
        assert expected <= ROOMS
        rooms = {
            path.name.removesuffix(".py")
            for path in (SIMULATOR / service).iterdir()
            if path.name not in {"__init__.py", "__pycache__"}
        }
        assert rooms == expected, (
            f"localfleet/{service} has rooms {sorted(rooms)}, the README says {sorted(expected)}"
        )


def test_only_named_modules_use_the_product() -> None:
    for path in _sources():
        relative = str(path.relative_to(SIMULATOR))
        if relative in PRODUCT_USERS:
            continue
        used = {module.split(".")[0] for module in _imports(path)} & PRODUCT
        assert not used, f"localfleet/{relative} imports {used}"


def test_the_simulator_imports_none_of_its_users() -> None:
    """product <- simulator <- demo, tools, bench (and tests): never back."""
    for path in _sources():
        used = {module.split(".")[0] for module in _imports(path)} & USERS
        assert not used, f"{path.relative_to(PROJECT_ROOT)} imports {used}"


def test_nothing_outside_the_tests_imports_them() -> None:
    for folder in ("localfleet", "bench", "tools", "demo"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            roots = {module.split(".")[0] for module in _imports(path)}
            assert "tests" not in roots, path
