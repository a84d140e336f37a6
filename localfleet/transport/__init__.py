"""How simulated services are reached: the same endpoint over loopback HTTP or inside this process.

A service (``localfleet.ssm``, ``localfleet.ec2``) is a ``Wire``: it decodes a
request as the real service's protocol sends it and encodes the answer the same
way. A ``ServiceEndpoint`` puts a wire behind the faults a client must survive
(throttling, 5xx, lost answers, dropped connections) and counts what it receives.
``LoopbackServer`` serves an endpoint over HTTP on 127.0.0.1; ``InProcessTransport``
answers a boto3 session's requests from it at botocore's ``before-send`` event, so
the real client still serialises, parses and retries.
"""

from .botocore_in_process import InProcessTransport, simulate_botocore_time
from .endpoint import FaultRule, Reply, Request, ServiceEndpoint, ServiceError, TransportFailure, Wire
from .http_server import LoopbackServer

__all__ = [
    "FaultRule",
    "InProcessTransport",
    "LoopbackServer",
    "Reply",
    "Request",
    "ServiceEndpoint",
    "ServiceError",
    "TransportFailure",
    "Wire",
    "simulate_botocore_time",
]
