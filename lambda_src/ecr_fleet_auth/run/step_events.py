"""The events of the organization's state machine: its plan, each child, its merge (``organization_run``).

The state machine (``infra/organization_run.py``) invokes the runner itself; its events carry
``state_machine_step`` (``plan``, ``child`` or ``merge``) and are nothing a person writes. So they
are read by their own strict, closed models (an unknown field, a wrong type, a bad value is
refused with a message naming it) and are only ever obeyed for a running execution of this stack's
own state machine: ``StateMachineOrigin.check`` asks Step Functions (DescribeExecution) that the
execution the event names is running and belongs to it. An event claiming a step from anywhere
else — a manual invocation, a console test event — is rejected (``InvalidEvent``, counted as
``EventsRejected``) before anything is read or sent; a manual run's own model (``events.RunRequest``)
knows no such field either.

Every step's event names the run's bucket (the state machine's definition writes it), which must be
the stack's own (``RUNS_BUCKET_NAME``, ``organization_run.check_bucket``): no event can point the
runner at another bucket, whatever its role may reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from ..aws.clients import Pair, error_code
from ..shared import contract
from ..shared.invocations import MESSAGE_PREFIX, InvalidEvent
from ..shared.partitions import partition_of

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# Step Functions' own patterns: an execution's ARN (its name: 1-80 characters), an S3 bucket's name.
EXECUTION_ARN_PATTERN = r"^arn:[a-z0-9-]+:states:[a-z0-9-]+:[0-9]{12}:execution:[A-Za-z0-9_.:/-]{1,300}$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# A plan has at most this many batches (a child each): 10,000 Map items is far past any organization
# (StackSets: 2,000 stack instances per stack set by default), and keeps every index a small number.
MAX_BATCHES = 10_000
# What DescribeExecution answers for an execution that does not exist (Step Functions API reference).
NO_SUCH_EXECUTION = frozenset({"ExecutionDoesNotExist", "InvalidArn"})

ExecutionArn = Annotated[str, StringConstraints(pattern=EXECUTION_ARN_PATTERN)]
Bucket = Annotated[str, StringConstraints(pattern=BUCKET_PATTERN)]
BatchIndex = Annotated[int, Field(ge=0, lt=MAX_BATCHES)]


class _Closed(BaseModel):
    # Built at a step's first validation, not at import (docs/development/layout.md, cold start).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class PlanStep(_Closed):
    """The plan: list the pairs, batch them, write the batches; ``run`` is the execution's input (the
    run's event, read as a manual or scheduled one: ``events.RunRequest``)."""

    state_machine_step: Literal["plan"]
    execution: ExecutionArn
    bucket: Bucket
    run: dict[str, Any]


class ChildStep(_Closed):
    """One child of the Map: run batch ``batch`` of the plan."""

    state_machine_step: Literal["child"]
    execution: ExecutionArn
    bucket: Bucket
    batch: BatchIndex


class Planned(_Closed):
    """What the plan returned (the state's ``plan``)."""

    run_id: str
    batches: Annotated[int, Field(ge=0, le=MAX_BATCHES)]
    items: str


class ChildOutcome(_Closed):
    """What a child left in the Map's output: its report's key, or (its Catch) why it has none."""

    batch: BatchIndex
    report: str | None = None
    summary: dict[str, int] | None = None
    claimed_elsewhere: bool = False
    failed: bool = False
    error: str | None = None
    execution: str | None = None  # the child execution that failed ($$.Execution.Id inside it)


class Failure(_Closed):
    """A Catch's record of a state that failed (the plan, the Map): Step Functions' Error and Cause."""

    Error: str
    Cause: str | None = None


class RunState(_Closed):
    """The execution's state when it reaches the merge: the run's event, and what the steps left."""

    run: dict[str, Any]
    plan: Planned | None = None
    # A failed child's slot is null where no Catch turned its failure into an outcome.
    children: tuple[ChildOutcome | None, ...] | None = None
    failure: Failure | None = None


class MergeStep(_Closed):
    """The merge: one report of every child's, published once."""

    state_machine_step: Literal["merge"]
    execution: ExecutionArn
    bucket: Bucket
    state: RunState


StepEvent = Annotated[PlanStep | ChildStep | MergeStep, Field(discriminator="state_machine_step")]


@cache
def _step_event() -> TypeAdapter[PlanStep | ChildStep | MergeStep]:
    """Built at the first step's event, as the models are."""
    return TypeAdapter(StepEvent)


def parse(event: Mapping[str, Any]) -> PlanStep | ChildStep | MergeStep:
    """The step ``event`` is, or ``InvalidEvent`` naming each bad field."""
    try:
        return _step_event().validate_python(_tuples(event))
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc']) or 'event'}: {detail['msg'].lower()}"
            for detail in error.errors(include_url=False)
        ]
        raise InvalidEvent(f"{MESSAGE_PREFIX}state machine step: " + " | ".join(problems[:10])) from None


def _tuples(value: Any) -> Any:
    """JSON arrays as the models' tuples (strict mode takes no list for a tuple)."""
    if isinstance(value, Mapping):
        return {key: _tuples(item) if key != "run" else item for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def execution_name(execution_arn: str) -> str:
    """An execution's name: its ARN's last part."""
    return execution_arn.rsplit(":", 1)[-1]


class StateMachineOrigin:
    """Whether a step's event comes from a running execution of this stack's own state machine.

    Its name is the stack's (``contract.state_machine_name``), its account and region the
    function's own (``home``), so no setting says it and nothing in the event can change it."""

    def __init__(self, stepfunctions: SFNClient, *, stack_name: str, home: Pair) -> None:
        self._stepfunctions = stepfunctions
        partition = partition_of(home.region).name
        name = contract.state_machine_name(stack_name)
        self.state_machine_arn = f"arn:{partition}:states:{home.region}:{home.account}:stateMachine:{name}"
        self._executions = f"arn:{partition}:states:{home.region}:{home.account}:execution:{name}:"

    def check(self, execution_arn: str) -> None:
        """Raises ``InvalidEvent`` unless ``execution_arn`` is a running execution of the state machine."""
        refused = f"{MESSAGE_PREFIX}{contract.STEP_FIELD}: only the stack's state machine sends these events"
        if not execution_arn.startswith(self._executions):
            raise InvalidEvent(
                f"{refused}; {execution_arn!r} is not an execution of {self.state_machine_arn}"
            )
        try:
            described = self._stepfunctions.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            if error_code(error) not in NO_SUCH_EXECUTION:
                raise  # Step Functions could not say: the step fails, and its Catch reports it
            raise InvalidEvent(f"{refused}; there is no execution {execution_arn}") from None
        if described["stateMachineArn"] != self.state_machine_arn or described["status"] != "RUNNING":
            raise InvalidEvent(f"{refused}; execution {execution_arn} is {described['status']}, not running")
