"""The ecr-fleet-auth stack: composes the constructs, one per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack, aws_logs
from constructs import Construct

from .config import DeploymentConfig
from .console_events import ConsoleTestEvents
from .dashboard import RunnerDashboard
from .document.construct import AgentDocument
from .instance_access import InstanceAccessPolicy, own_registry
from .members import OrganizationMembers, forwarder_role_arns, member_document_name, stack_set_name
from .new_instances import ClaimTable, NewInstanceTriggers
from .notifications import Notifications
from .runner_function import RunnerFunction
from .schedule import RunnerSchedule


class EcrFleetAuthStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        registries = list(config.registries) or [own_registry()]

        document = AgentDocument(
            self, "AgentDocument", execution_timeout_seconds=config.execution_timeout_seconds
        )
        command_output = aws_logs.LogGroup(
            self,
            "RunCommandOutput",
            retention=config.log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        notifications = Notifications(self, "Notifications", email=config.notification_email)
        # Organization mode: a StackSet places the member template in every account of the units.
        organization = bool(config.organizational_unit_ids)
        # Where runs of instance events claim an instance before commanding it (new instances only).
        claims = ClaimTable(self, "NewInstanceClaims") if config.new_instances else None
        runner = RunnerFunction(
            self,
            "Runner",
            config=config,
            document=document,
            # An organization's runner gets `registries` as set: empty, each pair logs into its own
            # account's registry in its region (RunnerSettings.registries_for).
            registries=list(config.registries) if organization else registries,
            topic=notifications.topic,
            command_output=command_output,
            stack_set_name=stack_set_name(config.stack_name) if organization else "",
            member_document_name=member_document_name(config) if organization else "",
            claim_table_name=claims.table.table_name if claims is not None else "",
        )
        triggers = None
        if claims is not None:
            triggers = NewInstanceTriggers(
                self,
                "NewInstances",
                function=runner.function,
                role=runner.role,
                tag_key=config.target_tag_key,
                tag_values=config.target_tag_values,
                topic=notifications.topic,
                claim_table=claims.table,
                # In an organization, member stacks forward their new instances' events here too.
                organization_id=config.organization_id if organization else "",
                forwarder_role_arns=forwarder_role_arns(self, config.stack_name) if organization else "",
            )
        if organization:
            member_events = triggers.member_event_bus if triggers is not None else None
            OrganizationMembers(
                self,
                "Members",
                config=config,
                registries=registries,
                runner_role=runner.role,
                command_output=command_output,
                central_event_bus_arn=member_events.event_bus_arn if member_events is not None else None,
            )
        service = runner.metrics_service
        notifications.alarm_on_instances_left_broken(self, service=service)
        notifications.alarm_on_failed_runs(self, service=service)
        notifications.alarm_on_runner_errors(self, runner.function, service=service)
        if organization:
            notifications.alarm_on_unreachable_targets(self, service=service)
        RunnerSchedule(
            self,
            "Schedule",
            function=runner.function,
            expression=config.schedule_expression,
            time_zone=config.schedule_time_zone,
            enabled=config.schedule_enabled,
        )
        ConsoleTestEvents(self, "ConsoleTestEvents", function=runner.function)
        dashboard = RunnerDashboard(
            self, "Dashboard", runner_logs=runner.log_group, service=service, by_accounts=organization
        )
        access = InstanceAccessPolicy(
            self, "InstanceAccess", registries=registries, command_output_arn=command_output.log_group_arn
        )

        outputs = {
            "RunnerFunctionName": (runner.function.function_name, "Invoke this for a manual run"),
            "DocumentName": (document.document_name, "SSM Command document that runs the agent"),
            "InstancePolicyArn": (access.policy.managed_policy_arn, "Attach to your instance roles"),
            "RunCommandOutputLogGroup": (command_output.log_group_name, "Full agent output per command"),
            "NotificationTopicArn": (notifications.topic.topic_arn, "Run reports and alarms"),
            "DashboardName": (dashboard.dashboard.dashboard_name, "Outcomes, durations, latest failures"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(
                self, name, value=value, description=description, export_name=f"{self.stack_name}-{name}"
            )
