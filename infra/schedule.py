"""EventBridge Scheduler invoking the runner, marking the invocation as scheduled."""

from __future__ import annotations

from aws_cdk import CfnElement, Duration, TimeZone, aws_iam, aws_lambda, aws_scheduler, aws_scheduler_targets
from constructs import Construct

from ecr_fleet_auth import contract

from .nag import acknowledge, attribute_finding

SCHEDULER_RETRY_ATTEMPTS = 3
SCHEDULER_MAX_EVENT_AGE = Duration.hours(1)


class RunnerSchedule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: aws_lambda.IFunction,
        expression: str,
        time_zone: str,
        enabled: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = aws_iam.Role(
            self,
            "Role",
            assumed_by=aws_iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="ecr-fleet-auth: lets EventBridge Scheduler invoke the runner",
        )
        self.schedule = aws_scheduler.Schedule(
            self,
            "Schedule",
            description="ecr-fleet-auth: scheduled fleet remediation",
            schedule=aws_scheduler.ScheduleExpression.expression(expression, TimeZone.of(time_zone)),
            target=aws_scheduler_targets.LambdaInvoke(
                function,
                input=aws_scheduler.ScheduleTargetInput.from_object(dict(contract.SCHEDULED_EVENT)),
                # Retries of the *delivery* to Lambda (the Invoke call failing). Once Lambda has
                # accepted the event, the function's own event age (infra/runner_function.py) decides how
                # late a throttled run may start. A duplicate delivery is a second run at the same
                # time, which leaves out the instances the first one is working on.
                retry_attempts=SCHEDULER_RETRY_ATTEMPTS,
                max_event_age=SCHEDULER_MAX_EVENT_AGE,
                role=self.role,
            ),
            enabled=enabled,
        )
        function_resource = function.node.default_child
        assert isinstance(function_resource, CfnElement)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            applies_to=[attribute_finding(function_resource, "Arn", ":*")],
            reason="The scheduler target grant covers the runner function and its versions (function:*).",
        )
