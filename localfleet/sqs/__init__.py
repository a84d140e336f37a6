"""SQS standard queues, simulated as far as the new-instance path uses them, on any clock.

- ``models``: queues and messages (delay, visibility timeout, redrive, trace header);
- ``responses``: its wire, the JSON 1.0 protocol (``SqsWire``).
"""

from .models import Message, Queue, SqsService
from .responses import SqsWire

__all__ = ["Message", "Queue", "SqsService", "SqsWire"]
