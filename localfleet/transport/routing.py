"""Many (account, region) pairs behind one service, each request reaching the pair AWS would route it to.

AWS routes a request by where it is sent (the regional endpoint, which the SigV4
credential scope names: ``Credential=<access key>/<date>/<region>/<service>/aws4_request``)
and whose credentials signed it (the access key belongs to one account). A
``RoutedEndpoint`` does the same in this process or over HTTP: it reads the scope and
asks its ``route`` for the pair's ``ServiceEndpoint`` — whose faults, counts and state are
that pair's alone — or for the error the service gives those credentials in that region
(unknown credentials, a region not enabled), answered in the service's protocol.
Signatures themselves are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .endpoint import Answering, Reply, ServiceError, Wire

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[0-9]{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


@dataclass(frozen=True)
class Signature:
    """What the SigV4 credential scope of a request says: whose key, for which region and service."""

    access_key: str
    region: str
    service: str


def signature(headers: Mapping[str, str]) -> Signature | None:
    """The request's credential scope, or None for an unsigned request."""
    authorization = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    found = _CREDENTIAL.search(authorization)
    if found is None:
        return None
    return Signature(*found.groups())


class RoutedEndpoint:
    """One service of many pairs: ``route`` gives the endpoint a signed request reaches, or raises
    the ``ServiceError`` AWS answers instead; ``wire`` encodes that error as the service would."""

    def __init__(self, wire: Wire, route: Callable[[Signature], Answering]) -> None:
        self.wire = wire
        self.route = route

    @property
    def service(self) -> str:
        return self.wire.service

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        signed = signature(headers)
        if signed is None:
            return self.wire.error(
                ServiceError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
            )
        try:
            endpoint = self.route(signed)
        except ServiceError as error:
            return self.wire.error(error)
        return endpoint.handle(headers, body)
