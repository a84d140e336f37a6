"""An organization run beyond one invocation (issue 23), on a real Step Functions engine.

The stack synthesized with organization context gives the state machine; its definition, references
resolved (the runner's ARN, the runs bucket), is created as it is in moto 5.2.5's Step Functions with
execution switched on (``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``), whose
Amazon States Language interpreter (``moto/stepfunctions/parser``, from LocalStack) runs it: the Pass,
the plan Task, the Distributed Map reading its items from moto's S3 (``ItemReader`` ``s3:getObject``),
each child's Task and Catch, the merge. Every Lambda task reaches the real handler (the asset's
``handler.handler``, Lambda's context on the simulated clock) through ``localfleet.stepfunctions``'s
``LambdaTasks``, which answers Invoke as Lambda does (Invoke API reference; Lambda Developer Guide,
"AWS Lambda function errors in Python": ``X-Amz-Function-Error: Unhandled``, ``errorType``); the
children take turns on simulated time (``SimulatedTimeline``). The organization behind them is
``SimulatedOrganization``, as in tests/runner/run/test_organization.py.

Step Functions Developer Guide, "Distributed Map state" (MaxConcurrency, ItemReader, ItemSelector and
``$$.Map.Item``), "Handling errors in Step Functions workflows" (a Catch's ResultPath keeps the input
with the error's ``Error`` and ``Cause``); S3 User Guide, "Preventing object overwrites with
conditional writes" (``If-None-Match: *``, 412 Precondition Failed).
"""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from ecr_fleet_auth.shared import contract
from localfleet.hosts.canned_agent import CannedRun
from localfleet.stepfunctions import Unhandled, runner_may_list
from localfleet.synthesized_stack import resources
from tests.support.organization_world import (
    HOME,
    MEMBERS,
    OTHER_REGION,
    RUN,
    TAGS,
    OrganizationStack,
    emf_documents,
)
from tests.support.organization_world import StateMachineRun as Run
from tests.support.runner_world import REGION


def refuse_report_writes(session: boto3.Session, batch: int) -> list[str]:
    """S3 refuses the runner's PutObject of batch ``batch``'s report, 403 AccessDenied (as a bucket policy
    or an SCP would): that child runs its pairs, then fails before its report exists. The keys refused.

    Answered at ``before-call``, which botocore takes as the call's answer without sending anything
    (moto's stubber, at ``before-send``, would otherwise store the object while the refusal is read)."""
    refused: list[str] = []

    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        key = unquote(urlsplit(params["url"]).path)
        if not key.endswith(f"/reports/{batch:05d}.json.gz"):
            return None
        refused.append(key)
        error = {"Code": "AccessDenied", "Message": "Access Denied"}
        answer = AWSResponse(params["url"], 403, HTTPHeaders(), None)
        return answer, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}

    session.events.register("before-call.s3.PutObject", refuse)
    return refused


