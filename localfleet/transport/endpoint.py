"""A service behind the faults a client must survive, whichever way it is reached.

Fault injection happens here, once, so a test sees the same thing in-process and
over HTTP:

- ``fault(operation, number, params)``: the request is refused before anything
  happens — an error code (``ThrottlingException``, ``InternalServerError``...) is
  answered as the service answers errors, or a connection failure (a name in
  ``CONNECTION_FAILURES``) means no answer at all;
- ``lost_answer(operation, number, params)``: the request is carried out, then its
  answer is lost (a 5xx, or a connection failure): what a client sees when the
  service did the work but the response never arrived;
- ``before(operation, params)``: the world moving on just before a request is
  handled (an instance terminating just before a SendCommand).

``number`` counts the requests for that operation, retries included, from 1.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# (operation, its request number, params) -> an error code or a CONNECTION_FAILURES name, or None.
FaultRule = Callable[[str, int, dict[str, Any]], str | None]
# What botocore raises when a connection fails, by the name a fault rule uses.
CONNECTION_FAILURES = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
)
# HTTP status of an error code when a fault rule injects it; anything else is a 400.
ERROR_STATUS = {
    "InternalServerError": 500,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "RequestLimitExceeded": 503,
    "UnauthorizedOperation": 403,
}


def no_fault(operation: str, number: int, params: dict[str, Any]) -> str | None:
    return None


class ServiceError(Exception):
    """A service error: the wire encodes it as the real service would (status, code, message)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class TransportFailure(Exception):
    """No answer at all: the transport turns it into that connection failure (``CONNECTION_FAILURES``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Request:
    operation: str
    params: dict[str, Any]
    # The request's headers (names in lower case): what a service that answers per caller reads
    # (the SigV4 credential scope: ``routing.signature``).
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Wire(Protocol):
    """A service in its real protocol: requests decoded, answers and errors encoded."""

    service: str  # botocore's name for it: "ssm", "ec2"

    def decode(self, headers: Mapping[str, str], body: bytes) -> Request:
        """The operation and its parameters (headers' names in lower case); ServiceError if malformed."""
        ...

    def answer(self, request: Request) -> Reply:
        """Carry the request out; the reply (service errors encoded as replies too)."""
        ...

    def error(self, error: ServiceError) -> Reply: ...


class Answering(Protocol):
    """Whatever answers a service's requests: a ``ServiceEndpoint``, or a ``routing.RoutedEndpoint``."""

    @property
    def service(self) -> str: ...

    @property
    def wire(self) -> Wire: ...

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply: ...


class ServiceEndpoint:
    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.calls: Counter[str] = Counter()  # requests received by operation, retries included
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fault: FaultRule = no_fault
        self.lost_answer: FaultRule = no_fault
        self.before: Callable[[str, dict[str, Any]], None] = lambda operation, params: None
        self._lock = threading.Lock()

    @property
    def service(self) -> str:
        return self.wire.service

    def sent(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every ``operation`` request received so far, in order."""
        with self._lock:
            return [params for name, params in self.requests if name == operation]

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """The reply to one request; TransportFailure when the client must get no answer."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            request = self.wire.decode(lowered, body)
        except ServiceError as error:
            return self.wire.error(error)
        if not request.headers:
            request = Request(request.operation, request.params, lowered)
        operation, params = request.operation, request.params
        with self._lock:
            self.calls[operation] += 1
            number = self.calls[operation]
            self.requests.append((operation, params))
        self.before(operation, params)
        refused = self.fault(operation, number, params)
        if refused is not None:
            return self._failure(refused, "injected fault")
        reply = self.wire.answer(request)
        lost = self.lost_answer(operation, number, params)
        if lost is not None:
            return self._failure(lost, "carried out, then the answer was lost")
        return reply

    def _failure(self, name: str, message: str) -> Reply:
        if name in CONNECTION_FAILURES:
            raise TransportFailure(name)
        return self.wire.error(ServiceError(name, message, ERROR_STATUS.get(name, 400)))
