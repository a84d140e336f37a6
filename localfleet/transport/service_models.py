"""botocore's service models, loaded once per service: every wire validates and shapes by them."""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import OperationModel, ServiceModel

from .endpoint import ServiceError


@functools.cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, name: str) -> OperationModel:
    """The operation's model; an operation the service does not have is ``UnknownOperationException``."""
    model = service_model(service)
    if name not in model.operation_names:
        raise ServiceError("UnknownOperationException", f"Unknown operation {name}")
    return model.operation_model(name)
