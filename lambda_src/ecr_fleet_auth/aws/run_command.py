"""Run Command adapter: send a dispatch, poll its command, collect its invocations.

Polling is per command (ListCommands), never per instance; results come from
ListCommandInvocations with ``Details=true`` — the first 2,500 characters of each
instance's output, enough for the agent's single result line — and
GetCommandInvocation (24,000 characters of stdout) only for an instance whose
result line could not be found there.

SendCommand has no idempotency token, so a send is retried here, not by botocore,
and only when the request cannot have started a command (throttled, no connection).
After an answer that leaves it unknown (a 5xx, a lost response) it is never sent
again: the command is looked for in ListCommands by this send's comment, unique per
send. ListCommands is eventually consistent — a command that did start may be missing
from it for a while — so not finding it proves nothing: ``SendUnconfirmed`` tells the
caller to keep looking (the runner looks at every poll until its deadline) and, if it
never shows up, to report the instances ``send_unconfirmed``. Two commands for one
send would run the agent twice; an unconfirmed send at worst leaves a run's outcome
unknown until the next run.

SendCommand with ``InstanceIds`` refuses the whole call when one id is not a valid
target (``InvalidInstanceId``: shutting-down, terminated, agent not registered;
``UnsupportedPlatformType``). Such a refusal started nothing, and the error does not
reliably say which id; ``INSTANCE_ERRORS`` lets the caller recognise it and resend
the others (see ``execution.Execution``).

Before a run sends anything, ``busy_instances`` lists this document's commands that
are still executing and the instances they are still working on, so that two runs
never work on one instance at the same time (the agent's own lock is the last line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnectionError

from ..shared.clock import Clock

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
# SendCommand errors that concern particular instances of an InstanceIds call; nothing started.
INSTANCE_ERRORS = frozenset({"InvalidInstanceId", "UnsupportedPlatformType"})
# Errors that may concern particular instances or not: IAM refuses the whole call when one
# instance no longer carries the target tag (the ssm:resourceTag condition), but also when
# the role itself is wrong. Worth one look at the instances' states, not a search by halving.
MAYBE_INSTANCE_ERRORS = frozenset({"AccessDeniedException"})


class SendUnconfirmed(Exception):
    """SendCommand's answer was lost and its command has not (yet) been seen: never send it again."""

    def __init__(self, error: ClientError | BotoCoreError, comment: str, since: datetime) -> None:
        super().__init__(str(error))
        self.error, self.comment, self.since = error, comment, since


class Sendable(Protocol):
    """What one SendCommand names: its instances, or the target tag, and its rate budgets.

    The run's planning lays dispatches out (``run.planning.Dispatch`` is one); the adapter reads
    only these, so it knows nothing of lanes or lookups."""

    @property
    def instance_ids(self) -> tuple[str, ...]: ...

    @property
    def by_tag(self) -> bool: ...

    @property
    def max_concurrency(self) -> str: ...

    @property
    def max_errors(self) -> str: ...


@dataclass(frozen=True)
class CommandSpec:
    """What every dispatch of one run sends, apart from its targets and rate budget."""

    document_name: str
    document_version: str
    parameters: Mapping[str, str]
    delivery_timeout_seconds: int
    execution_timeout_seconds: int  # the document's step timeout (the stack sets both from one setting)
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
class SentCommand:
    """A command of the document as ListCommands lists it: when, with what, to whom."""

    command_id: str
    requested_at: datetime
    parameters: Mapping[str, tuple[str, ...]]
    instance_ids: tuple[str, ...]  # empty for a command sent by tag
    by_tag: bool

    def sends(self, parameters: Mapping[str, str]) -> bool:
        """Whether it was sent with exactly these document parameters."""
        return dict(self.parameters) == {name: (value,) for name, value in parameters.items()}


@dataclass(frozen=True)
class CommandProgress:
    status: str
    target_count: int
    completed_count: int
    status_details: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class RunCommand:
    def __init__(self, ssm: SSMClient, send_client: SSMClient, clock: Clock) -> None:
        self._ssm = ssm
        self._send_client = send_client  # retries nothing: see the module's docstring
        self._clock = clock
        self._sends = 0

    def send(self, spec: CommandSpec, dispatch: Sendable, tag_key: str, tag_values: Sequence[str]) -> str:
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
                    found = self.find_sent(spec.document_name, request["Comment"], since)
                    if found:
                        return found
                    raise SendUnconfirmed(error, request["Comment"], since) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def find_sent(self, document_name: str, comment: str, since: datetime) -> str | None:
        """The id of the command a send with ``comment`` started, if ListCommands shows it yet."""
        try:
            return self._sent_command(document_name, comment, since)
        except (ClientError, BotoCoreError):
            return None  # not a "no": look again later

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

    def busy_instances(self, document_name: str, candidates: Sequence[str]) -> dict[str, str]:
        """Which of ``candidates`` a still-executing command of this document is (or will be) on.

        Instance id -> command id. A tag-targeted command whose targets are not resolved yet
        lists no invocation: it is about to reach every tagged instance, so all are busy.
        """
        wanted = set(candidates)
        busy: dict[str, str] = {}
        pages = self._ssm.get_paginator("list_commands").paginate(
            Filters=[
                {"key": "DocumentName", "value": document_name},
                {"key": "ExecutionStage", "value": "Executing"},
            ],
            PaginationConfig={"PageSize": LIST_PAGE_SIZE},
        )
        for page in pages:
            for command in page.get("Commands", []):
                command_id = command.get("CommandId", "")
                invocations = self.invocations(command_id, details=False)
                if invocations:
                    working = {i.instance_id for i in invocations if not i.finished}
                elif command.get("Targets"):
                    working = wanted
                else:
                    working = set(command.get("InstanceIds", []))
                for instance_id in working & wanted:
                    busy.setdefault(instance_id, command_id)
        return busy

    def commands_since(self, document_name: str, since: datetime) -> list[SentCommand]:
        """This document's commands requested at or after ``since``, whatever their status."""
        pages = self._ssm.get_paginator("list_commands").paginate(
            Filters=[
                {"key": "InvokedAfter", "value": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
                {"key": "DocumentName", "value": document_name},
            ],
            PaginationConfig={"PageSize": LIST_PAGE_SIZE},
        )
        return [
            SentCommand(
                command_id=command.get("CommandId", ""),
                requested_at=command.get("RequestedDateTime", since),
                parameters={name: tuple(values) for name, values in command.get("Parameters", {}).items()},
                instance_ids=tuple(command.get("InstanceIds", [])),
                by_tag=bool(command.get("Targets")),
            )
            for page in pages
            for command in page.get("Commands", [])
        ]

    def progress(self, command_id: str) -> CommandProgress:
        """The command's overall status and how many of its invocations have finished."""
        commands = self._ssm.list_commands(CommandId=command_id).get("Commands", [])
        command = commands[0] if commands else {}
        return CommandProgress(
            status=command.get("Status", ""),
            target_count=command.get("TargetCount", 0),
            completed_count=command.get("CompletedCount", 0),
            status_details=command.get("StatusDetails", ""),
        )

    def invocations(self, command_id: str, *, details: bool = True) -> list[Invocation]:
        paginator = self._ssm.get_paginator("list_command_invocations")
        pages = paginator.paginate(
            CommandId=command_id, Details=details, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
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
