"""A minimal EC2 DescribeInstances served at botocore's HTTP layer, for fleets too big for moto.

moto pages by reservation and takes minutes to build 10,000 instances; the
benchmark needs only DescribeInstances with tag, state and id filters, which
this answers in EC2's query-protocol XML so the real client parses it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from tests.runner.fake_ssm import _Raw


@dataclass
class Ec2Instance:
    instance_id: str
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "running"


class FakeEc2:
    def __init__(self) -> None:
        self.instances: dict[str, Ec2Instance] = {}
        self.calls: Counter[str] = Counter()

    def add(self, instance: Ec2Instance) -> None:
        self.instances[instance.instance_id] = instance

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        body = request.body or b""
        query = parse_qs(body.decode() if isinstance(body, bytes) else body)
        action = query.get("Action", [""])[0]
        self.calls[action] += 1
        if action != "DescribeInstances":
            return None
        filters: dict[str, set[str]] = {}
        for key, values in query.items():
            if key.startswith("Filter.") and key.endswith(".Name"):
                prefix = key[: -len("Name")]
                filters[values[0]] = {v[0] for k, v in query.items() if k.startswith(prefix + "Value.")}
        size = int(query.get("MaxResults", ["1000"])[0])
        offset = int(query.get("NextToken", ["0"])[0])
        matched = [i for i in self.instances.values() if _matches(i, filters)]
        page = matched[offset : offset + size]
        token = f"<nextToken>{offset + size}</nextToken>" if offset + size < len(matched) else ""
        items = "".join(_item(instance) for instance in page)
        xml = (
            '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>fake</requestId><reservationSet><item><reservationId>r-fake</reservationId>"
            f"<instancesSet>{items}</instancesSet></item></reservationSet>{token}"
            "</DescribeInstancesResponse>"
        )
        return AWSResponse(request.url, 200, {"Content-Type": "text/xml"}, _Raw(xml.encode()))


def _matches(instance: Ec2Instance, filters: dict[str, set[str]]) -> bool:
    for name, values in filters.items():
        if name == "instance-id":
            value: str | None = instance.instance_id
        elif name == "instance-state-name":
            value = instance.state
        elif name.startswith("tag:"):
            value = instance.tags.get(name[4:])
        else:
            raise ValueError(f"filter {name} is not emulated")
        if value not in values:
            return False
    return True


def _item(instance: Ec2Instance) -> str:
    tags = "".join(
        f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>" for k, v in instance.tags.items()
    )
    return (
        f"<item><instanceId>{instance.instance_id}</instanceId>"
        f"<instanceState><code>16</code><name>{instance.state}</name></instanceState>"
        f"<tagSet>{tags}</tagSet></item>"
    )
