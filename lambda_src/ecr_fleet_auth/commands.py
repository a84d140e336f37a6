"""Run Command adapter: send a dispatch, poll its command, collect its invocations.

Polling is per command (ListCommands), never per instance; results come from
ListCommandInvocations with ``Details=true`` — the first 2,500 characters of each
instance's output, enough for the agent's single result line — and
GetCommandInvocation (24,000 characters of stdout) only for an instance whose
result line could not be found there.

SendCommand has no idempotency token, so a send is retried here, not by botocore:
at once when the request cannot have started a command (throttled, no connection),
and after an answer that leaves it unknown (a 5xx, a lost response) only once
ListCommands shows that no command carries this send's comment, unique per send.
Nothing is ever commanded twice; if that cannot be known, the send fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnectionError

from .clock import Clock
from .planning import Dispatch

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_ssm.type_defs import CommandInvocationTypeDef, SendCommandRequestTypeDef

LIST_PAGE_SIZE = 50
# Command and invocation statuses after which nothing changes any more.
FINISHED_STATUSES = frozenset({"Success", "Cancelled", "Failed", "TimedOut"})
SEND_ATTEMPTS = 5
SEND_BACKOFF_SECONDS = 1.0
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Looking for a command of this send reaches back this far, for clock skew's sake.
LOOKBACK = timedelta(minutes=5)
COMMENT_LIMIT = 100


@dataclass(frozen=True)
class CommandSpec:
    """What every dispatch of one run sends, apart from its targets and rate budget."""

    document_name: str
    document_version: str
    parameters: Mapping[str, str]
    delivery_timeout_seconds: int
    comment: str
    output_log_group: str = ""


@dataclass(frozen=True)
class Invocation:
    """One instance's copy of a command, as Run Command reports it."""

    command_id: str
    instance_id: str
    instance_name: str
    status: str
    status_details: str
    output: str
    response_code: int | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class CommandProgress:
    status: str
    target_count: int
    completed_count: int

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class RunCommand:
    def __init__(self, ssm: SSMClient, send_client: SSMClient, clock: Clock) -> None:
        self._ssm = ssm
        self._send_client = send_client  # retries nothing: see the module's docstring
        self._clock = clock
        self._sends = 0

    def send(self, spec: CommandSpec, dispatch: Dispatch, tag_key: str, tag_values: Sequence[str]) -> str:
        """Send one dispatch; returns the command id. Errors that remain propagate."""
        self._sends += 1
        suffix = f" send {self._sends}"
        request: SendCommandRequestTypeDef = {
            "DocumentName": spec.document_name,
            "DocumentVersion": spec.document_version,
            "Parameters": {name: [value] for name, value in spec.parameters.items()},
            "TimeoutSeconds": spec.delivery_timeout_seconds,
            "Comment": spec.comment[: COMMENT_LIMIT - len(suffix)] + suffix,
            "MaxConcurrency": dispatch.max_concurrency,
            "MaxErrors": dispatch.max_errors,
        }
        if dispatch.by_tag:
            request["Targets"] = [{"Key": f"tag:{tag_key}", "Values": list(tag_values)}]
        else:
            request["InstanceIds"] = list(dispatch.instance_ids)
        if spec.output_log_group:
            request["CloudWatchOutputConfig"] = {
                "CloudWatchLogGroupName": spec.output_log_group,
                "CloudWatchOutputEnabled": True,
            }
        since = self._clock.now() - LOOKBACK
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return self._send_client.send_command(**request)["Command"].get("CommandId", "")
            except (ClientError, BotoCoreError) as error:
                doubt = _send_doubt(error)
                if doubt is None or (doubt == "not_started" and attempt == SEND_ATTEMPTS):
                    raise
                # Back off; before a lookup this also gives a command that did start time to be listed.
                self._clock.sleep(SEND_BACKOFF_SECONDS * 2 ** (attempt - 1))
                if doubt == "maybe_started":
                    try:
                        started = self._sent_command(spec.document_name, request["Comment"], since)
                    except (ClientError, BotoCoreError):
                        raise error from None  # unknown whether it started: never risk a second one
                    if started:
                        return started
                if attempt == SEND_ATTEMPTS:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _sent_command(self, document_name: str, comment: str, since: datetime) -> str | None:
        """The id of the command this send started, if it did."""
        paginator = self._ssm.get_paginator("list_commands")
        pages = paginator.paginate(
            Filters=[
                {"key": "InvokedAfter", "value": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
                {"key": "DocumentName", "value": document_name},
            ],
            PaginationConfig={"PageSize": LIST_PAGE_SIZE},
        )
        for page in pages:
            for command in page.get("Commands", []):
                if command.get("Comment") == comment:
                    return command.get("CommandId", "")
        return None

    def progress(self, command_id: str) -> CommandProgress:
        """The command's overall status and how many of its invocations have finished."""
        commands = self._ssm.list_commands(CommandId=command_id).get("Commands", [])
        command = commands[0] if commands else {}
        return CommandProgress(
            status=command.get("Status", ""),
            target_count=command.get("TargetCount", 0),
            completed_count=command.get("CompletedCount", 0),
        )

    def invocations(self, command_id: str) -> list[Invocation]:
        paginator = self._ssm.get_paginator("list_command_invocations")
        pages = paginator.paginate(
            CommandId=command_id, Details=True, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
        )
        return [
            _invocation(command_id, item) for page in pages for item in page.get("CommandInvocations", [])
        ]

    def standard_output(self, command_id: str, instance_id: str) -> str:
        response = self._ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        return response.get("StandardOutputContent", "")


def _invocation(command_id: str, item: CommandInvocationTypeDef) -> Invocation:
    plugins = item.get("CommandPlugins", [])
    codes = [plugin["ResponseCode"] for plugin in plugins if "ResponseCode" in plugin]
    return Invocation(
        command_id=command_id,
        instance_id=item.get("InstanceId", ""),
        instance_name=item.get("InstanceName", ""),
        status=item.get("Status", ""),
        status_details=item.get("StatusDetails", ""),
        output="\n".join(plugin.get("Output", "") for plugin in plugins),
        # A failing step decides; otherwise any code there is.
        response_code=next((code for code in codes if code != 0), codes[0] if codes else None),
    )


def _send_doubt(error: ClientError | BotoCoreError) -> Literal["not_started", "maybe_started"] | None:
    """Whether a failed SendCommand may be retried: None when it was refused for good."""
    if isinstance(error, ClientError):
        if error.response.get("Error", {}).get("Code", "") in THROTTLING_CODES:
            return "not_started"
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return "maybe_started" if status >= 500 else None
    if isinstance(error, NoConnectionError):  # the request never reached the service
        return "not_started"
    if isinstance(error, HTTPClientError):  # sent, answer lost (read timeout, connection closed)
        return "maybe_started"
    return None
