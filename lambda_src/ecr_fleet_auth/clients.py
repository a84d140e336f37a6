"""The one place that creates AWS clients.

Every call to AWS goes through a boto3 client made here, so the standard
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables point the whole
runner at an emulator. Retries are botocore's adaptive mode: throttling errors
are retried with back-off *and* slow the client's own send rate, which is what a
run of thousands of paginated calls needs.

Seam for cross-account runs (CONTRACT.md section 8): ``clients_for`` takes an
(account, region) pair; today only the function's own account exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# Throttling storms on DescribeInstanceInformation / ListCommandInvocations are
# normal at 10,000 instances; 8 attempts with adaptive back-off ride them out.
RETRY_ATTEMPTS = 8
CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": RETRY_ATTEMPTS},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="ecr-fleet-auth",
)

# SendCommand has no idempotency token: retrying it after a lost answer (a 5xx, a read
# timeout) could start a second command on the same instances. Its client retries
# nothing; ``RunCommand.send`` retries only what cannot have started a command.
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})

# What a failed AWS call raises (after botocore's own retries).
AWS_ERRORS = (ClientError, BotoCoreError)


def error_code(error: Exception) -> str:
    """The AWS error code (``ThrottlingException``), else the exception's class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


@dataclass(frozen=True)
class AwsClients:
    """The clients one run needs, all for the same account and region."""

    ec2: EC2Client
    ssm: SSMClient
    sns: SNSClient
    ssm_send: SSMClient  # for SendCommand only: no retries (NO_RETRIES)


class ClientFactory:
    """Creates (and reuses) the clients for an account and region."""

    def __init__(self, session: boto3.Session | None = None, config: Config = CLIENT_CONFIG) -> None:
        self._session = session
        self._config = config
        self._made: dict[tuple[str | None, str | None], AwsClients] = {}
        self._queues: dict[str | None, SQSClient] = {}

    def clients_for(self, account: str | None = None, region: str | None = None) -> AwsClients:
        """Clients for ``account`` (None: this function's own) in ``region`` (None: AWS_REGION)."""
        if account is not None:
            # Later: assume the StackSet-deployed role in ``account`` and build a session from it.
            raise NotImplementedError("cross-account runs are not built yet (CONTRACT.md section 8)")
        key = (account, region)
        if key not in self._made:
            session = self._session or boto3.Session()
            self._made[key] = AwsClients(
                ec2=session.client("ec2", region_name=region, config=self._config),
                ssm=session.client("ssm", region_name=region, config=self._config),
                sns=session.client("sns", region_name=region, config=self._config),
                ssm_send=session.client("ssm", region_name=region, config=self._config.merge(NO_RETRIES)),
            )
        return self._made[key]

    def sqs_for(self, region: str | None = None) -> SQSClient:
        """SQS in ``region``, made only for runs of instance events (they put back events to wait)."""
        if region not in self._queues:
            session = self._session or boto3.Session()
            self._queues[region] = session.client("sqs", region_name=region, config=self._config)
        return self._queues[region]


@cache
def default_factory() -> ClientFactory:
    """The process-wide factory, so warm invocations reuse their connections."""
    return ClientFactory()
