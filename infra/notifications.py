"""Where people hear about runs: an encrypted topic, an optional e-mail, an alarm."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, aws_cloudwatch, aws_iam, aws_kms, aws_sns
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from ecr_fleet_auth import contract

# Statuses that mean an instance still cannot pull after a run.
ALARMING_STATUSES = ("failed", "unreachable")


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, email: str) -> None:
        super().__init__(scope, construct_id)
        self.key = aws_kms.Key(
            self,
            "TopicKey",
            description="ecr-fleet-auth: encrypts the notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch alarms publish to an encrypted topic only if the key lets them.
        self.key.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[aws_iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = aws_sns.Topic(
            self,
            "Topic",
            display_name="ecr-fleet-auth",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def alarm_on_instances_left_broken(self, scope: Construct) -> aws_cloudwatch.Alarm:
        """Alarm when any run, of any action, ends with failed or unreachable instances."""
        metrics = {
            f"{status}_{action}": aws_cloudwatch.Metric(
                namespace=contract.METRIC_NAMESPACE,
                metric_name=contract.status_metric_name(status),
                dimensions_map={
                    "service": contract.METRIC_SERVICE,
                    contract.METRIC_ACTION_DIMENSION: action,
                },
                statistic="Sum",
                period=Duration.hours(1),
            )
            for status in ALARMING_STATUSES
            for action in contract.ACTIONS
        }
        broken = aws_cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in metrics),
            using_metrics=metrics,
            label="Instances failed or unreachable",
            period=Duration.hours(1),
        )
        alarm = broken.create_alarm(
            scope,
            "InstancesLeftBroken",
            alarm_description=(
                "ecr-fleet-auth: a run ended with failed or unreachable instances; "
                "see the runner's report and the Run Command output log group."
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=aws_cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm
