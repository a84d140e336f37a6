"""Step 5 of a run: the report logged once, counted in metrics and, per the policy, sent to SNS.

The log record and the metrics are what the stack's dashboard and alarms read
(names in ``contract``). An organization's run also logs one record per account with that account's
counts (``account report``: the dashboard's per-account widgets are Logs Insights queries, no custom
metric per account), and counts the pairs it
could not reach (``TargetsUnreachable``, dimension service only, 0 when every pair was reached: the
stack's alarm of that name reads it), and the instances whose SSM Compliance it could not write
(``ComplianceNotWritten``, beside the run's counts). Dry runs are
logged only: nothing ran, so nothing is counted or sent. A lost e-mail never fails the run;
the report is still returned and logged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from ..shared import contract
from ..shared.observability import logger, metrics
from ..shared.report import Report, chat_notification, message, should_notify, subject
from ..shared.settings import RunnerSettings
from .clients import AWS_ERRORS

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

LOGGED_INSTANCES = 200
# Lambda returns at most 6 MB to a synchronous caller (Invoke API reference, "Payload": "The response
# from the function, or an error object", and the quotas page: "6 MB each for request and response
# (synchronous)"); an organization's report of tens of thousands of instances is larger. Above this,
# the return value is the report without ``instances``, as the log record holds it.
RESPONSE_LIMIT_BYTES = 5_000_000
RETURNED_INSTANCES = 2000


def publish(report: Report, settings: RunnerSettings, sns: SNSClient, *, duration_seconds: float) -> None:
    _log(report)
    if not report.dry_run:
        _count(report, duration_seconds, settings.stack_name)
    _notify(report, settings, sns)


def _log(report: Report) -> None:
    """One structured record: the report, with only the instances that did not succeed (bounded)."""
    logger.info(contract.RUN_REPORT_LOG_MESSAGE, extra={"report": condensed(report, LOGGED_INSTANCES)})


def condensed(report: Report, listed: int) -> dict[str, Any]:
    """The report without ``instances``: the first ``listed`` instances that did not succeed, and how
    many more there were (the summary still counts every instance, and so does a merged report that
    lists only some of them)."""
    attention = [i.to_dict() for i in report.instances if i.status != "succeeded"][:listed]
    summary = report.summary()
    return {
        **{key: value for key, value in report.to_dict().items() if key != "instances"},
        "instances_not_succeeded": attention,
        "instances_not_logged": max(0, summary["total"] - summary["succeeded"] - len(attention)),
    }


def response(report: Report) -> dict[str, Any]:
    """What the handler returns: the whole report, or, when that is more than Lambda can return to
    a synchronous caller, the report ``condensed`` (its ``instances_not_succeeded``)."""
    whole = report.to_dict()
    if len(json.dumps(whole, default=str)) <= RESPONSE_LIMIT_BYTES:
        return whole
    return condensed(report, RETURNED_INSTANCES)


def _count(report: Report, duration_seconds: float, service: str) -> None:
    """The metrics the stack's alarms and dashboard read."""
    summary = report.summary()
    metrics.add_dimension(name=contract.METRIC_ACTION_DIMENSION, value=report.action)
    for status in contract.INSTANCE_STATUSES:
        metrics.add_metric(
            name=contract.status_metric_name(status), unit=MetricUnit.Count, value=summary[status]
        )
    metrics.add_metric(name=contract.RUN_DURATION_METRIC, unit=MetricUnit.Seconds, value=duration_seconds)
    metrics.add_metric(
        name=contract.RUNS_FAILED_METRIC, unit=MetricUnit.Count, value=1 if report.error is not None else 0
    )
    if report.targets is not None:
        _log_accounts(report)
        _count_unreachable_targets(report, service)
    if report.compliance is not None:
        # Instances whose SSM Compliance is not this run's (refused, or no time left), fleet-wide.
        missing = int(report.compliance.get("failed", 0)) + int(report.compliance.get("not_written", 0))
        metrics.add_metric(name=contract.COMPLIANCE_NOT_WRITTEN_METRIC, unit=MetricUnit.Count, value=missing)


def _count_unreachable_targets(report: Report, service: str) -> None:
    unreached = EphemeralMetrics(namespace=metrics.namespace)
    unreached.add_dimension(name=contract.METRIC_SERVICE_DIMENSION, value=service)
    unreached.add_metric(
        name=contract.TARGETS_UNREACHABLE_METRIC, unit=MetricUnit.Count, value=len(report.unreachable_targets)
    )
    unreached.flush_metrics()


def _log_accounts(report: Report) -> None:
    """One log record per account with its counts: the dashboard's per-account widgets query them with
    Logs Insights, so an organization of any size costs log bytes, not a custom metric per account."""
    for account, counts in report.accounts().items():
        record = {"account_id": account, "run_id": report.run_id, "action": report.action, **counts}
        logger.info(contract.ACCOUNT_REPORT_LOG_MESSAGE, extra={contract.ACCOUNT_REPORT_FIELD: record})


def _notify(report: Report, settings: RunnerSettings, sns: SNSClient) -> None:
    if not should_notify(report, settings.notify_policy):
        return
    if not settings.topic_arn:
        logger.warning("notification due but no topic configured")
        return
    try:
        region = sns.meta.region_name
        text = message(report, output_log_group=settings.output_log_group, region=region)
        # One message per protocol (SNS Publish, MessageStructure json: "default" for every protocol
        # without a key of its own): e-mail and queues the plain text, https (AWS Chatbot's
        # subscription) a Chatbot custom notification, which a channel shows (plain text it does not).
        chat = json.dumps(chat_notification(report, region=region))
        sns.publish(
            TopicArn=settings.topic_arn,
            Subject=subject(report),
            Message=json.dumps({"default": text, "https": chat}),
            MessageStructure="json",
        )
    except AWS_ERRORS:
        # The report is still returned and logged; a lost e-mail must not fail the run.
        logger.exception("could not publish the report to SNS")
