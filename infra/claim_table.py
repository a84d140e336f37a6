"""The claim table (``ClaimTable``) is where runs of instance events claim an instance before they command or
report it (``ecr_fleet_auth/aws/claims.py``): the two batches that may run at once each look before
either sends, so without it both could command one instance. It is a DynamoDB table billed per
request (on-demand: nothing while nothing launches, no capacity to provision), one small item
per instance claimed, deleted by TTL once expired; the runner may only ``PutItem`` there.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, aws_dynamodb
from constructs import Construct

from ecr_fleet_auth.shared import contract

from .nag import acknowledge


class ClaimTable(Construct):
    """The runner's claims: one per instance (``contract.CLAIM_KEY``), TTL ``CLAIM_TTL_ATTRIBUTE``."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = aws_dynamodb.Table(
            self,
            "Table",
            partition_key=aws_dynamodb.Attribute(
                name=contract.CLAIM_KEY, type=aws_dynamodb.AttributeType.STRING
            ),
            billing_mode=aws_dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=contract.CLAIM_TTL_ATTRIBUTE,
            # Claims last minutes and mean nothing without the stack: nothing to keep or restore.
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.table,
            "AwsSolutions-DDB3",
            reason=(
                "Claims live for minutes and are rewritten by the next event: a point-in-time "
                "restore would bring back only expired claims."
            ),
        )
