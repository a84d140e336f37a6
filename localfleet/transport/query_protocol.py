"""AWS's query protocol (STS, CloudFormation): form-encoded requests in, XML out, shaped by botocore's model.

``decode_form`` gives a request's parameters as the flat names the protocol sends
(``Filters.member.1.Name``); ``result_reply`` writes an operation's result the way botocore's
query parser reads it (``<OpResponse><OpResult>...</OpResult><ResponseMetadata>``, lists as
``<member>`` items), every member checked against the operation's output shape (an unknown
member is a simulator bug); ``error_reply`` is the protocol's ``<ErrorResponse>``. ``QueryWire`` is
what every query service's wire shares: its ``decode`` and ``error``; the service writes ``answer``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from botocore.model import ListShape, Shape, StructureShape

from .endpoint import Reply, Request, ServiceError
from .service_models import service_model

CONTENT_TYPE = "text/xml"


def decode_form(body: bytes) -> dict[str, str]:
    """The request's parameters by their flat protocol names; ``Action`` says the operation."""
    query = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    params = {name: values[0] for name, values in query.items()}
    if not params.get("Action"):
        raise ServiceError("MissingAction", "The request must contain the parameter Action.")
    return params


class QueryWire:
    """A query-protocol service's wire: the request decoded from its form (headers kept, for the
    signature), errors as ``<ErrorResponse>``; a subclass names its ``service`` and ``answer``s."""

    service: str

    def decode(self, headers: Mapping[str, str], body: bytes) -> Request:
        params = decode_form(body)
        return Request(params["Action"], params, dict(headers))

    def error(self, error: ServiceError) -> Reply:
        return error_reply(error)


def members(params: Mapping[str, str], prefix: str) -> list[str]:
    """The items of a list parameter sent as ``<prefix>.member.N``, in order."""
    found = []
    index = 1
    while f"{prefix}.member.{index}" in params:
        found.append(params[f"{prefix}.member.{index}"])
        index += 1
    return found


def result_reply(service: str, operation: str, result: Mapping[str, Any]) -> Reply:
    model = service_model(service)
    shape = model.operation_model(operation).output_shape
    inner = _xml(result, shape, operation) if shape is not None else ""
    namespace = model.metadata.get("xmlNamespace", "")
    body = (
        f'<{operation}Response xmlns="{namespace}"><{operation}Result>{inner}</{operation}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{operation}Response>"
    )
    return Reply(200, {"Content-Type": CONTENT_TYPE}, body.encode())


def error_reply(error: ServiceError) -> Reply:
    kind = "Receiver" if error.status >= 500 else "Sender"
    body = (
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>"
        f"<Message>{escape(error.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return Reply(error.status, {"Content-Type": CONTENT_TYPE}, body.encode())


def error_status(service: str, code: str, default: int = 400) -> int:
    """The HTTP status the model gives an error code (``StackSetNotFoundException``: 404)."""
    for shape in service_model(service).error_shapes:
        error = shape.metadata.get("error", {})
        if error.get("code", shape.name) == code:
            return int(error.get("httpStatusCode", default))
    return default


def _xml(value: Any, shape: Shape, path: str) -> str:
    if isinstance(shape, StructureShape):
        unknown = set(value) - set(shape.members)
        if unknown:
            raise KeyError(f"{path}: members {sorted(unknown)} are not in the {shape.name} shape")
        return "".join(
            f"<{name}>{_xml(item, shape.members[name], path)}</{name}>"
            for name, item in value.items()
            if item is not None
        )
    if isinstance(shape, ListShape):
        return "".join(f"<member>{_xml(item, shape.member, path)}</member>" for item in value)
    if shape.type_name == "timestamp":
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return escape(str(value))
