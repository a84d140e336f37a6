"""The organization's state machine, as the stack synthesizes it, run by moto's interpreter in this process.

``InProcessStateMachine`` creates the template's state machine (``stepfunctions.resolved_definition``:
the runner function's ARN and the runs bucket replaced by this world's) in moto's Step Functions,
with ``mock_aws(config=stepfunctions.MOTO_CONFIG)`` active, and the bucket in moto's S3. Its Lambda
tasks reach the real handler (``InProcessRunner``, the asset's ``handler.handler`` with Lambda's
context on the world's clock) through ``stepfunctions.LambdaTasks``, and each invocation happens in
simulated time where the execution's ``SimulatedTimeline`` says: ``worlds(event, at)`` gives the
runner an invocation runs on — one shared world (a test's organization), or a world of its own on a
clock starting at ``at`` (the benchmark's children, built and dropped one by one). ``figures``
counts the state transitions and the largest state payload as the interpreter meets them. The runner
reads the runs bucket as its role may (``stepfunctions.RunsBucketAccess``: a missing key is 403
AccessDenied unless the template lets the role list the bucket, as S3 answers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import boto3

from ..identity import ACCOUNT, REGION
from ..lambda_runtime.models.in_process import InProcessContext
from ..stepfunctions import (
    Figures,
    LambdaTasks,
    RunsBucketAccess,
    SimulatedTimeline,
    StateMachines,
    resolved_definition,
    runner_may_list,
)
from ..synthesized_stack import Template, resources
from ..transport.botocore_in_process import Patcher
from .in_process_runner import InProcessRunner

RUNS_BUCKET = "ecr-fleet-auth-runs-local"
# The runner function's name as the in-process context gives it (its ARN's), which the definition invokes.
FUNCTION_NAME = InProcessContext.function_name
Worlds = Callable[[Any, float], InProcessRunner]


class InProcessStateMachine:
    """``worlds(event, at)``: the runner an invocation of ``event`` starting at simulated ``at`` runs on."""

    def __init__(
        self,
        template: Template,
        patch: Patcher,
        *,
        worlds: Worlds,
        start: float,
        region: str = REGION,
        account: str = ACCOUNT,
        bucket: str = RUNS_BUCKET,
    ) -> None:
        self.worlds = worlds
        self.bucket = bucket
        self.timeline = SimulatedTimeline(start)
        self.figures = Figures()
        self.timeline.install(patch)
        self.figures.install(patch)
        self.lambda_tasks = LambdaTasks({FUNCTION_NAME: self._invoke})
        self.lambda_tasks.attach()  # mock_aws made boto3's default session: the interpreter's clients use it
        # A session of its own (any region of a test or bench): the default session's S3 requests are
        # the interpreter's alone (its ItemReader), which a benchmark counts apart from this world's reads.
        self.s3: Any = cast(Any, boto3.Session().client("s3", region_name=region))
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        # The runner reads the bucket with its role's permissions: a missing key is 403 without ListBucket.
        self.runs_access = RunsBucketAccess(self.s3, bucket, may_list=runner_may_list(template))
        self.machines = StateMachines(boto3.client("stepfunctions", region_name=region), account)
        function_arn = f"arn:aws:lambda:{region}:{account}:function:{FUNCTION_NAME}"
        name, definition = resolved_definition(
            template, definition_references(template, region, account, bucket, function_arn)
        )
        self.arn = self.machines.create(name, definition)

    def run(self, execution_input: Any, name: str, timeout: float = 600.0) -> dict[str, Any]:
        """Start an execution named ``name`` and wait for its end (real time); DescribeExecution's answer."""
        return self.machines.wait(self.machines.start(self.arn, execution_input, name), timeout)

    def report(self, described: dict[str, Any]) -> dict[str, Any]:
        """The merged report an execution's output points at (in the runs bucket)."""
        where = json.loads(described["output"])["report"]
        body = self.s3.get_object(Bucket=where["bucket"], Key=where["key"])["Body"].read()
        report: dict[str, Any] = json.loads(body)
        return report

    def close(self) -> None:
        self.lambda_tasks.detach()

    def _invoke(self, event: Any) -> Any:
        at = self.timeline.begin()
        runner = self.worlds(event, at)
        self.runs_access.attach([runner.session])
        clock = runner.account.clock
        began = clock.monotonic()
        try:
            return runner.invoke(event)
        finally:
            self.timeline.ran(clock.monotonic() - began)


def definition_references(
    template: Template, region: str, account: str, bucket: str, function_arn: str
) -> dict[str, str]:
    """What CloudFormation would put in the definition, as this world names it."""
    references = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account}
    for logical_id in resources(template, "AWS::Lambda::Function"):
        references[f"{logical_id}.Arn"] = function_arn
    for logical_id in resources(template, "AWS::S3::Bucket"):
        references[logical_id] = bucket
    return references
