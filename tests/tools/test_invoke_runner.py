"""`make invoke` against stubbed CloudFormation and Lambda (real boto3 clients, Stubber)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tools import invoke_runner

PROJECT_ROOT = Path(__file__).resolve().parents[2]

REPORT = {
    "run_id": "r-1",
    "action": "check",
    "dry_run": False,
    "source": "manual",
    "started_at": "2026-11-27T10:00:00Z",
    "finished_at": "2026-11-27T10:01:00Z",
    "summary": {"total": 2, "succeeded": 1, "changed": 0, "unchanged": 1, "failed": 0, "unreachable": 1,
                "skipped": 0, "pending": 0},
    "instances": [
        {"instance_id": "i-0123456789abcdef0", "name": "web-1", "status": "succeeded", "outcome": "unchanged",
         "reason": "ok", "detail": {}},
        {"instance_id": "i-0123456789abcdef1", "name": None, "status": "unreachable", "outcome": None,
         "reason": "connection_lost", "detail": {}},
    ],
    "command_ids": ["c-1"],
}  # fmt: skip


def _body(payload: Any) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


class FakeSession:
    def __init__(self) -> None:
        self.cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        self.lambda_ = boto3.client("lambda", region_name="eu-west-1")

    def client(self, name: str, config: object = None) -> Any:
        return self.cloudformation if name == "cloudformation" else self.lambda_


RUNNER_OUTPUTS = [{"OutputKey": "RunnerFunctionName", "OutputValue": "runner-fn"}]


def _stack_described(
    stubber: Stubber,
    outputs: list[dict[str, str]] = RUNNER_OUTPUTS,
    *,
    name: str = "EcrFleetAuth",
    **expected: str,
) -> None:
    """CloudFormation's DescribeStacks answer for the stack ``name`` with ``outputs`` (``expected``: the
    request's parameters, checked against the model)."""
    stubber.add_response(
        "describe_stacks",
        {"Stacks": [{"StackName": name, "CreationTime": "2026-11-27T00:00:00Z",
                     "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]},
        expected or None,
    )  # fmt: skip


def _stub(session: FakeSession, payload: Any, *, function_error: bool = False) -> tuple[Stubber, Stubber]:
    cloudformation, lambda_ = Stubber(session.cloudformation), Stubber(session.lambda_)
    _stack_described(cloudformation, StackName="EcrFleetAuth")
    response: dict[str, Any] = {"StatusCode": 200, "Payload": _body(payload)}
    if function_error:
        response["FunctionError"] = "Unhandled"
    lambda_.add_response(
        "invoke",
        response,
        {
            "FunctionName": "runner-fn",
            "InvocationType": "RequestResponse",
            "Payload": json.dumps({"action": "check", "instance_ids": ["i-0123456789abcdef0"]}).encode(),
        },
    )
    cloudformation.activate()
    lambda_.activate()
    return cloudformation, lambda_


def test_prints_a_table_and_fails_when_an_instance_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    stubs = _stub(session, REPORT)
    status = invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session)
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()
    assert "total=2" in lines[1] and "unreachable=1" in lines[1]
    header = next(line for line in lines if line.startswith("INSTANCE_ID"))
    row = next(line for line in lines if line.startswith("i-0123456789abcdef1"))
    assert header.index("STATUS") == row.index("unreachable")
    assert "connection_lost" in row
    for stub in stubs:
        stub.assert_no_pending_responses()


def test_an_organization_report_shows_where_each_instance_is_and_fails_on_an_unreached_pair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    succeeded = {**REPORT["instances"][0], "account_id": "111111111111", "region": "us-east-1"}  # type: ignore[index]
    summary = {**REPORT["summary"], "total": 1, "succeeded": 1, "unreachable": 0}  # type: ignore[dict-item]
    report = {
        **REPORT,
        "summary": {**summary, "accounts": {"111111111111": summary, "222222222222": {"total": 0}}},
        "instances": [succeeded],
        "targets": [
            {"account_id": "111111111111", "region": "us-east-1", "status": "reached", "reason": None,
             "detail": {}},
            {"account_id": "222222222222", "region": "us-east-1", "status": "unreachable",
             "reason": "role_not_assumable", "detail": {"error": "AccessDenied"}},
        ],
    }  # fmt: skip
    session = FakeSession()
    _stub(session, report)
    status = invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session)
    lines = capsys.readouterr().out.splitlines()
    assert status == 1  # every instance succeeded, but an account-region was not reached
    assert "accounts=" not in lines[1]
    header = next(line for line in lines if line.startswith("ACCOUNT_ID"))
    row = next(line for line in lines if line.startswith("111111111111"))
    assert header.index("REGION") == row.index("us-east-1")
    assert "  222222222222/us-east-1: role_not_assumable" in lines


def test_runner_rejection_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    _stub(session, {"errorMessage": "invalid event: action: not one of ...", "errorType": "InvalidEvent"},
          function_error=True)  # fmt: skip
    status = invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session)
    assert status == 1
    assert "the runner rejected the event: invalid event: action" in capsys.readouterr().err


