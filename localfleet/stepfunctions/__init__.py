"""Step Functions: the stack's state machine run by moto's Amazon States Language interpreter."""

from .models.lambda_tasks import LambdaTasks, Unhandled, function_name
from .models.machines import MOTO_CONFIG, Figures, StateMachines, resolved_definition
from .models.runs_bucket import RunsBucketAccess, runner_may_list
from .models.simulated_time import SimulatedTimeline
from .server import StepFunctionsServer

__all__ = [
    "MOTO_CONFIG",
    "Figures",
    "LambdaTasks",
    "RunsBucketAccess",
    "SimulatedTimeline",
    "StateMachines",
    "StepFunctionsServer",
    "Unhandled",
    "function_name",
    "resolved_definition",
    "runner_may_list",
]
