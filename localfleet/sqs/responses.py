"""SQS's wire: the JSON 1.0 protocol boto3 speaks to SQS (``X-Amz-Target: AmazonSQS.<Operation>``),
each request validated against botocore's model, errors also in the query-compatible header."""

from __future__ import annotations

from typing import Any

from ..transport.endpoint import Reply, Request, ServiceError
from ..transport.json_protocol import JsonWire
from .models import SqsService

# What SQS answers in the query-compatible header (botocore reads the error code from it).
QUERY_ERROR_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
}


class SqsWire(JsonWire):
    """JSON 1.0 (``X-Amz-Target: AmazonSQS.<Operation>``), requests validated, answers shaped by the model."""

    service = "sqs"
    target_prefix = "AmazonSQS."
    content_type = "application/x-amz-json-1.0"
    internal_error_code = "InternalError"

    def __init__(self, sqs: SqsService) -> None:
        super().__init__(sqs.handler)
        self.sqs = sqs

    def call(self, operation: str, request: Request) -> dict[str, Any]:
        return self.sqs.call(operation, request.params, request.headers.get("x-amzn-trace-id"))

    def error(self, error: ServiceError) -> Reply:
        reply = self.reply(
            error.status, {"__type": f"com.amazonaws.sqs#{error.code}", "message": error.message}
        )
        code = QUERY_ERROR_CODES.get(error.code, error.code)
        fault = "Receiver" if error.status >= 500 else "Sender"
        reply.headers["x-amzn-query-error"] = f"{code};{fault}"
        return reply