@pytest.mark.parametrize(
    "payload",
    [
        # Lambda's answer when the function ran out of time, in its newer and older forms.
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: 1 Error: Task timed out after 900.00 seconds",
        },
        {"errorMessage": "2026-11-27T10:15:00.000Z 1 Task timed out after 900.00 seconds"},
    ],
)
def test_a_runner_that_timed_out_is_not_said_to_have_rejected_the_run(
    capsys: pytest.CaptureFixture[str], payload: dict[str, str]
) -> None:
    session = FakeSession()
    _stub(session, payload, function_error=True)
    status = invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session)
    (line,) = capsys.readouterr().err.splitlines()
    assert status == 1
    assert line.startswith("error: the runner failed: it timed out (")
    assert "rejected" not in line


def test_a_runner_crash_is_a_failure_not_a_rejection(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    _stub(
        session,
        {"errorType": "SettingsError", "errorMessage": "invalid runner environment"},
        function_error=True,
    )
    assert (
        invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session) == 1
    )
    assert capsys.readouterr().err == "error: the runner failed: SettingsError: invalid runner environment\n"


def _stub_throttled(session: FakeSession, reason: str | None) -> None:
    cloudformation, lambda_ = Stubber(session.cloudformation), Stubber(session.lambda_)
    _stack_described(cloudformation)
    modeled = {"Type": "User", **({"Reason": reason} if reason else {})}
    lambda_.add_client_error(
        "invoke", "TooManyRequestsException", "Rate Exceeded.", 429, modeled_fields=modeled
    )
    cloudformation.activate()
    lambda_.activate()


def test_a_throttled_invocation_says_a_run_is_in_progress_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = FakeSession()
    _stub_throttled(session, "ReservedFunctionConcurrentInvocationLimitExceeded")
    status = invoke_runner.main(["--action", "check"], session=session)
    captured = capsys.readouterr()
    assert status == invoke_runner.EXIT_THROTTLED == 3
    assert captured.err == "a run is in progress; try again when it ends\n"
    assert captured.out == ""


def test_account_wide_throttling_is_told_apart(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    _stub_throttled(session, "ConcurrentInvocationLimitExceeded")
    assert invoke_runner.main([], session=session) == invoke_runner.EXIT_THROTTLED
    (line,) = capsys.readouterr().err.splitlines()
    assert "ConcurrentInvocationLimitExceeded" in line


def test_a_failed_run_prints_its_error_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    failed = {**REPORT, "instances": [], "error": {"reason": "run_failed", "code": "ThrottlingException",
                                                   "message": "Rate exceeded"}}  # fmt: skip
    _stub(session, failed)
    status = invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session)
    assert status == 1
    assert "run failed: ThrottlingException: Rate exceeded" in capsys.readouterr().out


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, region or profile from anywhere (nor the instance metadata service)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_configuration")
def test_no_credentials_is_one_line_and_its_own_status(capsys: pytest.CaptureFixture[str]) -> None:
    status = invoke_runner.main(["--region", "eu-west-1"])
    captured = capsys.readouterr()
    assert status == invoke_runner.EXIT_NOT_INVOKED == 4
    assert (
        captured.err
        == "error: no AWS credentials found: configure the AWS CLI (aws configure, AWS_PROFILE) first\n"
    )
    assert captured.out == ""


