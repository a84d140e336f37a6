"""The runner's Lambda execution environment, rebuilt from the synthesized stack.

Lambda starts the handler with the asset as its task root, the layer's packages and the
runtime's SDK on the path and nothing else, and a set of variables that libraries read
at import (the X-Ray SDK, for one, samples locally only when LAMBDA_TASK_ROOT is set).
A measurement or a check run in the development virtualenv sees none of that, so the
cold-start benchmark and the asset test start the handler in this environment instead.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ...identity import ACCOUNT, REGION, registry_name
from ...synthesized_stack import Template, resolved_runner_environment, runner_function

# The stack's layer is Powertools for this architecture and Python (infra/runner.py); the
# runtime bundles boto3. The venv holds the same releases (constraints.txt). The published
# layer is built with every extra; the runner needs these two, and the rest it never imports.
RUNTIME_PACKAGES = ("boto3",)
LAYER_PACKAGES = ("aws-lambda-powertools[tracer,parser]",)
FUNCTION_NAME = "EcrFleetAuth-RunnerFunction"
# What CloudFormation resolves at deploy time, in the shapes it would have.
DEPLOY_TIME_PLACEHOLDERS = {
    "DOCUMENT_NAME": "EcrFleetAuth-AgentDocument-ABCDEF123456",
    "REGISTRIES": registry_name(ACCOUNT),
    "OUTPUT_LOG_GROUP": "EcrFleetAuth-RunCommandOutput-ABCDEF123456",
    "TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:EcrFleetAuth-Topic-ABCDEF123456",
    "CLAIM_TABLE_NAME": "EcrFleetAuth-NewInstanceClaimsTable-ABCDEF123456",
    "RUNS_BUCKET_NAME": "ecrfleetauth-organizationrunrunsabcdef-123456",
}
# Lambda's own session credentials; never sent anywhere by an import.
SESSION_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALAMBDARUNTIME000",
    "AWS_SECRET_ACCESS_KEY": "lambda-runtime-session-secret",
    "AWS_SESSION_TOKEN": "lambda-runtime-session-token",
}


def distributions(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions these requirements pull in, extras and markers honoured."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        try:
            distribution = found.get(name) or metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError as missing:
            raise LookupError(f"{requirement.name} is not installed: run `make deps`") from missing
        found[name] = distribution
        extras = requirement.extras or {""}
        for text in distribution.requires or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def top_level_entries(distribution: metadata.Distribution) -> set[str]:
    """The names a distribution installs at the top of site-packages (packages, modules, its metadata)."""
    entries = set()
    for file in distribution.files or []:
        head = file.parts[0]
        if head in ("..", "__pycache__") or head.endswith(".data"):
            continue
        entries.add(head)
    return entries


def import_names(requirements: Iterable[str]) -> set[str]:
    """The top-level module names the requirements make importable."""
    names = set()
    for distribution in distributions(requirements):
        for entry in top_level_entries(distribution):
            if entry.endswith(".dist-info"):
                continue
            names.add(entry.split(".", 1)[0])
    return names


def package_directory(installed: Iterable[metadata.Distribution], directory: Path) -> Path:
    """A directory holding exactly these distributions, as links into the virtualenv."""
    directory.mkdir(parents=True, exist_ok=True)
    for distribution in installed:
        entries = top_level_entries(distribution)
        # A top-level module's compiled file sits in site-packages' own __pycache__.
        entries.update(str(f) for f in distribution.files or [] if f.parts[0] == "__pycache__")
        for entry in entries:
            link = directory / entry
            link.parent.mkdir(exist_ok=True)
            if not link.exists():
                link.symlink_to(Path(str(distribution.locate_file(entry))))
    return directory


# Lambda's runtime interface client, reduced to one invocation: import the handler
# named by _HANDLER from the task root, build the context, call it, hand back the
# result or the error as the Invoke API would.
BOOTSTRAP = """
import importlib, json, os, sys, time, uuid

result_path, settings = sys.argv[1], json.loads(sys.argv[2])
deadline = time.monotonic() + settings["timeout_seconds"]
if settings["trace_header"]:  # set per invocation, from the Lambda-Runtime-Trace-Id header
    os.environ["_X_AMZN_TRACE_ID"] = settings["trace_header"]


class LambdaContext:
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    invoked_function_arn = settings["function_arn"]
    log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
    aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.monotonic()) * 1000))


module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
event = json.load(sys.stdin)
try:
    function = getattr(importlib.import_module(module_name), function_name)
    outcome = {"payload": function(event, LambdaContext())}
except Exception as error:
    outcome = {"errorType": type(error).__name__, "errorMessage": str(error)}
with open(result_path, "w") as result:
    json.dump(outcome, result)
"""


@dataclass(frozen=True)
class InvokeResult:
    """One Lambda invocation's outcome: the payload, or the error Lambda would return instead."""

    payload: Any
    trace_id: str | None  # the X-Ray trace the invocation ran in, when tracing is active
    error_type: str | None
    error_message: str | None
    stdout: str
    stderr: str


