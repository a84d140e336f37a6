"""An organization's run beyond one invocation, top to bottom in ``handle``: plan, a child per batch, merge.

The organization's state machine (``infra/organization_run.py``, a Standard workflow the schedule
starts in organization mode) invokes the runner three ways, each a ``step_events`` event checked
to come from a running execution of it (``StateMachineOrigin``):

1. **plan** — the runner's step 0 (``organization.targets``: ListStackInstances, narrowed by the
   run's event as for one invocation), the pairs in batches of whole accounts, one invocation's
   measured load each (``fan_out.batches``), written to the run's bucket (``run_store``); the Map's
   items (one per batch) too. Written once per execution: a second plan returns the first one's.
2. **child** (the Distributed Map runs one per batch, ``MaxConcurrency`` at a time) — claims its batch
   (once per execution: no batch, so no pair, is commanded twice), runs the runner on the batch's pairs
   exactly as one invocation runs its pairs (``runner.run`` with the plan's targets and the run's id;
   the busy check, the deadline and the report are the same), writes its report to the bucket and
   returns its key: it publishes nothing.
3. **merge** — the children's reports, read one at a time, become one report (``fan_out.Tally``); a
   batch with no report has its pairs reported ``child_run_failed``, naming its child execution;
   the report is published once (``publishing.publish``: the run's log record, metrics and
   notification, as one invocation publishes its own) and written to the bucket
   (``runs/<execution>/report.json``), and the execution's output is its key and counts.

A plan or Map that fails (its Catch) still reaches the merge, which publishes a report with the
run's ``error`` (``RunsFailed``). An event the run cannot accept (the execution's input) is rejected
by the plan (``InvalidEvent``), as one invocation rejects it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..aws import organization
from ..aws.clients import ClientFactory, Pair
from ..aws.organization import Target
from ..aws.publishing import condensed, publish
from ..aws.run_store import RunStore
from ..shared import contract
from ..shared.clock import Clock
from ..shared.events import RunRequest
from ..shared.invocations import MESSAGE_PREFIX, InvalidEvent
from ..shared.observability import logger
from ..shared.report import short
from ..shared.settings import RunnerSettings
from . import fan_out, runner
from .step_events import ChildStep, Failure, MergeStep, PlanStep, RunState, StateMachineOrigin, execution_name

PLAN = "plan.json"
MERGED = "report.json"
# The merged report in the bucket lists this many instances that need attention (its counts are exact).
MERGED_LISTED = fan_out.LISTED_INSTANCES


def handle(
    step: PlanStep | ChildStep | MergeStep,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    remaining_millis: int,
    home: Pair,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Run one step; raises ``InvalidEvent`` for a step that is not the stack's state machine's."""
    clock = clock or runner.current_clock()
    check_bucket(step, settings)
    StateMachineOrigin(factory.stepfunctions(), stack_name=settings.stack_name, home=home).check(
        step.execution
    )
    store = RunStore(factory.s3(), step.bucket, execution_name(step.execution))
    logger.append_keys(state_machine_step=step.state_machine_step, execution=step.execution)
    if isinstance(step, PlanStep):
        return plan(step, store, settings, factory=factory, home=home, clock=clock)
    if isinstance(step, ChildStep):
        return child(
            step, store, settings, factory=factory, remaining_millis=remaining_millis, home=home, clock=clock
        )
    return merge(step, store, settings, factory=factory, clock=clock)


# --- 1. plan -------------------------------------------------------------------------------------