@pytest.mark.usefixtures("no_aws_configuration")
def test_no_region_is_one_line_and_its_own_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke_runner.main([]) == invoke_runner.EXIT_NOT_INVOKED
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no AWS region")


def test_a_missing_stack_is_one_line_and_its_own_status(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    cloudformation = Stubber(session.cloudformation)
    cloudformation.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id Nope does not exist", 400
    )
    cloudformation.activate()
    status = invoke_runner.main(["--stack", "Nope"], session=session)
    assert status == invoke_runner.EXIT_NOT_INVOKED
    assert capsys.readouterr().err == (
        "error: no stack Nope in the default region: give STACK=<name> and REGION=<region> (make)\n"
    )


def test_make_invoke_exits_2_and_shows_the_tools_status(tmp_path: Path) -> None:
    # GNU make exits 2 whenever a recipe fails; its "Error N" line carries the tool's status.
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "invoke", "STACK=Nope", "REGION=eu-west-1"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "error: no AWS credentials found" in done.stderr
    assert re.search(r"\[Makefile:\d+: invoke\] Error 4$", done.stderr.strip())


def test_missing_output_names_the_stack() -> None:
    client = boto3.client("cloudformation", region_name="eu-west-1")
    with Stubber(client) as stub:
        _stack_described(stub, [], name="Other")
        with pytest.raises(invoke_runner.InvokeError, match="stack Other has no output RunnerFunctionName"):
            invoke_runner.runner_function_name(client, "Other")


def test_event_from_arguments() -> None:
    assert invoke_runner.build_event("check", True, "i-1, i-2,") == {
        "action": "check",
        "dry_run": True,
        "instance_ids": ["i-1", "i-2"],
    }
    assert invoke_runner.build_event(None, False, None) == {}


# --- an organization's stack: through its state machine (issue 23) ---------------------------------

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:EcrFleetAuth-OrganizationRun"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:EcrFleetAuth-OrganizationRun:manual-1"
ORGANIZATION_OUTPUTS = [
    {"OutputKey": "RunnerFunctionName", "OutputValue": "runner-fn"},
    {"OutputKey": "OrganizationRunStateMachineArn", "OutputValue": MACHINE},
]


class OrganizationSession(FakeSession):
    def __init__(self) -> None:
        super().__init__()
        self.stepfunctions = boto3.client("stepfunctions", region_name="eu-west-1")
        self.s3 = boto3.client("s3", region_name="eu-west-1")

    def client(self, name: str, config: object = None) -> Any:
        return {"stepfunctions": self.stepfunctions, "s3": self.s3}.get(name) or super().client(name, config)


