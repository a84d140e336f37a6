"""EC2's query protocol for the inventory: form-encoded requests in, XML out, as botocore expects.

Answered: DescribeInstances with ``Filter.N`` (``instance-id``,
``instance-state-name``, ``tag:<key>``, ``tag-key``), ``InstanceId.N``,
``MaxResults`` (5-1000) and ``NextToken``. Pages count reservations, as moto's do
(CHOICE: EC2's reference says "items"). Other actions are ``InvalidAction``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from ..transport.endpoint import Reply, Request, ServiceError
from ..transport.paging import page
from ..transport.query_protocol import decode_form
from .models import FILTERS, Ec2Instance, Ec2Inventory

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
DEFAULT_PAGE_SIZE = 1000  # CHOICE: without MaxResults, one page of up to 1,000 reservations
_FILTER_NAME = re.compile(r"^Filter\.(\d+)\.Name$")
INVALID_NEXT_TOKEN = ServiceError("InvalidParameterValue", "The specified NextToken is not valid.")


class Ec2Wire:
    service = "ec2"

    def __init__(self, inventory: Ec2Inventory) -> None:
        self.inventory = inventory

    def decode(self, headers: Mapping[str, str], body: bytes) -> Request:
        form = decode_form(body)
        params: dict[str, Any] = {}
        filters = []
        for key, value in form.items():
            matched = _FILTER_NAME.match(key)
            if matched:
                prefix = f"Filter.{matched.group(1)}.Value."
                filters.append(
                    {"Name": value, "Values": [v for k, v in sorted(form.items()) if k.startswith(prefix)]}
                )
        if filters:
            params["Filters"] = filters
        ids = [v for k, v in sorted(form.items()) if k.startswith("InstanceId.")]
        if ids:
            params["InstanceIds"] = ids
        for name in ("MaxResults", "NextToken"):
            if name in form:
                params[name] = form[name]
        return Request(form["Action"], params)

    def answer(self, request: Request) -> Reply:
        try:
            if request.operation != "DescribeInstances":
                raise ServiceError(
                    "InvalidAction", f"The action {request.operation} is not valid for this web service."
                )
            return _xml_reply(200, self._describe_instances(request.params))
        except ServiceError as error:
            return self.error(error)

    def error(self, error: ServiceError) -> Reply:
        body = (
            f"<Response><Errors><Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}"
            f"</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
        )
        return _xml_reply(error.status, body)

    def _describe_instances(self, params: Mapping[str, Any]) -> str:
        filters: dict[str, set[str]] = {}
        for item in params.get("Filters", []):
            name = item["Name"]
            if name not in FILTERS and not name.startswith("tag:"):
                raise ServiceError("InvalidParameterValue", f"The filter '{name}' is invalid")
            filters[name] = set(item["Values"])
        if "MaxResults" in params and "InstanceIds" in params:
            raise ServiceError(
                "InvalidParameterCombination",
                "The parameter instancesSet cannot be used with the parameter maxResults",
            )
        size = int(params.get("MaxResults", DEFAULT_PAGE_SIZE))
        if not 5 <= size <= 1000:
            raise ServiceError(
                "InvalidParameterValue", f"Value ( {size} ) for parameter maxResults is invalid."
            )
        reservations: dict[str, list[Ec2Instance]] = {}
        for instance in self.inventory.matching(filters, params.get("InstanceIds", ())):
            reservations.setdefault(instance.reservation_id, []).append(instance)
        chosen, next_token = page(
            list(reservations.items()),
            token=params.get("NextToken"),
            size=size,
            scope="DescribeInstances",
            invalid=INVALID_NEXT_TOKEN,
        )
        token = f"<nextToken>{next_token}</nextToken>" if next_token else ""
        items = "".join(_reservation(reservation, instances) for reservation, instances in chosen)
        return (
            f'<DescribeInstancesResponse xmlns="{XMLNS}"><requestId>{uuid.uuid4()}</requestId>'
            f"<reservationSet>{items}</reservationSet>{token}</DescribeInstancesResponse>"
        )


def _xml_reply(status: int, body: str) -> Reply:
    return Reply(status, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode())


def _reservation(reservation_id: str, instances: list[Ec2Instance]) -> str:
    return (
        f"<item><reservationId>{reservation_id}</reservationId>"
        f"<instancesSet>{''.join(_instance(i) for i in instances)}</instancesSet></item>"
    )


def _instance(instance: Ec2Instance) -> str:
    tags = "".join(
        f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>" for k, v in instance.tags.items()
    )
    # What the runner reads; an instance's other members are left out (parsing 10,000 costs seconds).
    return (
        f"<item><instanceId>{instance.instance_id}</instanceId>"
        f"<instanceState><code>{STATE_CODES.get(instance.state, 16)}</code><name>{instance.state}</name>"
        f"</instanceState><tagSet>{tags}</tagSet></item>"
    )
