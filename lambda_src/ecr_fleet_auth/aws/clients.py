"""The one place that creates AWS clients.

Every call to AWS goes through a boto3 client made here, so the standard
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables point the whole
runner at an emulator. Retries are botocore's adaptive mode: throttling errors
are retried with back-off *and* slow the client's own send rate, which is what a
run of thousands of paginated calls needs.

Cross-account runs (docs/how-it-works/organizations.md): ``clients_for(account, region, role_name=...)``
gives clients for a member account, signed with the credentials of a session of its member
role (STS AssumeRole, called on the regional endpoint of the function's own region, whose
session tokens are valid in every region, opt-in ones included: IAM User Guide, "Manage AWS
STS in an AWS Region"). A session is made once per account and kept while it stays valid for
longer than an invocation can last, so a warm invocation reuses it and a run never holds
credentials that expire under it. A member pair's clients are made for its run and dropped
with it: a botocore client weighs about 0.6 MiB, so an organization's hundreds of pairs must not
all keep theirs in the function's memory (512 MB). Secrets never leave this module: nothing
here is logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..shared.partitions import role_arn

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

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
# A member role's session is reused while it stays valid this much longer (Lambda's 15 minutes
# and a margin); otherwise a new one is made.
CREDENTIALS_MIN_LIFETIME = timedelta(minutes=20)
# Shows in CloudTrail as the member role's session name.
ROLE_SESSION_NAME = "ecr-fleet-auth-runner"


@dataclass(frozen=True, order=True)
class Pair:
    """An (account, region) a run covers."""

    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


def error_code(error: Exception) -> str:
    """The AWS error code (``ThrottlingException``), else the exception's class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


@dataclass(frozen=True)
class AwsClients:
    """The clients one (account, region) of a run needs."""

    ec2: EC2Client
    ssm: SSMClient
    ssm_send: SSMClient  # for SendCommand only: no retries (NO_RETRIES)


