"""Lambda entry point: parse the settings and the event, run, return the report.

Everything else lives in ``ecr_fleet_auth``; see ``run.runner.run`` for the sequence,
``new_instances.triggers.handle`` for a batch of instance events (EventBridge, through SQS) that
becomes one, and ``run.organization_run.handle`` for a step of the organization's state machine (its
plan, a child, its merge: an organization's run beyond one invocation).
The event's shape alone (``shared.invocations``) chooses the path, and only that path's modules are
imported, at its first event: a cold start loads what its event needs, never the other paths.
A rejected event is raised (the caller's error, before anything is sent) and counted
as ``EventsRejected``; a run that fails after that is returned as a report with ``error``.
Every metric carries the dimension ``service`` = the stack's name (``STACK_NAME``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ecr_fleet_auth.aws import clients
from ecr_fleet_auth.aws.clients import Pair
from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.invocations import InvalidEvent, is_instance_event, is_step
from ecr_fleet_auth.shared.observability import logger, metrics, tracer
from ecr_fleet_auth.shared.settings import RunnerSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = RunnerSettings.from_environment()
    # Whatever this invocation counts is this stack's: its alarms and dashboard read this dimension.
    metrics.add_dimension(name=contract.METRIC_SERVICE_DIMENSION, value=settings.stack_name)
    # The function's own account and region, from its ARN (arn:<partition>:lambda:<region>:<account>:...).
    arn = context.invoked_function_arn.split(":")
    home = Pair(account=arn[4], region=arn[3])
    try:
        if is_instance_event(event):  # EventBridge's instance events, directly or as an SQS batch
            from ecr_fleet_auth.new_instances import triggers  # noqa: PLC0415 - this path's modules only

            return triggers.handle(
                event,
                settings,
                factory=clients.default_factory(),
                remaining_millis=context.get_remaining_time_in_millis(),
                home=home,
            )
        if is_step(event):  # the organization's state machine: its plan, a child, its merge
            from ecr_fleet_auth.run import organization_run, step_events  # noqa: PLC0415 - as above

            return organization_run.handle(
                step_events.parse(event),
                settings,
                factory=clients.default_factory(),
                remaining_millis=context.get_remaining_time_in_millis(),
                home=home,
            )
        from ecr_fleet_auth.aws import publishing  # noqa: PLC0415 - as above
        from ecr_fleet_auth.run import runner  # noqa: PLC0415
        from ecr_fleet_auth.shared.events import RunRequest  # noqa: PLC0415

        request = RunRequest.from_event(event)  # before any AWS call
        # Raises InvalidEvent too, before anything is sent, for an account or region the stack does not cover.
        report = runner.run(
            request,
            settings,
            factory=clients.default_factory(),
            remaining_millis=context.get_remaining_time_in_millis(),
            home=home,
        )
        return publishing.response(report)
    except InvalidEvent:
        metrics.add_metric(name=contract.EVENTS_REJECTED_METRIC, unit=MetricUnit.Count, value=1)
        raise
