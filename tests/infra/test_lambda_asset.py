"""The runner's asset must run on the Lambda runtime plus the Powertools layer alone.

The static check reads every import in the asset; the runtime checks start the
synthesized asset as Lambda does (`localfleet.lambda_runtime`), with only the
runtime's and the layer's packages on the path.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from ecr_fleet_auth_cdk.runner_function import LAMBDA_SOURCE
from localfleet.lambda_runtime import (
    LAYER_PACKAGES,
    RUNTIME_PACKAGES,
    LambdaEnvironment,
    asset_directory,
    import_names,
    lambda_environment,
)
from tests.support.template import Template

PROVIDED = import_names(RUNTIME_PACKAGES + LAYER_PACKAGES)
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


def test_the_runtime_and_layer_provide_the_sdk_powertools_and_its_extras() -> None:
    assert {"boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk", "pydantic"} <= PROVIDED
    assert "requests" not in PROVIDED  # in the venv for moto, not in Lambda


def test_asset_imports_only_the_runtime_the_layer_and_itself() -> None:
    sources = sorted(LAMBDA_SOURCE.rglob("*.py"))
    assert LAMBDA_SOURCE / "ecr_fleet_auth" / "shared" / "contract.py" in sources
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


@pytest.fixture(scope="module")
def runner_in_lambda(
    synthesized_template: Template, synthesized_outdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> LambdaEnvironment:
    return lambda_environment(
        synthesized_template,
        asset_directory(synthesized_template, synthesized_outdir),
        tmp_path_factory.mktemp("lambda"),
    )


def test_staged_asset_holds_the_source_and_no_compiled_files(runner_in_lambda: LambdaEnvironment) -> None:
    staged = {p.relative_to(runner_in_lambda.task_root) for p in runner_in_lambda.task_root.rglob("*")}
    assert Path("handler.py") in staged
    assert Path("ecr_fleet_auth/shared/contract.py") in staged
    assert [p for p in staged if "__pycache__" in p.parts or p.suffix == ".pyc"] == []


IMPORT_AND_REPORT = """
import importlib, json, pkgutil, sys
import handler
at_init = sorted(sys.modules)
# Then every path's modules, as their first events import them: all of them import here too.
import ecr_fleet_auth
for module in pkgutil.walk_packages(ecr_fleet_auth.__path__, "ecr_fleet_auth."):
    importlib.import_module(module.name)
from aws_xray_sdk.core import patcher, xray_recorder
print(json.dumps({
    "path": sys.path,
    "at_init": at_init,
    "loaded": sorted({name.split(".")[0] for name in sys.modules}),
    "runner_modules": sorted(name for name in sys.modules if name.startswith("ecr_fleet_auth.")),
    "patched": sorted(patcher._PATCHED_MODULES),
    "sampler": type(xray_recorder.sampler).__module__,
}))
"""


def test_handler_imports_on_the_runtime_and_layer_alone(runner_in_lambda: LambdaEnvironment) -> None:
    done = runner_in_lambda.run(IMPORT_AND_REPORT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    # Nothing but the asset, the layer, the runtime and the standard library could be imported.
    assert [entry for entry in report["path"] if "site-packages" in entry] == []
    assert {"handler", "ecr_fleet_auth", "boto3", "pydantic"} <= set(report["loaded"])
    assert "ecr_fleet_auth.new_instances.triggers" in report["runner_modules"]
    assert "ecr_fleet_auth.run.organization_run" in report["runner_modules"]
    # Tracing is on as deployed; only the SDK the runner uses is instrumented, so a cold
    # start imports no other library the X-Ray SDK knows how to patch.
    assert report["patched"] == ["botocore"]
    assert "sqlite3" not in report["loaded"]
    # In Lambda the X-Ray SDK samples locally (Lambda decides sampling), no sampling client.
    assert report["sampler"].endswith(".local.sampler")


def test_lambdas_init_imports_no_path_of_the_runner(runner_in_lambda: LambdaEnvironment) -> None:
    """The handler imports a path's modules at that path's first event (handler.py): Lambda's init,
    which imports the handler, loads neither a path nor the event models' pydantic
    (bench/cold_start.py measures what that saves)."""
    done = runner_in_lambda.run(IMPORT_AND_REPORT)
    assert done.returncode == 0, done.stderr
    at_init = json.loads(done.stdout.splitlines()[-1])["at_init"]
    assert "handler" in at_init and "ecr_fleet_auth.shared.invocations" in at_init
    paths = ("ecr_fleet_auth.run", "ecr_fleet_auth.new_instances", "ecr_fleet_auth.shared.events", "pydantic")
    assert [name for name in at_init if name.startswith(paths)] == []


INVOKE = """
import json
import handler

class Context:
    function_name = "EcrFleetAuth-RunnerFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:EcrFleetAuth-RunnerFunction"
    aws_request_id = "cold-start-check"
    def get_remaining_time_in_millis(self):
        return 900000

try:
    handler.handler({"action": "repair"}, Context())
except Exception as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


def test_handler_rejects_a_bad_event_in_the_lambda_environment(runner_in_lambda: LambdaEnvironment) -> None:
    # Any AWS call would go to a closed loopback port and fail with a connection error instead.
    done = runner_in_lambda.run(INVOKE, extra={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["error"] == "InvalidEvent"
    assert "action" in outcome["message"]
    assert "refresh" in outcome["message"]
