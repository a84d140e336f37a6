"""AWS's JSON protocols (SSM's JSON 1.1, SQS's JSON 1.0), checked against botocore's own service model.

A ``JsonWire`` serves a simulated service through a ``ServiceEndpoint``, over HTTP or
in-process alike (``POST /``, ``X-Amz-Target: <prefix><Operation>``, errors as
``{"__type": code, "message": ...}``). Requests are checked twice, as the service would see them: botocore's
``ParamValidator`` (types, required members, minimums) and then the model's
remaining constraints that only the server enforces (maximum lengths and
values, patterns, enums) — e.g. more than 50 ``InstanceIds`` is rejected by
the service, not by the SDK. Responses are shaped by the operation's output
shape: unknown members are a bug in the emulator, timestamps become epoch
seconds as the JSON 1.1 protocol sends them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.validate import ParamValidator

from .endpoint import Reply, Request, ServiceError
from .service_models import operation_model

_log = logging.getLogger(__name__)
# What the service behind the wire offers: the handler of an operation (request dict in, result out).
Handlers = Callable[[str], Callable[[Mapping[str, Any]], dict[str, Any]]]


class JsonWire:
    """A botocore JSON-protocol service (``POST /``, ``X-Amz-Target: <prefix><Operation>``): every
    request validated against the service's model, every answer shaped by it. A service names
    itself, its target prefix, its JSON version and how it words an internal error."""

    service: str
    target_prefix: str
    content_type: str
    internal_error_code: str

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers

    def decode(self, headers: Mapping[str, str], body: bytes) -> Request:
        target = headers.get("x-amz-target", "")
        if not target.startswith(self.target_prefix):
            raise ServiceError("UnknownOperationException", f"Unknown target {target!r}")
        operation = operation_model(self.service, target[len(self.target_prefix) :])
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise ServiceError("SerializationException", "request body is not JSON") from None
        if not isinstance(params, dict):
            raise ServiceError("SerializationException", "request body must be a JSON object")
        return Request(operation.name, params, dict(headers))

    def answer(self, request: Request) -> Reply:
        operation = operation_model(self.service, request.operation)
        try:
            validate_input(operation, request.params)
            result = self.call(operation.name, request)
            return self.reply(200, shape_output(operation, result))
        except ServiceError as error:
            return self.error(error)
        except Exception as error:  # a simulator bug: answer as the service would, and say where
            _log.exception("%s simulator failed on %s", self.service.upper(), request.operation)
            return self.error(ServiceError(self.internal_error_code, f"simulator error: {error!r}", 500))

    def call(self, operation: str, request: Request) -> dict[str, Any]:
        """The service's answer to a valid request (a service that reads headers overrides this)."""
        return self.handlers(operation)(request.params)

    def error(self, error: ServiceError) -> Reply:
        return self.reply(error.status, {"__type": error.code, "message": error.message})

    def reply(self, status: int, payload: dict[str, Any]) -> Reply:
        return Reply(status, {"Content-Type": self.content_type}, json.dumps(payload).encode())


def validate_input(operation: OperationModel, params: Mapping[str, Any]) -> None:
    """Raise ``ValidationException`` the way the service words it when ``params`` break the model."""
    shape = operation.input_shape
    if shape is None:
        return
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ServiceError("ValidationException", report.generate_report())
    problems: list[str] = []
    _check_constraints(params, shape, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ServiceError(
            "ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems)
        )


def _member_path(parent: str, member: str) -> str:
    # The service names members in camelCase in its messages: "at 'instanceIds'".
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _check_constraints(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        for name, member in shape.members.items():
            if name in value:
                _check_constraints(value[name], member, _member_path(path, name), problems)
        return
    if isinstance(shape, ListShape):
        _check_size(value, len(value), meta, path, what="length", problems=problems)
        for index, item in enumerate(value):
            _check_constraints(item, shape.member, f"{path}.{index + 1}.member", problems)
        return
    if isinstance(shape, MapShape):
        _check_size(value, len(value), meta, path, what="length", problems=problems)
        for key, item in value.items():
            _check_constraints(key, shape.key, f"{path}.{key}.key", problems)
            _check_constraints(item, shape.value, f"{path}.{key}.value", problems)
        return
    if shape.type_name == "string":
        _check_size(value, len(value), meta, path, what="length", problems=problems)
        enum = meta.get("enum")
        if enum and value not in enum:
            problems.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = meta.get("pattern")
        if pattern and not _matches(pattern, value):
            problems.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    elif shape.type_name in {"integer", "long"}:
        _check_size(value, value, meta, path, what="value", problems=problems)


def _check_size(
    value: Any, size: int, meta: Mapping[str, Any], path: str, *, what: str, problems: list[str]
) -> None:
    if "min" in meta and size < meta["min"]:
        problems.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have {what} greater than or equal to {meta['min']}"
        )
    if "max" in meta and size > meta["max"]:
        problems.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have {what} less than or equal to {meta['max']}"
        )


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a Java-only construct: the SDK model is still checked by type and size
        return None


def _matches(pattern: str, value: str) -> bool:
    # Smithy patterns are not implicitly anchored; the model anchors where it means to.
    compiled = _compiled(pattern)
    return compiled is None or compiled.search(value) is not None


_MEMBER_NAMES: dict[int, frozenset[str]] = {}


def _member_names(shape: StructureShape) -> frozenset[str]:
    names = _MEMBER_NAMES.get(id(shape))
    if names is None:
        names = _MEMBER_NAMES[id(shape)] = frozenset(shape.members)
    return names


def shape_output(operation: OperationModel, result: Mapping[str, Any]) -> dict[str, Any]:
    """``result`` serialised per the operation's output shape (None members dropped)."""
    shape = operation.output_shape
    if shape is None:
        return {}
    shaped: dict[str, Any] = _serialise(result, shape, operation.name)
    return shaped


def _serialise(value: Any, shape: Shape, path: str) -> Any:
    if isinstance(shape, StructureShape):
        members = shape.members
        unknown = value.keys() - _member_names(shape)
        if unknown:
            raise KeyError(f"{path}: members {sorted(unknown)} are not in the {shape.name} shape")
        return {
            name: _serialise(item, members[name], path) for name, item in value.items() if item is not None
        }
    if isinstance(shape, ListShape):
        return [_serialise(item, shape.member, path) for item in value]
    if isinstance(shape, MapShape):
        return {key: _serialise(item, shape.value, path) for key, item in value.items()}
    if shape.type_name == "timestamp":
        if isinstance(value, dt.datetime):
            return value.timestamp()
        return float(value)
    return value
