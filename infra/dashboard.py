"""A CloudWatch dashboard per stack: outcomes per run, run duration, latest failures; in organization
mode also the outcomes of each account, from the runner's per-account log records (Logs Insights
widgets: no custom metric per account, docs/operating/limits-and-cost.md)."""

from __future__ import annotations

from aws_cdk import Duration, Stack, aws_cloudwatch, aws_logs
from constructs import Construct

from ecr_fleet_auth.shared import contract

# Statuses shown on the outcomes graph, in reading order.
SHOWN_STATUSES = ("succeeded", "failed", "unreachable", "pending", "skipped")
PERIOD = Duration.minutes(5)


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


def account_queries() -> dict[str, list[str]]:
    """Logs Insights queries over the runner's per-account records (``account report``), by widget
    title: the latest run's counts per account, and the accounts that had failures in the period."""
    record = f"{contract.ACCOUNT_REPORT_FIELD}."
    head = [
        f"fields {record}account_id as account",
        f'filter message = "{contract.ACCOUNT_REPORT_LOG_MESSAGE}"',
    ]
    latest = ", ".join(f"latest({record}{status}) as {status}" for status in ("total", *SHOWN_STATUSES))
    return {
        "Instances by account, latest run": [
            *head,
            f"stats {latest} by account",
            "sort failed desc",
            "limit 100",
        ],
        "Accounts with failed or unreachable instances in the period": [
            *head,
            f"filter {record}failed > 0 or {record}unreachable > 0",
            f"stats sum({record}failed) as failed, sum({record}unreachable) as unreachable,"
            " count(*) as runs_with_failures by account",
            "sort failed desc",
            "limit 100",
        ],
    }


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
                    aws_cloudwatch.LogQueryWidget(
                        title=title,
                        log_group_names=[runner_logs.log_group_name],
                        query_lines=lines,
                        view=aws_cloudwatch.LogQueryVisualizationType.TABLE,
                        width=12,
                        height=8,
                    )
                    for title, lines in account_queries().items()
                )
            )