def test_an_organization_runs_in_children_and_a_failed_child_has_its_pairs_reported(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = refuse_report_writes(run.session, batch=1)

    described = run.machine.run(RUN, name="scheduled-1")

    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    report = run.machine.report(described)
    # Three children, one invocation each; the plan and the merge once.
    invoked = [event[contract.STEP_FIELD] for _, event in run.machine.lambda_tasks.invocations]
    assert invoked == ["plan", "child", "child", "child", "merge"]
    assert run.machine.timeline.children == 3
    assert refused, "the second child wrote no report"
    # Nothing lost: batch 1's pairs (25 accounts, both regions) are reported, naming its child execution.
    failed = [t for t in report["targets"] if t["reason"] == "child_run_failed"]
    assert len(failed) == 50 and all(t["status"] == "unreachable" for t in failed)
    assert {t["detail"]["batch"] for t in failed} == {1}
    assert all(t["detail"]["error"] == "AccessDenied" for t in failed)  # the Python runtime's errorType
    assert all(t["detail"]["execution"].startswith("arn:aws:states:") for t in failed)
    reached = [t for t in report["targets"] if t["status"] == "reached"]
    assert len(reached) == 103 - 50
    assert {(t["account_id"], t["region"]) for t in report["targets"]} == {(HOME, REGION)} | {
        (account, region) for account in MEMBERS for region in (REGION, OTHER_REGION)
    }
    # ... and the run failed, so RunsFailed says so and the notification names the child.
    assert report["error"]["reason"] == "run_failed" and report["error"]["code"] == "AccessDenied"
    assert "batch 1 (50 pairs" in report["error"]["message"]
    assert output["error"] == report["error"]
    # The instances of the children that reported: every one succeeded, counted once.
    assert report["summary"]["total"] == report["summary"]["succeeded"] == 53
    assert output["summary"]["succeeded"] == 53 and output["targets_unreachable"] == 50
    # No pair commanded twice in one run (the failed child's pairs were commanded once, before it failed).
    sends = {
        (account, region): len(run.sent(account, region))
        for account in [HOME, *MEMBERS]
        for region in (REGION, OTHER_REGION)
        if (account, region) != (HOME, OTHER_REGION)
    }
    assert set(sends.values()) == {1}
    # One notification, from the merge; the children published nothing.
    (mail,) = run.notifications()
    assert mail["Subject"].startswith("ecr-fleet-auth refresh: run failed (AccessDenied)")
    assert "State machine execution: arn:aws:states:" in mail["Message"]
    documents = emf_documents(capsys.readouterr().out)
    runs = [d for d in documents if contract.RUNS_FAILED_METRIC in d]
    assert [d[contract.RUNS_FAILED_METRIC] for d in runs] == [[1.0]]
    assert runs[0][contract.status_metric_name("succeeded")] == [53.0]
    # The state carried keys and counts: well under Step Functions' 256 KiB.
    assert run.machine.figures.largest_payload < 16 * 1024
    # The children's reports are in the bucket, gzipped JSON; the merged one lists them.
    (part, *_) = report["parts"]
    body = run.machine.s3.get_object(Bucket=run.machine.bucket, Key=part)["Body"].read()
    assert json.loads(gzip.decompress(body))["summary"]["total"] > 0
    assert len(report["parts"]) == 2


def test_a_step_event_from_anywhere_else_is_refused_before_anything_is_read(run: Run) -> None:
    """A manual invocation claiming a step (a console test event, say) names no running execution of the
    stack's state machine: rejected, counted as EventsRejected, nothing read or sent."""
    runner = run.runner
    execution = f"arn:aws:states:{REGION}:{HOME}:execution:{contract.state_machine_name('EcrFleetAuth')}:x"
    event = {contract.STEP_FIELD: "plan", "execution": execution, "bucket": run.machine.bucket, "run": {}}

    with pytest.raises(Exception, match="only the stack's state machine sends these events") as refused:
        runner.invoke(event)

    assert type(refused.value).__name__ == "InvalidEvent"
    assert not run.machine.s3.list_objects_v2(Bucket=run.machine.bucket).get("Contents")
    assert all(not pair.ssm_endpoint.calls for pair in run.org.pairs.values())


# --- nothing lost, nothing twice (issue 23) --------------------------------------------------------


def wrap_runner(run: Run, around: Any) -> None:
    """Every Lambda task of the execution goes through ``around(invoke, event)`` first."""
    (name,) = run.machine.lambda_tasks.functions
    invoke = run.machine.lambda_tasks.functions[name]
    run.machine.lambda_tasks.functions[name] = lambda event: around(invoke, event)


def is_child(event: Any, batch: int) -> bool:
    return bool(event.get(contract.STEP_FIELD) == "child" and event.get("batch") == batch)


def test_a_child_that_times_out_has_its_pairs_reported_with_its_own_reason(run: Run) -> None:
    """Lambda Developer Guide, "Configure Lambda function timeout" and "AWS Lambda function errors":
    an invocation that runs past its timeout is stopped and Invoke answers ``X-Amz-Function-Error:
    Unhandled`` with ``errorType`` ``Sandbox.Timedout`` ("Task timed out after 900.00 seconds"); Step
    Functions makes the errorType the state's Error, which the child's Catch (States.ALL) records. The
    batch's pairs are reported with that error and the child's execution, none dropped, none commanded."""

    def time_out_batch_2(invoke: Any, event: Any) -> Any:
        if is_child(event, 2):
            raise Unhandled("Sandbox.Timedout", "RequestId: 1 Error: Task timed out after 900.00 seconds")
        return invoke(event)

    wrap_runner(run, time_out_batch_2)

    described = run.machine.run(RUN, name="scheduled-timeout")

    assert described["status"] == "SUCCEEDED", described
    report = run.machine.report(described)
    failed = [t for t in report["targets"] if t["reason"] == "child_run_failed"]
    # Batch 2: the last two accounts, both regions (the first holds the home pair and 24 accounts, the
    # second 25: 50 pairs a child at wait_seconds 60, whole accounts only).
    assert {(t["account_id"], t["region"]) for t in failed} == {
        (account, region) for account in MEMBERS[-2:] for region in (REGION, OTHER_REGION)
    }
    assert all(t["detail"]["error"] == "Sandbox.Timedout" and t["detail"]["batch"] == 2 for t in failed)
    assert all(t["detail"]["execution"].startswith("arn:aws:states:") for t in failed)
    assert not [
        run.sent(t["account_id"], t["region"]) for t in failed if run.sent(t["account_id"], t["region"])
    ]
    assert len(report["targets"]) == 103, "every pair of the plan is in the report"
    assert report["error"]["code"] == "Sandbox.Timedout"
    (mail,) = run.notifications()
    assert "run failed (Sandbox.Timedout)" in mail["Subject"]


def test_a_child_invoked_twice_commands_its_pairs_once(run: Run) -> None:
    """Lambda and Step Functions deliver at least once (Step Functions Developer Guide, "Handling
    errors": a retried Task invokes its function again; Lambda Developer Guide, "Invoking functions":
    the same request may arrive twice). The second invocation of a batch finds it claimed (S3 User
    Guide, conditional writes, ``If-None-Match: *``) and sends nothing; the merge reads the first's report."""
    second: list[Any] = []

    def deliver_batch_0_twice(invoke: Any, event: Any) -> Any:
        first = invoke(event)
        if is_child(event, 0):
            second.append(invoke(event))
            return second[-1]  # the Map keeps the later answer: harsher than keeping the first's
        return first

    wrap_runner(run, deliver_batch_0_twice)

    described = run.machine.run(RUN, name="scheduled-twice")

    assert described["status"] == "SUCCEEDED", described
    assert second == [{"batch": 0, "claimed_elsewhere": True}]
    report = run.machine.report(described)
    sends = [len(run.sent(account, region)) for account in MEMBERS for region in (REGION, OTHER_REGION)]
    assert set(sends) == {1}, "every pair commanded once"
    assert len(run.sent(HOME, REGION)) == 1
    assert "error" not in report and report["summary"]["succeeded"] == report["summary"]["total"] == 103
    assert len(report["parts"]) == 3


def test_a_map_that_fails_still_reports_every_pair_and_notifies(run: Run) -> None:
    """Step Functions Developer Guide, "ItemReader": an item source that cannot be read fails the Map
    run (``States.Runtime`` ... NoSuchKey in moto's interpreter; AWS: ``States.ItemReaderFailed``); the
    Map's Catch takes the execution to the merge, which reports every planned pair ``child_run_failed``
    with that error, publishes the failed run once (RunsFailed) and sends one notification."""

    def lose_the_items(invoke: Any, event: Any) -> Any:
        answer = invoke(event)
        if event.get(contract.STEP_FIELD) == "plan":
            run.machine.s3.delete_object(Bucket=run.machine.bucket, Key=answer["items"])
        return answer

    wrap_runner(run, lose_the_items)

    described = run.machine.run(RUN, name="scheduled-no-items")

    assert described["status"] == "SUCCEEDED", described
    report = run.machine.report(described)
    assert run.machine.timeline.children == 0
    assert len(report["targets"]) == 103
    assert {t["reason"] for t in report["targets"]} == {"child_run_failed"}
    assert {t["detail"]["batch"] for t in report["targets"]} == {0, 1, 2}
    assert all(not pair.ssm_endpoint.sent("SendCommand") for pair in run.org.pairs.values())
    assert report["error"]["reason"] == "run_failed"
    (mail,) = run.notifications()
    assert "run failed" in mail["Subject"]


def test_a_merge_that_fails_fails_the_execution_which_runs_failed_counts(run: Run) -> None:
    """When the last step itself fails nothing is left to publish the report: the execution FAILS with
    the merge's error (Step Functions Developer Guide, "Handling errors": an uncaught error fails the
    execution), which Step Functions counts in ``ExecutionsFailed`` (AWS/States, StateMachineArn), one
    of the RunsFailed alarm's metrics (tests/infra/test_organization_stack.py), whose action notifies."""

    def break_the_merge(invoke: Any, event: Any) -> Any:
        if event.get(contract.STEP_FIELD) == "merge":
            raise RuntimeError("the merge could not read the reports")
        return invoke(event)

    wrap_runner(run, break_the_merge)

    described = run.machine.run(RUN, name="scheduled-merge-fails")

    assert described["status"] == "FAILED", described
    assert described["error"] == "RuntimeError"
    assert "the merge could not read the reports" in described["cause"]
    assert not run.notifications(), "the alarm notifies, not the run"


def test_a_busy_instance_is_left_out_by_the_child_whose_pair_it_is(run: Run) -> None:
    """The busy check holds across children as within one invocation: an instance still running an
    earlier run's command (a manual one, here) is reported ``pending`` / ``instance_busy`` by the child
    that has its pair, and never runs two agent runs at once."""
    pair = run.org.pair(MEMBERS[0], REGION)
    (busy,) = pair.launch(1, tags=TAGS, agent=CannedRun(duration=900))
    manual = run.runner.invoke(
        {"instance_ids": [busy], "account_ids": [MEMBERS[0]], "regions": [REGION], "wait_seconds": 0}
    )
    assert manual["command_ids"]

    described = run.machine.run(RUN, name="scheduled-busy")

    report = run.machine.report(described)
    # The merged report lists the instances that need attention (its counts are exact).
    (entry,) = [i for i in report["instances_not_succeeded"] if i["instance_id"] == busy]
    assert (entry["status"], entry["reason"]) == ("pending", "instance_busy")
    assert entry["detail"]["command_id"] in manual["command_ids"]
    assert all(not p.agent_runs_overlap() for p in run.org.pairs.values())
    assert len(run.sent(MEMBERS[0], REGION)) == 2, (
        "the manual run's command and the child's, the busy one left out"
    )
    assert busy not in run.sent(MEMBERS[0], REGION)[-1].get("InstanceIds", [])


def test_the_runner_tells_a_missing_run_object_from_a_refused_one_only_as_its_role_may_list(
    run: Run, organization_stack: OrganizationStack
) -> None:
    """S3 API Reference, GetObject, "Permissions": a key that does not exist is answered 404 NoSuchKey
    to a caller allowed s3:ListBucket on the bucket, 403 AccessDenied to any other. Every step looks
    for objects that may not exist yet (the plan for plan.json, the merge for report.json), so without
    the grant every execution would fail before anything is commanded: the runner reads the bucket
    here as its role may (``RunsBucketAccess``), and the template grants it."""
    template = organization_stack.central
    assert runner_may_list(template) and run.machine.runs_access.may_list
    without = copy.deepcopy(template)
    for policy in resources(without, "AWS::IAM::Policy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        statements[:] = [s for s in statements if "s3:ListBucket" not in json.dumps(s.get("Action"))]
    assert not runner_may_list(without)

    run.machine.runs_access.may_list = False  # the role as it was before it could list the bucket
    run.machine.runs_access.attach([run.session])

    described = run.machine.run(RUN, name="scheduled-no-listing")

    assert described["status"] == "FAILED" and described["error"] == "AccessDenied", described
    assert run.machine.runs_access.denied[0].endswith("/plan.json")
    assert all(not pair.ssm_endpoint.sent("SendCommand") for pair in run.org.pairs.values())


def test_a_step_naming_another_bucket_is_refused_before_anything_is_read(run: Run) -> None:
    """A step's bucket must be the stack's own runs bucket (``RUNS_BUCKET_NAME``, which the template
    sets to the bucket the definition names): an event cannot send the runner's reads and writes
    elsewhere, whatever bucket its role may reach (S3 User Guide, "Bucket owner condition": a
    request names its bucket, and nothing else checks it is the intended one)."""
    other = "someone-elses-bucket"
    run.machine.s3.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": REGION})
    execution = f"arn:aws:states:{REGION}:{HOME}:execution:{contract.state_machine_name('EcrFleetAuth')}:x"
    event = {contract.STEP_FIELD: "plan", "execution": execution, "bucket": other, "run": {}}

    with pytest.raises(Exception, match="'someone-elses-bucket' is not this stack's runs bucket") as refused:
        run.runner.invoke(event)

    assert type(refused.value).__name__ == "InvalidEvent"
    for bucket in (other, run.machine.bucket):
        assert not run.machine.s3.list_objects_v2(Bucket=bucket).get("Contents")
    assert all(not pair.ssm_endpoint.calls for pair in run.org.pairs.values())
