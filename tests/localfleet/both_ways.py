"""A boto3 client reaching one simulated endpoint either way: in-process under botocore, or over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from localfleet.transport import InProcessTransport, LoopbackServer, ServiceEndpoint

REGION = "eu-west-1"
WAYS = ["in-process", "http"]


@contextmanager
def client(endpoint: ServiceEndpoint, way: str, config: Config) -> Iterator[Any]:
    if way == "in-process":
        session = InProcessTransport(endpoint).attach(boto3.Session(region_name=REGION))
        yield session.client(endpoint.service, endpoint_url="http://127.0.0.1:9", config=config)
        return
    server = LoopbackServer(endpoint).start()
    try:
        yield boto3.client(endpoint.service, region_name=REGION, endpoint_url=server.url, config=config)
    finally:
        server.stop()
