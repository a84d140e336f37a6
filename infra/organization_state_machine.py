"""Organization mode: the state machine that runs an organization beyond one invocation, and its bucket.

A Standard workflow, ``<name>-OrganizationRun`` (``contract.state_machine_name``), that the schedule
starts in organization mode (``RunnerSchedule``) and an operator may start by hand (``make invoke``):

    Start (the execution's input kept as $.run)
      -> Plan   (the runner: list the pairs, batch them, write the batches to the bucket)
      -> Children, a Distributed Map over the batches (ItemReader: the plan's items in the bucket),
         MaxConcurrency MAX_CHILDREN_AT_ONCE; each child invokes the runner on its batch, and its
         Catch turns a failed or timed-out invocation into a record (the batch, the error, the
         child execution) instead of a failed child
      -> Merge  (the runner: one report from the children's, published once)

The plan's and the Map's Catch go to the merge too, which then reports the run failed (``RunsFailed``);
an input the runner refuses (``InvalidEvent``) ends the execution in ``Rejected``. Only the runner is
invoked, and only Lambda's own transient errors (``SERVICE_ERRORS``, AWS's recommended retry) and a
throttled invocation (``Lambda.TooManyRequestsException``: it never started) are retried, never the
runner's own error; a step invoked twice is harmless, its objects being written once per execution
(``ecr_fleet_auth/aws/run_store.py``). The merge, the last step, has no Catch: a merge that still fails
fails the execution, which ``ExecutionsFailed`` counts in the ``RunsFailed`` alarm (it notifies).
The definition avoids what the Amazon States Language interpreter the tests run it on rejects
(``ItemBatcher``, an integer ``ToleratedFailurePercentage``, ``ResultWriter``, which writes no
results there): the plan batches the pairs itself, tolerance is the Catch's and the merge's, and the
children write their own reports.

The bucket holds each run's plan, batches and reports under ``runs/<execution name>/``: encrypted
(SSE-S3), TLS 1.2 or later only, no public access, objects owned by the bucket, expired after the
stack's log retention. The runner's role may read and write ``runs/*``, list the bucket (so that S3
answers a missing object 404, not 403) and describe the state
machine's executions; the state machine's role may invoke the runner, start its own child executions
(the Distributed Map), read ``runs/*`` (the ItemReader) and write its logs and traces.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack, aws_iam, aws_lambda, aws_logs, aws_s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ecr_fleet_auth.shared import contract, settings
from ecr_fleet_auth.shared.settings import LAMBDA_TIMEOUT_SECONDS, ORGANIZATION_CHILDREN_AT_ONCE

from .nag import acknowledge, attribute_finding, wildcard_arn_finding

RUNS_PREFIX = "runs/"
# Children at once (the Distributed Map's MaxConcurrency): 50 invocations of the runner, each one
# invocation's measured load (200 pairs at the default waitSeconds), cover 10,000 pairs in about one
# invocation's time, and leave most of a region's default Lambda concurrency (1,000) to everything
# else. More pairs run in more waves; an account with less unreserved concurrency throttles, and a
# throttled child waits its turn (THROTTLE_RETRY); a reservedConcurrency below what they need is
# refused at synth (infra/config.py).
MAX_CHILDREN_AT_ONCE = ORGANIZATION_CHILDREN_AT_ONCE
# A step's task may take the runner's whole timeout; past this Step Functions gives up on it.
TASK_TIMEOUT = Duration.seconds(LAMBDA_TIMEOUT_SECONDS + 60)
# The whole execution: the plan, as many waves of children as the organization needs, the merge.
EXECUTION_TIMEOUT = Duration.hours(12)
# Lambda's transient service errors (a 500 from Invoke): retried on every task as Step Functions'
# best practice recommends ("Handle Lambda service exceptions": these four, 2 s, 6 attempts, x2),
# as CDK's retry_on_service_exceptions would render them. Whether or not the runner ran, a step invoked
# again is harmless: its objects are written once per execution (run_store) and a batch claimed once.
SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]
SERVICE_RETRY = {"interval": Duration.seconds(2), "max_attempts": 6, "backoff_rate": 2.0}
# Lambda refused to start the runner (TooManyRequestsException: it did not run): wait and try again.
THROTTLE_ERRORS = ["Lambda.TooManyRequestsException"]
THROTTLE_RETRY = {"interval": Duration.seconds(30), "max_attempts": 6, "backoff_rate": 2.0}
# What the runner raises for an event it refuses (ecr_fleet_auth/shared/events.py): the execution's input.
REJECTED_ERROR = "InvalidEvent"


class OrganizationStateMachine(Construct):
    """``name``: the deployment's name (the state machine is ``contract.state_machine_name(name)``);
    ``function`` and ``runner_role``: the runner the steps invoke and its role, granted the bucket
    and the executions; ``retention_days``: how long runs and the state machine's logs are kept (the
    stack's ``logRetentionDays``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        function: aws_lambda.IFunction,
        runner_role: aws_iam.IRole,
        retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.state_machine_name = contract.state_machine_name(name)
        self.bucket = self._bucket(retention_days)
        self.role = self._role()
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            comment="ecr-fleet-auth: an organization's run beyond one invocation (plan, children, merge)",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(function)),
            role=self.role,
            timeout=EXECUTION_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=aws_logs.LogGroup(
                    self,
                    "Logs",
                    # The prefix Step Functions' log delivery expects (no resource policy to outgrow).
                    log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
                    retention=aws_logs.RetentionDays[settings.LOG_RETENTION[retention_days]],
                    removal_policy=RemovalPolicy.DESTROY,
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )
        self._grant_runner(runner_role)
        self._acknowledge(function)

    def _bucket(self, retention_days: int) -> aws_s3.Bucket:
        return aws_s3.Bucket(
            self,
            "Runs",
            encryption=aws_s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="ExpireRuns",
                    prefix=RUNS_PREFIX,
                    expiration=Duration.days(retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _role(self) -> aws_iam.Role:
        """Assumed by Step Functions for this state machine only (aws:SourceArn, aws:SourceAccount)."""
        stack = Stack.of(self)
        return aws_iam.Role(
            self,
            "Role",
            assumed_by=aws_iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={
                    "ArnLike": {"aws:SourceArn": self._arn("stateMachine", self.state_machine_name)},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            ),
            description="ecr-fleet-auth: lets the organization's state machine invoke the runner, read runs/",
        )

    def _arn(self, resource: str, name: str) -> str:
        return Stack.of(self).format_arn(
            service="states", resource=resource, resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )

    def _definition(self, function: aws_lambda.IFunction) -> sfn.IChainable:
        step = {"execution": sfn.JsonPath.string_at("$$.Execution.Id"), "bucket": self.bucket.bucket_name}
        start = sfn.Pass(self, "Start", parameters={"run": sfn.JsonPath.object_at("$")})
        plan = self._invoke(
            "Plan",
            function,
            {contract.STEP_FIELD: "plan", **step, "run": sfn.JsonPath.object_at("$.run")},
            result_path="$.plan",
        )
        merge = self._invoke(
            "Merge", function, {contract.STEP_FIELD: "merge", **step, "state": sfn.JsonPath.object_at("$")}
        )
        rejected = sfn.Fail(
            self,
            "Rejected",
            error=REJECTED_ERROR,
            cause="the runner refused the execution's input (see Plan)",
        )
        plan.add_catch(rejected, errors=[REJECTED_ERROR], result_path="$.failure")
        plan.add_catch(merge, errors=["States.ALL"], result_path="$.failure")
        children = sfn.DistributedMap(
            self,
            "Children",
            item_reader=_RunsItemReader(bucket=self.bucket, key=sfn.JsonPath.string_at("$.plan.items")),
            # ItemSelector runs in this execution: $$.Execution.Id is the run's, as the child's event needs.
            item_selector={
                contract.STEP_FIELD: "child",
                **step,
                "batch": sfn.JsonPath.number_at("$$.Map.Item.Value.batch"),
            },
            max_concurrency=MAX_CHILDREN_AT_ONCE,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path="$.children",
        )
        child = self._invoke("RunBatch", function, None)
        child_failed = sfn.Pass(
            self,
            "BatchFailed",
            # The Cause (a Lambda error's whole payload, stack trace included) stays in this child's
            # history: fifty of them could outgrow the 256 KiB the Map's output may hold.
            parameters={
                "batch.$": "$.batch",
                "failed": True,
                "error.$": "$.failure.Error",
                "execution.$": "$$.Execution.Id",
            },
        )
        child.add_catch(child_failed, errors=["States.ALL"], result_path="$.failure")
        children.item_processor(child)
        children.add_catch(merge, errors=["States.ALL"], result_path="$.failure")
        return start.next(plan).next(children).next(merge)

    def _invoke(
        self,
        construct_id: str,
        function: aws_lambda.IFunction,
        payload: dict[str, object] | None,
        *,
        result_path: str | None = None,
    ) -> tasks.LambdaInvoke:
        """Invoke the runner with ``payload`` (None: the state's whole input); its answer is the
        state's result. Retried on Lambda's transient service errors and when Lambda refused to start
        it; never on the runner's own error (it ran, and said why)."""
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=function,
            # Without a payload, Lambda gets the state's whole input.
            payload=None if payload is None else sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,  # SERVICE_ERRORS, below, written out
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(TASK_TIMEOUT),
        )
        task.add_retry(errors=SERVICE_ERRORS, **SERVICE_RETRY)  # type: ignore[arg-type]
        task.add_retry(errors=THROTTLE_ERRORS, **THROTTLE_RETRY)  # type: ignore[arg-type]
        return task

    def _grant_runner(self, runner_role: aws_iam.IRole) -> None:
        """The runner's steps: read and write runs/*, tell a missing object from a refused one (list the
        bucket), and ask whether an execution is this one's."""
        policy = aws_iam.Policy(
            self,
            "RunnerAccess",
            roles=[runner_role],
            statements=[
                aws_iam.PolicyStatement(
                    sid="ReadAndWriteRuns",
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=[self.bucket.arn_for_objects(f"{RUNS_PREFIX}*")],
                ),
                # S3 answers a GetObject of a key that does not exist 404 NoSuchKey only to a caller
                # allowed s3:ListBucket on the bucket, 403 AccessDenied to any other (GetObject API
                # reference, "Permissions"): the steps look for objects that may not exist yet (a
                # retried plan's plan.json, a failed child's report). Not narrowed by s3:prefix, which
                # only a ListObjects request carries (a GetObject's check would never match it); the
                # bucket holds this stack's runs only.
                aws_iam.PolicyStatement(
                    sid="TellMissingRunsApart",
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="CheckTheStepsExecution",
                    actions=["states:DescribeExecution"],
                    resources=[self._arn("execution", f"{self.state_machine_name}:*")],
                ),
            ],
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=[f"Resource::<{self._logical_id(self.bucket)}.Arn>/{RUNS_PREFIX}*"],
            reason="A run's objects are named by its execution under runs/: the runner reads, writes them.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            applies_to=[
                wildcard_arn_finding(
                    self, service="states", resource=f"execution:{self.state_machine_name}:*"
                )
            ],
            reason="A step checks that the execution its event names is a running one of this state machine.",
        )

    def _logical_id(self, construct: Construct) -> str:
        resource = construct.node.default_child
        assert resource is not None
        return Stack.of(self).get_logical_id(resource)  # type: ignore[arg-type]

    def _acknowledge(self, function: aws_lambda.IFunction) -> None:
        function_resource = function.node.default_child
        assert function_resource is not None
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            applies_to=[attribute_finding(function_resource, "Arn", ":*")],  # type: ignore[arg-type]
            reason="Step Functions' Lambda integration grants the runner function and its versions (:*).",
        )
        runs = self._logical_id(self.bucket)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            applies_to=[f"Resource::<{runs}.Arn>/{RUNS_PREFIX}*"],
            reason="The Distributed Map reads the plan's items, which the plan writes under runs/.",
        )
        # The Distributed Map's grant: start, describe and stop its own child executions.
        name = (
            f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{self._logical_id(self.state_machine)}"}}]}}]}}'
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            applies_to=[
                wildcard_arn_finding(self, service="states", resource=f"execution:{name}:*"),
                wildcard_arn_finding(self, service="states", resource=f"execution:{name}/*:*"),
            ],
            reason="A Distributed Map runs its children as executions of its own state machine, named then.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            applies_to=["Resource::*"],
            reason=(
                "Log delivery to CloudWatch Logs (logs:CreateLogDelivery, ...) and X-Ray tracing "
                "(xray:PutTraceSegments, ...) have no resource-level permissions."
            ),
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            reason=(
                "The bucket holds runs' transient plans and reports, read and written only by the runner's "
                "and the state machine's roles, expired with the logs; CloudTrail data events can audit it."
            ),
        )


class _RunsItemReader(sfn.S3JsonItemReader):
    """The plan's items, read from the runs' prefix: the state machine may read ``runs/*`` only."""

    def provide_policy_statements(self) -> list[aws_iam.PolicyStatement]:
        assert self.bucket is not None
        return [
            aws_iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(f"{RUNS_PREFIX}*")]
            )
        ]
