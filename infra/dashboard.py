"""A CloudWatch dashboard per stack: outcomes per run, run duration, latest failures; in organization
mode also the outcomes of each account."""

from __future__ import annotations

from aws_cdk import Duration, Stack, aws_cloudwatch, aws_logs
from constructs import Construct

from ecr_fleet_auth import contract

# Statuses shown on the outcomes graph, in reading order.
SHOWN_STATUSES = ("succeeded", "failed", "unreachable", "pending", "skipped")
PERIOD = Duration.minutes(5)
# In organization mode the runner also counts each account's instances by status: the same metric
# names with the dimensions service (the stack's name) and this one (issue 14's design).
ACCOUNT_DIMENSION = "account_id"


def runner_metric(metric_name: str, service: str, action: str, statistic: str) -> aws_cloudwatch.Metric:
    """A metric exactly as the runner emits it (Powertools EMF: service = the stack's name, action)."""
    return aws_cloudwatch.Metric(
        namespace=contract.METRIC_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={contract.METRIC_SERVICE_DIMENSION: service, contract.METRIC_ACTION_DIMENSION: action},
        statistic=statistic,
        period=PERIOD,
    )


def across_actions(metric_name: str, service: str, label: str) -> aws_cloudwatch.MathExpression:
    """The sum over the three actions, so one line shows the fleet whatever the action was."""
    # Ids are unique within one graph, so each names the status and the action it stands for.
    metrics = {
        f"{label}_{action}": runner_metric(metric_name, service, action, "Sum") for action in contract.ACTIONS
    }
    return aws_cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({name}, 0)" for name in metrics),
        using_metrics=metrics,
        label=label,
        period=PERIOD,
    )


def by_account(metric_name: str, service: str) -> aws_cloudwatch.MathExpression:
    """One line per account: a SEARCH over the per-account metrics of this stack (its service), so
    accounts that join the organizational units later show up without a deploy."""
    schema = f"{{{contract.METRIC_NAMESPACE},{ACCOUNT_DIMENSION},{contract.METRIC_SERVICE_DIMENSION}}}"
    terms = f'MetricName="{metric_name}" {contract.METRIC_SERVICE_DIMENSION}="{service}"'
    return aws_cloudwatch.MathExpression(
        expression=f"SEARCH('{schema} {terms}', 'Sum', {int(PERIOD.to_seconds())})",
        using_metrics={},
        label="",  # each line is labelled by its dimensions: the account id
        period=PERIOD,
    )


class RunnerDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        runner_logs: aws_logs.ILogGroup,
        service: str,
        by_accounts: bool = False,
    ) -> None:
        """``name``: the deployment's (``EcrFleetAuth.name``); the dashboard is ``<name>-<region>``."""
        super().__init__(scope, construct_id)
        self.dashboard = aws_cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{name}-{Stack.of(self).region}",
            default_interval=Duration.days(7),
        )
        outcomes = aws_cloudwatch.GraphWidget(
            title="Instances per run, by status",
            left=[
                across_actions(contract.status_metric_name(status), service, status)
                for status in SHOWN_STATUSES
            ],
            stacked=True,
            width=12,
        )
        duration = aws_cloudwatch.GraphWidget(
            title="Run duration (seconds)",
            left=[
                runner_metric(contract.RUN_DURATION_METRIC, service, action, "Maximum")
                for action in contract.ACTIONS
            ],
            width=12,
        )
        failures = aws_cloudwatch.LogQueryWidget(
            title="Latest runs with failed, unreachable or pending instances",
            log_group_names=[runner_logs.log_group_name],
            query_lines=[
                "fields @timestamp, report.run_id as run, report.action as action, report.source as source",
                f'filter message = "{contract.RUN_REPORT_LOG_MESSAGE}"',
                "filter report.summary.failed > 0 or report.summary.unreachable > 0"
                " or report.summary.pending > 0",
                "display @timestamp, run, action, source, report.summary.failed,"
                " report.summary.unreachable, report.summary.pending,"
                " report.instances_not_succeeded.0.instance_id, report.instances_not_succeeded.0.reason",
                "sort @timestamp desc",
                "limit 20",
            ],
            width=24,
            height=8,
        )
        self.dashboard.add_widgets(outcomes, duration)
        self.dashboard.add_widgets(failures)
        if by_accounts:
            self.dashboard.add_widgets(
                *(
                    aws_cloudwatch.GraphWidget(
                        title=f"Instances {status} per run, by account",
                        left=[by_account(contract.status_metric_name(status), service)],
                        stacked=True,
                        width=8,
                    )
                    for status in SHOWN_STATUSES
                )
            )
