"""`make invoke`: run the deployed runner once and print its report as a table.

    make invoke ACTION=check DRY_RUN=1 [INSTANCES=i-...,i-...] [STACK=EcrFleetAuth] [REGION=eu-west-1]

Finds the function through the stack's `RunnerFunctionName` output, invokes it
synchronously with an event built from the arguments (the runner validates it),
and prints the summary and one row per instance.

An organization's stack has a state machine too (its `OrganizationRunStateMachineArn`
output): a run not narrowed to instances then goes through it, as the schedule's does
(StartExecution, DescribeExecution until it ends, the merged report read from the runs
bucket), so that it is not held to one invocation's ceiling. `VIA=runner` (--via runner)
invokes the function once instead; `VIA=state-machine` insists on the state machine. The
last line says which way the run went; a failed execution's error names it. So that it serves in scripts,
run it directly (`.venv/bin/python -m tools.invoke_runner --help`; make turns every
failure into its own exit status 2):

  exit 0  every instance succeeded (or was skipped) and every account-region was reached,
          or a dry run planned
  exit 1  an instance did not succeed, the run failed, the runner failed (an error,
          a timeout), or the runner rejected the event
  exit 2  bad arguments
  exit 3  Lambda throttled the invocation: a run is in progress (reservedConcurrency
          reached) or the account's concurrency is used up; try again later
  exit 4  the runner could not be invoked: no AWS credentials or region, no such
          stack, or an AWS error (one line says which)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

FUNCTION_OUTPUT = "RunnerFunctionName"
STATE_MACHINE_OUTPUT = "OrganizationRunStateMachineArn"
VIA_AUTO, VIA_RUNNER, VIA_STATE_MACHINE = "auto", "runner", "state-machine"
# The state machine's own TimeoutSeconds is 12 hours; DescribeExecution every few seconds until then.
EXECUTION_POLL_SECONDS = 5.0
EXECUTION_WAIT_SECONDS = 12 * 3600 + 60
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
WAY = "_way"  # which way the run went, said after the table
# The runner may wait up to its 15-minute timeout; the SDK must wait a little longer.
INVOKE_CONFIG = Config(read_timeout=960, retries={"max_attempts": 0})
COLUMNS = ("instance_id", "name", "status", "outcome", "reason")
# An organization's report (one with ``targets``) says where each instance is too.
ORGANIZATION_COLUMNS = ("account_id", "region", *COLUMNS)
EXIT_NOT_ALL_SUCCEEDED = 1
EXIT_THROTTLED = 3
EXIT_NOT_INVOKED = 4
# How Lambda reports an invocation that ran out of time (FunctionError "Unhandled").
TIMED_OUT_TYPE = "Sandbox.Timedout"
TIMED_OUT_MESSAGE = "Task timed out"
# The runner raises this for an event it rejects (lambda_src/ecr_fleet_auth/shared/events.py).
REJECTED_TYPE = "InvalidEvent"
# Lambda's TooManyRequestsException says why in Reason; this one means our own reservation.
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"


class InvokeError(RuntimeError):
    pass


class NotInvoked(InvokeError):
    """The runner was never reached: credentials, region, stack or an AWS error."""

    @classmethod
    def from_error(cls, error: ClientError | BotoCoreError, stack: str, region: str | None) -> NotInvoked:
        where = f"region {region}" if region else "the default region"
        if isinstance(error, NoCredentialsError):
            return cls("no AWS credentials found: configure the AWS CLI (aws configure, AWS_PROFILE) first")
        if isinstance(error, NoRegionError):
            return cls("no AWS region: give REGION=<region> (make) or --region, or set AWS_REGION")
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code == "ValidationError" and "does not exist" in message:
                return cls(f"no stack {stack} in {where}: give STACK=<name> and REGION=<region> (make)")
            return cls(f"{code or 'AWS error'}: {message or error}")
        return cls(str(error))


def function_error(payload: Any) -> InvokeError:
    """What a failed invocation (FunctionError) says: a rejected event, a timeout, or another failure."""
    fields = payload if isinstance(payload, dict) else {}
    kind = str(fields.get("errorType", ""))
    message = " ".join(str(fields.get("errorMessage", payload)).split())
    if kind == REJECTED_TYPE:
        return InvokeError(f"the runner rejected the event: {message}")
    if kind == TIMED_OUT_TYPE or TIMED_OUT_MESSAGE in message:
        return InvokeError(
            f"the runner failed: it timed out ({message}); what it sent is in Run Command history"
        )
    return InvokeError(f"the runner failed: {kind or 'error'}: {message}")


class Throttled(InvokeError):
    """Lambda refused to start the runner now (TooManyRequestsException)."""

    @classmethod
    def from_error(cls, error: ClientError) -> Throttled:
        reason = str(error.response.get("Reason") or error.response.get("Error", {}).get("Reason") or "")
        if reason in ("", RESERVED_LIMIT):
            return cls("a run is in progress; try again when it ends")
        return cls(f"Lambda is throttling the runner ({reason}); try again in a few minutes")


def build_event(action: str | None, dry_run: bool, instances: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {}
    if action:
        event["action"] = action
    if dry_run:
        event["dry_run"] = True
    if instances:
        event["instance_ids"] = [i.strip() for i in instances.split(",") if i.strip()]
    return event


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: str(output["OutputValue"]) for output in stacks[0].get("Outputs", [])}


def runner_function_name(cloudformation: Any, stack_name: str) -> str:
    outputs = stack_outputs(cloudformation, stack_name)
    if FUNCTION_OUTPUT in outputs:
        return outputs[FUNCTION_OUTPUT]
    raise InvokeError(f"stack {stack_name} has no output {FUNCTION_OUTPUT}; is it an ecr-fleet-auth stack?")


def choose_way(via: str, outputs: dict[str, str], event: dict[str, Any], stack_name: str) -> str | None:
    """The state machine's ARN when the run goes through it, else None (one invocation of the runner)."""
    machine = outputs.get(STATE_MACHINE_OUTPUT)
    if via == VIA_STATE_MACHINE and machine is None:
        raise InvokeError(
            f"stack {stack_name} has no state machine (output {STATE_MACHINE_OUTPUT}): it is deployed "
            "without organization mode, where one invocation runs the account; leave VIA unset"
        )
    if via == VIA_RUNNER or machine is None:
        return None
    if via == VIA_AUTO and event.get("instance_ids"):
        return None  # a few instances: one invocation reaches them
    return machine