def _stub_execution(
    session: OrganizationSession, described: dict[str, Any], report: Any = None
) -> list[Stubber]:
    """Step Functions API reference: StartExecution (name, input), DescribeExecution (status, output,
    error, cause); the merged report in the runs bucket (GetObject). Stubber checks each request
    against the services' models."""
    cloudformation, stepfunctions, s3 = (
        Stubber(c) for c in (session.cloudformation, session.stepfunctions, session.s3)
    )
    _stack_described(cloudformation, ORGANIZATION_OUTPUTS, StackName="EcrFleetAuth")
    started = {"executionArn": EXECUTION, "startDate": "2026-11-27T10:00:00Z"}
    expected_start = {"stateMachineArn": MACHINE, "name": ANY, "input": json.dumps({"action": "check"})}
    stepfunctions.add_response("start_execution", started, expected_start)
    running = {
        "executionArn": EXECUTION,
        "stateMachineArn": MACHINE,
        "status": "RUNNING",
        "startDate": "2026-11-27T10:00:00Z",
    }
    stepfunctions.add_response("describe_execution", running, {"executionArn": EXECUTION})
    stepfunctions.add_response("describe_execution", {**running, **described}, {"executionArn": EXECUTION})
    if report is not None:
        s3.add_response(
            "get_object",
            {"Body": _body(report)},
            {"Bucket": "runs-bucket", "Key": "runs/manual-1/report.json"},
        )
    for stub in (cloudformation, stepfunctions, s3):
        stub.activate()
    return [cloudformation, stepfunctions, s3]


def test_an_organization_wide_run_goes_through_the_state_machine_and_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invoke_runner, "EXECUTION_POLL_SECONDS", 0.0)
    session = OrganizationSession()
    output = {"run_id": "r-1", "report": {"bucket": "runs-bucket", "key": "runs/manual-1/report.json"}}
    # A merged report lists the instances that need attention (instances_not_succeeded), not all.
    pending = {**REPORT["instances"][1], "status": "pending", "reason": "instance_busy"}  # type: ignore[index]
    report: dict[str, Any] = {key: value for key, value in REPORT.items() if key != "instances"}
    report["instances_not_succeeded"], report["instances_not_logged"] = [pending], 0
    report["summary"] = {**REPORT["summary"], "unreachable": 0, "pending": 1}  # type: ignore[dict-item]
    stubs = _stub_execution(session, {"status": "SUCCEEDED", "output": json.dumps(output)}, report)

    status = invoke_runner.main(["--action", "check"], session=session)

    out, err = capsys.readouterr()
    assert status == 1, (out, err)  # an instance pending
    assert out.splitlines()[-1] == f"ran through the state machine: execution {EXECUTION}", err
    row = next(line for line in out.splitlines() if line.startswith("i-0123456789abcdef1"))
    assert "pending" in row and "instance_busy" in row and "total=2" in out
    for stub in stubs:
        stub.assert_no_pending_responses()


def test_a_failed_execution_names_itself_and_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invoke_runner, "EXECUTION_POLL_SECONDS", 0.0)
    session = OrganizationSession()
    _stub_execution(session, {"status": "FAILED", "error": "RuntimeError", "cause": "the merge failed"})

    status = invoke_runner.main(["--action", "check"], session=session)

    err = capsys.readouterr().err
    assert status == 1
    assert f"error: execution {EXECUTION} ended FAILED: RuntimeError: the merge failed" in err


def test_the_way_a_run_goes() -> None:
    """A run narrowed to instances is one invocation (it reaches a few); VIA forces either way; a
    single-account stack has no state machine, and asking for it says so."""
    with_machine = {"RunnerFunctionName": "fn", "OrganizationRunStateMachineArn": MACHINE}
    choose = invoke_runner.choose_way
    assert choose("auto", with_machine, {}, "S") == MACHINE
    assert choose("auto", with_machine, {"instance_ids": ["i-1"]}, "S") is None
    assert choose("runner", with_machine, {}, "S") is None
    assert choose("state-machine", with_machine, {"instance_ids": ["i-1"]}, "S") == MACHINE
    assert choose("auto", {"RunnerFunctionName": "fn"}, {}, "S") is None
    with pytest.raises(invoke_runner.InvokeError, match="stack S has no state machine"):
        choose("state-machine", {"RunnerFunctionName": "fn"}, {}, "S")


def test_a_single_account_run_says_it_is_one_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession()
    _stub(session, REPORT)
    invoke_runner.main(["--action", "check", "--instances", "i-0123456789abcdef0"], session=session)
    assert capsys.readouterr().out.splitlines()[-1] == "ran one invocation of the runner: runner-fn"
