"""EventBridge Scheduler invoking the runner, marking the invocation as scheduled; in organization
mode starting the organization's state machine instead (``OrganizationStateMachine``), with the same event
as its input, so that an organization of any size is run in one run."""

from __future__ import annotations

from aws_cdk import (
    CfnElement,
    Duration,
    TimeZone,
    aws_iam,
    aws_lambda,
    aws_scheduler,
    aws_scheduler_targets,
    aws_stepfunctions,
)
from constructs import Construct

from ecr_fleet_auth.shared import contract

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
        state_machine: aws_stepfunctions.IStateMachine | None = None,
    ) -> None:
        """``state_machine``: the organization's (organization mode), started instead of the runner."""
        super().__init__(scope, construct_id)
        self.role = aws_iam.Role(
            self,
            "Role",
            assumed_by=aws_iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=(
                "ecr-fleet-auth: lets EventBridge Scheduler invoke the runner"
                if state_machine is None
                else "ecr-fleet-auth: lets EventBridge Scheduler start the organization's state machine"
            ),
        )
        scheduled = aws_scheduler.ScheduleTargetInput.from_object(dict(contract.SCHEDULED_EVENT))
        target: aws_scheduler.IScheduleTarget
        if state_machine is None:
            target = aws_scheduler_targets.LambdaInvoke(
                function,
                input=scheduled,
                # Retries of the *delivery* to Lambda (the Invoke call failing). Once Lambda has
                # accepted the event, the function's own event age (infra/runner_function.py) decides how
                # late a throttled run may start. A duplicate delivery is a second run at the same
                # time, which leaves out the instances the first one is working on.
                retry_attempts=SCHEDULER_RETRY_ATTEMPTS,
                max_event_age=SCHEDULER_MAX_EVENT_AGE,
                role=self.role,
            )
        else:
            # StartExecution is the delivery: a retried one is a second execution at the same time,
            # whose children leave out the instances the first one's are working on.
            target = aws_scheduler_targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduled,
                retry_attempts=SCHEDULER_RETRY_ATTEMPTS,
                max_event_age=SCHEDULER_MAX_EVENT_AGE,
                role=self.role,
            )
        self.schedule = aws_scheduler.Schedule(
            self,
            "Schedule",
            description="ecr-fleet-auth: scheduled fleet remediation",
            schedule=aws_scheduler.ScheduleExpression.expression(expression, TimeZone.of(time_zone)),
            target=target,
            enabled=enabled,
        )
        if state_machine is not None:
            return
        function_resource = function.node.default_child
        assert isinstance(function_resource, CfnElement)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            applies_to=[attribute_finding(function_resource, "Arn", ":*")],
            reason="The scheduler target grant covers the runner function and its versions (function:*).",
        )