@dataclass(frozen=True)
class _RoleSession:
    """A member role's session; its secrets never show in a repr (a log line, a traceback)."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def lasts(self) -> bool:
        return self.expiration - datetime.now(UTC) > CREDENTIALS_MIN_LIFETIME


class ClientFactory:
    """Creates (and reuses) the clients for an account and region. Safe to use from several threads."""

    def __init__(self, session: boto3.Session | None = None, config: Config = CLIENT_CONFIG) -> None:
        self._session = session
        self._config = config
        self._own: dict[str | None, AwsClients] = {}
        self._sns: SNSClient | None = None
        self._queues: dict[str | None, SQSClient] = {}
        self._roles: dict[tuple[str, str], _RoleSession] = {}
        self._lock = threading.RLock()  # boto3 sessions are not thread-safe: clients are made under it
        self._sts: STSClient | None = None
        self._cloudformation: CloudFormationClient | None = None
        self._dynamodb: DynamoDBClient | None = None
        self._s3: S3Client | None = None
        self._stepfunctions: SFNClient | None = None

    def clients_for(
        self, account: str | None = None, region: str | None = None, *, role_name: str | None = None
    ) -> AwsClients:
        """Clients for ``account`` (None: this function's own credentials) in ``region`` (None: AWS_REGION).

        The own clients are made once and reused. Another account is reached through a session of
        its role ``role_name`` (``assume_role``; STS's refusal propagates, ``ClientError``
        AccessDenied), with clients made anew for each call: the caller keeps them for one run."""
        if account is not None:
            return self._make(region, self.assume_role(account, _required(role_name)))
        with self._lock:
            if region not in self._own:
                self._own[region] = self._make(region, None)
            return self._own[region]

    def sns(self) -> SNSClient:
        """SNS with the function's own credentials in its own region (the stack's topic)."""
        with self._lock:
            if self._sns is None:
                self._sns = (self._session or boto3.Session()).client("sns", config=self._config)
            return self._sns

    def assume_role(self, account: str, role_name: str) -> _RoleSession:
        """A session of the member role in ``account``, reused while it lasts (one AssumeRole per account)."""
        with self._lock:
            known = self._roles.get((account, role_name))
        if known is not None and known.lasts():
            return known
        region = self.own_region()
        arn = role_arn(account, role_name, region)
        answer = self.sts().assume_role(RoleArn=arn, RoleSessionName=ROLE_SESSION_NAME)["Credentials"]
        made = _RoleSession(
            answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], answer["Expiration"]
        )
        with self._lock:
            self._roles[(account, role_name)] = made
        return made

    def sts(self) -> STSClient:
        """STS with the function's own credentials, on its own region's endpoint."""
        with self._lock:
            if self._sts is None:
                self._sts = (self._session or boto3.Session()).client("sts", config=self._config)
            return self._sts

    def cloudformation(self) -> CloudFormationClient:
        """CloudFormation with the function's own credentials in its own region (the StackSet's)."""
        with self._lock:
            if self._cloudformation is None:
                session = self._session or boto3.Session()
                self._cloudformation = session.client("cloudformation", config=self._config)
            return self._cloudformation

    def dynamodb(self) -> DynamoDBClient:
        """DynamoDB with the function's own credentials in its own region (the stack's claim table)."""
        with self._lock:
            if self._dynamodb is None:
                self._dynamodb = (self._session or boto3.Session()).client("dynamodb", config=self._config)
            return self._dynamodb

    def s3(self) -> S3Client:
        """S3 with the function's own credentials in its own region (the organization run's bucket)."""
        with self._lock:
            if self._s3 is None:
                self._s3 = (self._session or boto3.Session()).client("s3", config=self._config)
            return self._s3

    def stepfunctions(self) -> SFNClient:
        """Step Functions with the function's own credentials in its own region (the organization's
        state machine, whose executions a step's event names)."""
        with self._lock:
            if self._stepfunctions is None:
                session = self._session or boto3.Session()
                self._stepfunctions = session.client("stepfunctions", config=self._config)
            return self._stepfunctions

    def own_region(self) -> str:
        """The region of the function's own clients (AWS_REGION)."""
        with self._lock:
            return str((self._session or boto3.Session()).region_name or "")

    def _make(self, region: str | None, role: _RoleSession | None) -> AwsClients:
        with self._lock:  # boto3 sessions are not thread-safe
            return self._made_with(region, role)

    def _made_with(self, region: str | None, role: _RoleSession | None) -> AwsClients:
        session = self._session or boto3.Session()
        key_id = role.access_key_id if role else None
        secret = role.secret_access_key if role else None
        token = role.session_token if role else None
        config, once = self._config, self._config.merge(NO_RETRIES)
        return AwsClients(
            ec2=session.client(
                "ec2", region_name=region, config=config, aws_access_key_id=key_id,
                aws_secret_access_key=secret, aws_session_token=token,
            ),
            ssm=session.client(
                "ssm", region_name=region, config=config, aws_access_key_id=key_id,
                aws_secret_access_key=secret, aws_session_token=token,
            ),
            ssm_send=session.client(
                "ssm", region_name=region, config=once, aws_access_key_id=key_id,
                aws_secret_access_key=secret, aws_session_token=token,
            ),
        )  # fmt: skip

    def sqs_for(self, region: str | None = None) -> SQSClient:
        """SQS in ``region``, made only for runs of instance events (they put back events to wait)."""
        with self._lock:
            if region not in self._queues:
                session = self._session or boto3.Session()
                self._queues[region] = session.client("sqs", region_name=region, config=self._config)
            return self._queues[region]


def _required(role_name: str | None) -> str:
    if not role_name:
        raise ValueError("another account's clients need its role's name")
    return role_name


@cache
def default_factory() -> ClientFactory:
    """The process-wide factory, so warm invocations reuse their connections."""
    return ClientFactory()