def plan(
    step: PlanStep,
    store: RunStore,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    home: Pair,
    clock: Clock,
) -> dict[str, Any]:
    request = RunRequest.from_event(step.run)  # InvalidEvent: the execution's input is refused
    existing = store.get(PLAN)
    if existing is not None:  # this execution's plan was made already (a retried invocation)
        return _planned(existing, store)
    options = runner.RunOptions.resolve(request, settings)
    run_id, started_at = runner.new_run_id(), runner.iso(clock.now())
    error = None
    try:
        chosen = organization.targets(request, settings, home, factory.cloudformation())
    except InvalidEvent:
        raise
    except Exception as failure:  # the pairs are unknown: nothing is sent anywhere; the merge reports it
        logger.exception("could not list the StackSet's stack instances")
        chosen, error = [], runner.run_error(failure)
    found = fan_out.batches(chosen, fan_out.pairs_per_child(options.wait_seconds))
    for index, batch in enumerate(found):
        store.put(_batch(run_id, index), [target.to_dict() for target in batch])
    store.put(_items(run_id), [{"batch": index} for index in range(len(found))])
    document = {
        "run_id": run_id,
        "started_at": started_at,
        "request": request.model_dump(mode="json", exclude_none=True),
        "batches": [fan_out.describe(batch) for batch in found],
        "error": error,
    }
    if not store.put_new(PLAN, document):  # another invocation's plan won: its batches are the run's
        document = store.get(PLAN) or document
    logger.info("plan", extra={"run_id": document["run_id"], "pairs": len(chosen), "batches": len(found)})
    return _planned(document, store)


def _planned(document: Mapping[str, Any], store: RunStore) -> dict[str, Any]:
    return {
        "run_id": document["run_id"],
        "batches": len(document["batches"]),
        "items": store.key(_items(document["run_id"])),
    }


# --- 2. a child ----------------------------------------------------------------------------------


def child(
    step: ChildStep,
    store: RunStore,
    settings: RunnerSettings,
    *,
    factory: ClientFactory,
    remaining_millis: int,
    home: Pair,
    clock: Clock,
) -> dict[str, Any]:
    document = store.get(PLAN)
    if document is None or step.batch >= len(document["batches"]):
        raise InvalidEvent(f"invalid event: batch {step.batch} is not a batch of this execution's plan")
    run_id = document["run_id"]
    if not store.put_new(_claim(run_id, step.batch), {"execution": step.execution}):
        # Run (or running) already: its report, if any, is what the merge reads.
        logger.warning("batch already claimed by another invocation", extra={"batch": step.batch})
        return {"batch": step.batch, "claimed_elsewhere": True}
    targets = [Target.from_dict(kept) for kept in store.get(_batch(run_id, step.batch)) or []]
    report = runner.run(
        RunRequest.from_event(document["request"]),
        settings,
        factory=factory,
        remaining_millis=remaining_millis,
        clock=clock,
        home=home,
        pair_targets=targets,
        run_id=run_id,
        publish_report=False,
    )
    key = store.put(_report(run_id, step.batch), report.to_dict())
    summary = {name: value for name, value in report.summary().items() if name != "accounts"}
    logger.info("child report", extra={"batch": step.batch, "pairs": len(targets), "summary": summary})
    return {"batch": step.batch, "report": key, "summary": summary}


# --- 3. merge ------------------------------------------------------------------------------------


def merge(
    step: MergeStep, store: RunStore, settings: RunnerSettings, *, factory: ClientFactory, clock: Clock
) -> dict[str, Any]:
    state = step.state
    done = store.get(MERGED)
    if done is not None:  # merged and published already (a retried invocation)
        return _merged_output(done, store)
    document = store.get(PLAN)
    request = _request(document, state)
    options = runner.RunOptions.resolve(request, settings)
    started_at = document["started_at"] if document else runner.iso(clock.now())
    run_id = document["run_id"] if document else runner.new_run_id()
    tally = fan_out.Tally(requested=request.instance_ids)
    outcomes = {outcome.batch: outcome for outcome in state.children or () if outcome is not None}
    for index in range(len(document["batches"]) if document else 0):
        part = store.get(_report(run_id, index))
        if part is not None:
            tally.add_report(part, store.key(_report(run_id, index)))
            continue
        targets = [Target.from_dict(kept) for kept in store.get(_batch(run_id, index)) or []]
        tally.add_unreported(index, targets, _why(outcomes.get(index), state.failure, step.execution))
    error = (document or {}).get("error") or _failed_state(state.failure)
    report = tally.report(
        run_id,
        options.action,
        request.dry_run,
        request.source,
        started_at,
        runner.iso(clock.now()),
        execution=step.execution,
        error=error,
        compliance_type=contract.compliance_type(settings.stack_name),
    )
    merged = {**condensed(report, MERGED_LISTED), "parts": tally.parts}
    if not store.put_new(MERGED, merged):  # another merge published this run already
        return _merged_output(store.get(MERGED) or merged, store)
    publish(report, settings, factory.sns(), duration_seconds=_seconds(started_at, clock.now()))
    return _merged_output(merged, store)


