"""Step Functions: the stack's state machine run by moto's Amazon States Language interpreter."""

from .lambda_tasks import LambdaTasks, Unhandled, function_name
from .machines import MOTO_CONFIG, Figures, StateMachines, resolved_definition
from .runs_bucket import RunsBucketAccess, runner_may_list
from .server import StepFunctionsServer
from .simulated_time import SimulatedTimeline

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