def start_and_wait(
    stepfunctions: Any,
    s3: Any,
    state_machine_arn: str,
    event: dict[str, Any],
) -> dict[str, Any]:
    """Start an execution with ``event`` as the run (what the schedule gives it), wait for its end, and
    read the merged report its output points at."""
    name = "manual-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.time_ns() % 10**6:06d}"
    started = stepfunctions.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(event)
    )
    arn = started["executionArn"]
    waited = 0.0
    while True:
        described = stepfunctions.describe_execution(executionArn=arn)
        if described["status"] in ENDED:
            break
        if waited >= EXECUTION_WAIT_SECONDS:
            raise InvokeError(f"execution {arn} still {described['status']}; it goes on: see the console")
        time.sleep(EXECUTION_POLL_SECONDS)
        waited += EXECUTION_POLL_SECONDS
    if described["status"] != "SUCCEEDED":
        kind, cause = described.get("error", ""), " ".join(str(described.get("cause", "")).split())
        if kind == REJECTED_TYPE:
            raise InvokeError(f"the runner rejected the event: {cause}")
        raise InvokeError(f"execution {arn} ended {described['status']}: {kind or 'error'}: {cause[:500]}")
    where = json.loads(described["output"])["report"]
    body = s3.get_object(Bucket=where["bucket"], Key=where["key"])["Body"].read()
    report: dict[str, Any] = json.loads(body)
    return {**report, WAY: f"through the state machine: execution {arn}"}


