"""CloudFormation's wire for the stack sets: the query protocol (form in, XML out), the caller read
from the request's signature."""

from __future__ import annotations

from collections.abc import Callable

from ..transport import Reply, Request, ServiceError
from ..transport.query_protocol import QueryWire, result_reply
from ..transport.routing import Signature, signature
from .models import StackSets


class StackSetsWire(QueryWire):
    """CloudFormation's query protocol for ``StackSets``: the region comes from the credential scope,
    the caller's account from ``account_of`` (which raises the ``ServiceError`` AWS gives credentials
    it does not accept there)."""

    service = "cloudformation"

    def __init__(self, stack_sets: StackSets, account_of: Callable[[Signature], str]) -> None:
        self.stack_sets = stack_sets
        self.account_of = account_of

    def answer(self, request: Request) -> Reply:
        try:
            signed = signature(request.headers)
            if signed is None:
                raise ServiceError(
                    "MissingAuthenticationToken", "Request is missing Authentication Token", 403
                )
            caller = self.account_of(signed)
            if request.operation != "ListStackInstances":
                raise ServiceError(
                    "InvalidAction", f"The action {request.operation} is not valid for this web service."
                )
            result = self.stack_sets.list_stack_instances(caller, signed.region, request.params)
            return result_reply("cloudformation", "ListStackInstances", result)
        except ServiceError as error:
            return self.error(error)
