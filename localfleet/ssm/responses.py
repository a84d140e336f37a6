"""SSM's wire: JSON 1.1 as the service speaks it, checked against botocore's own service model.

``SsmWire`` serves ``RunCommandService`` (``models``) through a ``ServiceEndpoint``, over HTTP or
in-process alike (``POST /``, ``X-Amz-Target: AmazonSSM.<Operation>``, errors as
``{"__type": code, "message": ...}``); ``RunCommandService.handler`` says which operation goes where.
"""

from __future__ import annotations

from ..transport.json_protocol import JsonWire


class SsmWire(JsonWire):
    """JSON 1.1 (``X-Amz-Target: AmazonSSM.<Operation>``), errors as ``{"__type": code, ...}``."""

    service = "ssm"
    target_prefix = "AmazonSSM."
    content_type = "application/x-amz-json-1.1"
    internal_error_code = "InternalServerError"
