"""EventBridge, SQS and Lambda's event source mapping: how events about new instances reach the runner."""

from .delivery import NewInstanceDelivery
from .event_source_mapping import EsmSettings, EventSourceMapping, Invocation
from .sqs import SqsService, SqsWire

__all__ = ["EsmSettings", "EventSourceMapping", "Invocation", "NewInstanceDelivery", "SqsService", "SqsWire"]