def _request(document: Mapping[str, Any] | None, state: RunState) -> RunRequest:
    """The run's event: the plan's, else (the plan failed before writing it) the execution's input."""
    try:
        return RunRequest.from_event(document["request"] if document else state.run)
    except InvalidEvent:
        return RunRequest()  # the plan refused it: that failed the execution, nothing reaches here


def _why(outcome: Any, failure: Failure | None, execution: str) -> dict[str, str]:
    """Why a batch has no report, as its target's detail says it."""
    if outcome is not None and outcome.failed:
        return {"error": outcome.error or "ChildFailed", "execution": outcome.execution or execution}
    if outcome is not None and outcome.claimed_elsewhere:
        return {"error": "ClaimedByAnotherInvocation", "execution": execution}
    if failure is not None:  # the Map itself failed before the batch ran
        return {"error": failure.Error, "execution": execution}
    return {"error": "NoReport", "execution": execution}


def _failed_state(failure: Failure | None) -> dict[str, str] | None:
    if failure is None:
        return None
    return {"reason": "run_failed", "code": failure.Error, "message": short(failure.Cause or failure.Error)}


def _merged_output(merged: Mapping[str, Any], store: RunStore) -> dict[str, Any]:
    """The execution's output: small whatever the run (Step Functions passes at most 256 KiB)."""
    summary = {name: value for name, value in merged["summary"].items() if name != "accounts"}
    unreached = sum(1 for target in merged.get("targets", []) if target["status"] == "unreachable")
    output = {
        "run_id": merged["run_id"],
        "report": {"bucket": store.bucket, "key": store.key(MERGED)},
        "summary": summary,
        "targets_unreachable": unreached,
    }
    if merged.get("error"):
        output["error"] = merged["error"]
    return output


def _seconds(started_at: str, now: datetime) -> float:
    return max(0.0, (now - datetime.fromisoformat(started_at.replace("Z", "+00:00"))).total_seconds())


def _batch(run_id: str, index: int) -> str:
    return f"{run_id}/batches/{index:05d}.json"


def _items(run_id: str) -> str:
    return f"{run_id}/items.json"


def _claim(run_id: str, index: int) -> str:
    return f"{run_id}/claims/{index:05d}"


def _report(run_id: str, index: int) -> str:
    return f"{run_id}/reports/{index:05d}.json.gz"


def check_bucket(step: PlanStep | ChildStep | MergeStep, settings: RunnerSettings) -> None:
    """Raises ``InvalidEvent`` unless ``step`` names the stack's own runs bucket (``RUNS_BUCKET_NAME``):
    an event cannot point the runner at another bucket, even one its role could reach."""
    if not settings.runs_bucket_name:
        raise InvalidEvent(
            f"{MESSAGE_PREFIX}{step.state_machine_step}: this function has no runs bucket "
            "(RUNS_BUCKET_NAME is empty: the stack is not in organization mode)"
        )
    if step.bucket != settings.runs_bucket_name:
        raise InvalidEvent(
            f"{MESSAGE_PREFIX}bucket: {step.bucket!r} is not this stack's runs bucket "
            f"({settings.runs_bucket_name!r})"
        )