def invoke(lambda_client: Any, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    try:
        response = lambda_client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "TooManyRequestsException":
            raise Throttled.from_error(error) from None
        raise
    payload = json.loads(response["Payload"].read() or b"null")
    if "FunctionError" in response:
        raise function_error(payload)
    if not isinstance(payload, dict):
        raise InvokeError(f"unexpected runner response: {payload!r}")
    return payload


def render(report: dict[str, Any]) -> str:
    summary = report.get("summary", {})
    columns = ORGANIZATION_COLUMNS if "targets" in report else COLUMNS
    lines = [
        f"run {report.get('run_id')}  action={report.get('action')}  dry_run={report.get('dry_run')}"
        f"  {report.get('started_at')} -> {report.get('finished_at')}",
        "  ".join(f"{key}={value}" for key, value in summary.items() if key != "accounts"),
        "",
    ]
    # A merged report (the organization's state machine) lists the instances that need attention only.
    listed = report["instances"] if "instances" in report else report.get("instances_not_succeeded", [])
    rows = [[str(instance.get(column) or "-") for column in columns] for instance in listed]
    widths = [max([len(column), *(len(row[i]) for row in rows)]) for i, column in enumerate(columns)]
    lines.append(
        "  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True))
    )
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )
    unreached = [t for t in report.get("targets", []) if t.get("status") == "unreachable"]
    if unreached:
        lines += ["", "unreachable:"]
        lines += [f"  {t.get('account_id')}/{t.get('region')}: {t.get('reason')}" for t in unreached]
    if report.get("command_ids"):
        lines += ["", "commands: " + ", ".join(report["command_ids"])]
    error = report.get("error")
    if isinstance(error, dict):
        lines += ["", f"run failed: {error.get('code')}: {error.get('message')}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", default="EcrFleetAuth")
    parser.add_argument("--region", default=None)
    parser.add_argument("--action", choices=("refresh", "helper", "check"), default=None)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--instances", default=None, help="comma-separated instance ids (narrows the run)")
    parser.add_argument("--json", action="store_true", help="print the raw report")
    parser.add_argument(
        "--via",
        choices=(VIA_AUTO, VIA_RUNNER, VIA_STATE_MACHINE),
        default=VIA_AUTO,
        help="auto (default): an organization's stack runs through its state machine unless the run is "
        "narrowed to instances; runner: one invocation; state-machine: through the state machine",
    )
    args = parser.parse_args(argv)
    session = session or boto3.session.Session(region_name=args.region)
    try:
        try:
            outputs = stack_outputs(session.client("cloudformation"), args.stack)
            event = build_event(args.action, args.dry_run, args.instances)
            machine = choose_way(args.via, outputs, event, args.stack)
            if machine is not None:
                report = start_and_wait(session.client("stepfunctions"), session.client("s3"), machine, event)
            else:
                if FUNCTION_OUTPUT not in outputs:
                    raise InvokeError(
                        f"stack {args.stack} has no output {FUNCTION_OUTPUT}; is it an ecr-fleet-auth stack?"
                    )
                report = invoke(
                    session.client("lambda", config=INVOKE_CONFIG), outputs[FUNCTION_OUTPUT], event
                )
                report[WAY] = f"one invocation of the runner: {outputs[FUNCTION_OUTPUT]}"
        except (ClientError, BotoCoreError) as error:
            raise NotInvoked.from_error(error, args.stack, getattr(session, "region_name", None)) from None
    except Throttled as busy:
        print(busy, file=sys.stderr)  # the one line, nothing else
        return EXIT_THROTTLED
    except NotInvoked as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_INVOKED
    except InvokeError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_ALL_SUCCEEDED
    way = report.pop(WAY)
    print(json.dumps(report, indent=2) if args.json else f"{render(report)}\n\nran {way}")
    if report.get("error"):
        return EXIT_NOT_ALL_SUCCEEDED
    if report.get("dry_run"):
        return 0
    summary = report.get("summary", {})
    all_done = summary.get("succeeded", 0) + summary.get("skipped", 0) == summary.get("total", 0)
    reached = all(target.get("status") == "reached" for target in report.get("targets", []))
    return 0 if all_done and reached else EXIT_NOT_ALL_SUCCEEDED


if __name__ == "__main__":
    sys.exit(main())
