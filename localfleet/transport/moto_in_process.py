"""A JSON-protocol service of moto's answered in this process, behind a ``ServiceEndpoint``.

For services the simulator does not model itself but whose behaviour a test needs as AWS
gives it — DynamoDB's conditional writes (``ConditionalCheckFailedException``, with the old
item when ``ReturnValuesOnConditionCheckFailure`` asks for it): moto 5.2.5 evaluates condition
expressions on each write under its lock. The request goes to moto's server application (the
same backends ``mock_aws`` uses), so faults, counting and the simulated clock's back-off work
as for the simulator's own services. moto does not expire items by TTL, and need not: DynamoDB
itself deletes expired items only in the background, days later, so a caller must compare the
TTL attribute itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from .endpoint import Reply, Request, ServiceError

# The JSON error type prefix per service (what botocore reads the code from).
_ERROR_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#"}


@functools.cache
def _moto_application() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415
    from werkzeug.test import Client  # noqa: PLC0415

    return Client(DomainDispatcherApplication(create_backend_app))


class MotoJsonWire:
    """``service`` (JSON 1.0, ``X-Amz-Target``) in ``region``, answered by moto."""

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region

    def decode(self, headers: Mapping[str, str], body: bytes) -> Request:
        target = headers.get("x-amz-target", "")
        if "." not in target:
            raise ServiceError("UnknownOperationException", "no X-Amz-Target")
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise ServiceError("SerializationException", "the body is not JSON") from None
        return Request(target.rsplit(".", 1)[1], params, dict(headers))

    def answer(self, request: Request) -> Reply:
        forwarded = {**request.headers, "host": f"{self.service}.{self.region}.amazonaws.com"}
        forwarded.pop("content-length", None)
        answer = _moto_application().post("/", data=json.dumps(request.params), headers=forwarded)
        content_type = answer.headers.get("Content-Type", "application/x-amz-json-1.0")
        return Reply(answer.status_code, {"Content-Type": content_type}, answer.data)

    def error(self, error: ServiceError) -> Reply:
        body = {"__type": _ERROR_PREFIX.get(self.service, "") + error.code, "message": error.message}
        return Reply(error.status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode())