class FunctionError(Exception):
    """The handler raised: Lambda's ``FunctionError: Unhandled`` with errorType and errorMessage."""

    def __init__(self, invocation: InvokeResult) -> None:
        super().__init__(f"{invocation.error_type}: {invocation.error_message}")
        self.invocation = invocation


@dataclass(frozen=True)
class LambdaEnvironment:
    """How Lambda would start the runner: interpreter arguments, path and variables."""

    task_root: Path
    paths: tuple[Path, ...]
    variables: dict[str, str]
    timeout_seconds: float

    def function_arn(self, account: str) -> str:
        region, name = self.variables["AWS_REGION"], self.variables["AWS_LAMBDA_FUNCTION_NAME"]
        return f"arn:aws:lambda:{region}:{account}:function:{name}"

    def _variables(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        variables = {**self.variables, **(extra or {})}
        variables["PYTHONPATH"] = os.pathsep.join(str(path) for path in self.paths)
        return variables

    def run(
        self,
        code: str,
        *arguments: str,
        stdin: str | None = None,
        extra: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run Python code in a fresh interpreter that sees only this environment.

        -S leaves the virtualenv's site-packages off the path; PYTHONPATH then holds the
        task root, the layer and the runtime, in Lambda's order.
        """
        return subprocess.run(
            [sys.executable, "-S", "-c", code, *arguments],
            input=stdin,
            env=self._variables(extra),
            cwd=self.task_root,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def invoke(
        self,
        event: Any,
        *,
        function_arn: str,
        extra: Mapping[str, str] | None = None,
        lineage: str | None = None,
    ) -> InvokeResult:
        """Invoke the handler once, in a fresh interpreter (a cold start), as Lambda would.

        Lambda gives every invocation a trace header (``_X_AMZN_TRACE_ID``), traced or not, which
        botocore then sends with each call; ``lineage``: the chain an event source mapping's
        invocation continues (``localfleet.lambda_runtime.models.recursion``)."""
        with tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-invoke-") as scratch:
            result_path = Path(scratch) / "result.json"
            tracing = self._variables(extra).get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("true", "1")
            trace_id = _new_trace_id() if tracing else None
            # Sampled=1: an invocation the sampling rule picked, so its trace can be read back.
            header = (
                f"Root={trace_id or _new_trace_id()};Parent={secrets.token_hex(8)};Sampled={int(tracing)}"
            )
            if lineage:
                header += f";Lineage={lineage}"
            settings = json.dumps(
                {
                    "function_arn": function_arn,
                    "timeout_seconds": self.timeout_seconds,
                    "trace_header": header,
                }
            )
            done = self.run(
                BOOTSTRAP,
                str(result_path),
                settings,
                stdin=json.dumps(event),
                extra=extra,
                timeout=self.timeout_seconds + 30,  # the runner returns before its deadline
            )
            if done.returncode != 0 or not result_path.exists():
                raise RuntimeError(f"the runtime itself failed (exit {done.returncode}):\n{done.stderr}")
            outcome = json.loads(result_path.read_text())
        return InvokeResult(
            payload=outcome.get("payload"),
            trace_id=trace_id,
            error_type=outcome.get("errorType"),
            error_message=outcome.get("errorMessage"),
            stdout=done.stdout,
            stderr=done.stderr,
        )


def _new_trace_id() -> str:
    """An X-Ray trace id: version 1, the epoch second in hex, 96 random bits."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def lambda_environment(
    template: Template,
    task_root: Path,
    workdir: Path,
    *,
    deploy_time: Mapping[str, str] = DEPLOY_TIME_PLACEHOLDERS,
) -> LambdaEnvironment:
    """The runner's environment as the template configures it, with the variables Lambda adds.

    References to other resources take their values from `deploy_time`.
    """
    properties = runner_function(template)["Properties"]
    configured = resolved_runner_environment(template, deploy_time)
    runtime = properties["Runtime"]
    handler = properties["Handler"]
    variables = {
        **configured,
        **SESSION_CREDENTIALS,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(workdir / "runtime"),
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        # The X-Ray daemon's address; nothing is sent during an import.
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if properties.get("TracingConfig", {}).get("Mode") != "Active":
        variables["POWERTOOLS_TRACE_DISABLED"] = "true"
    runtime_sdk = distributions(RUNTIME_PACKAGES)
    bundled = {canonicalize_name(d.metadata["Name"]) for d in runtime_sdk}
    # The layer leaves out what the runtime already bundles (botocore, which the X-Ray SDK requires).
    layer = [d for d in distributions(LAYER_PACKAGES) if canonicalize_name(d.metadata["Name"]) not in bundled]
    paths = (
        task_root,
        package_directory(layer, workdir / "opt" / "python"),
        package_directory(runtime_sdk, workdir / "runtime"),
    )
    return LambdaEnvironment(task_root, paths, variables, float(properties.get("Timeout", 3)))


def asset_directory(template: Template, outdir: Path) -> Path:
    """The runner's code asset as synthesized (the stack's excludes applied)."""
    function = runner_function(template)
    path = function.get("Metadata", {}).get("aws:asset:path")
    if not isinstance(path, str):
        raise LookupError("the template has no asset metadata: synthesize with aws:cdk:enable-asset-metadata")
    return outdir / path
