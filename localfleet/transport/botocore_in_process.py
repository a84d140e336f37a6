"""``ServiceEndpoint``s answering a boto3 session's requests inside this process.

moto has no Run Command (FACTS.md), and botocore's Stubber answers before the retry
logic runs, so neither shows a throttling storm ridden out by real clients. Here the
endpoint is registered at botocore's ``before-send`` event: the real client
serialises and validates each request, the endpoint answers with the bytes the
service would send (errors such as ThrottlingException included), and the real
client parses them and applies its retry policy. A connection failure injected at
the endpoint is raised as botocore's own exception for it.

``simulate_botocore_time`` puts botocore's retry back-off, adaptive rate limiter and
waiters on a ``SimulatedClock``: the real policies still decide how long to wait.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any, Protocol

import botocore.endpoint
import botocore.exceptions
import botocore.retries.bucket
import botocore.waiter
from boto3.session import Session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

from ..clocks import SimulatedClock
from .endpoint import Answering, TransportFailure

CONNECTION_ERRORS: dict[str, type[botocore.exceptions.BotoCoreError]] = {
    "EndpointConnectionError": botocore.exceptions.EndpointConnectionError,
    "ConnectTimeoutError": botocore.exceptions.ConnectTimeoutError,
    "ReadTimeoutError": botocore.exceptions.ReadTimeoutError,
    "ConnectionClosedError": botocore.exceptions.ConnectionClosedError,
}


class InProcessTransport:
    """Answers requests to each endpoint's service from that endpoint (``attach`` a session)."""

    def __init__(self, *endpoints: Answering) -> None:
        self.endpoints = {endpoint.service: endpoint for endpoint in endpoints}

    def attach(self, session: Session) -> Session:
        for service, endpoint in self.endpoints.items():
            # More specific than moto's catch-all "before-send": these answer first under mock_aws.
            handler: Callable[..., Any] = _Handler(endpoint)
            session.events.register(f"before-send.{service}", handler)
        return session


class _Handler:
    def __init__(self, endpoint: Answering) -> None:
        self.endpoint = endpoint

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        headers = {
            name: value.decode() if isinstance(value, bytes) else str(value)
            for name, value in request.headers.items()
        }
        try:
            reply = self.endpoint.handle(headers, request_body(request))
        except TransportFailure as failure:
            raise CONNECTION_ERRORS[failure.name](endpoint_url=request.url) from None
        return botocore_response(request, reply.status, reply.headers, reply.body)


def request_body(request: AWSPreparedRequest) -> bytes:
    """The bytes of a prepared request's body (botocore gives a str, bytes or a file-like object)."""
    body = request.body or b""
    if not isinstance(body, str | bytes | bytearray):
        body = body.read()
    return body.encode() if isinstance(body, str) else bytes(body)


def botocore_response(
    request: AWSPreparedRequest, status: int, headers: Mapping[str, str], body: bytes
) -> AWSResponse:
    """The answer a ``before-send`` handler gives botocore instead of sending ``request``."""
    answer_headers = HTTPHeaders()
    for name, value in headers.items():
        answer_headers[name] = value
    return AWSResponse(request.url, status, answer_headers, _Raw(body))


class _Raw(io.BytesIO):
    """The raw stream botocore reads a response body from: ``stream()`` for parsed bodies,
    ``read()`` for a streaming one (Lambda Invoke's Payload is a StreamingBody)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class Patcher(Protocol):
    """What ``simulate_botocore_time`` needs of pytest's MonkeyPatch."""

    def setattr(self, target: Any, name: str, value: Any) -> None: ...


def simulate_botocore_time(patch: Patcher, clock: SimulatedClock, sleeps: list[float]) -> None:
    """Run botocore's retry back-off, adaptive rate limiter and waiters on the simulated clock.

    The waits are recorded in ``sleeps`` (storm tests read them) and pass in
    simulated time, not wall time.
    """

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    class Condition(threading.Condition):
        def wait(self, timeout: float | None = None) -> bool:
            # Real time always moves on; a simulated wait must too, or a bucket
            # short of a token by a rounding error would wait forever. Like a real wait it lets go
            # of the lock meanwhile: the threads that take turns on the clock may share one client
            # (its bucket), and one holding the lock through its simulated sleep would stop the
            # next turn's thread at the lock for ever.
            saved = self._release_save()  # type: ignore[attr-defined]
            try:
                sleep(max(timeout or 0.0, 0.001))
            finally:
                self._acquire_restore(saved)  # type: ignore[attr-defined]
            return True

    patch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=sleep))
    patch.setattr(botocore.retries.bucket, "time", SimpleNamespace(time=clock.monotonic, sleep=sleep))
    patch.setattr(
        botocore.retries.bucket, "threading", SimpleNamespace(Condition=Condition, Lock=threading.Lock)
    )
    patch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=sleep))
