"""Lambda's recursive loop detection, as an SQS event source mapping meets it.

What the Lambda Developer Guide says ("Use Lambda recursive loop detection to prevent infinite
loops", https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html):

* "A *chain of requests* is a sequence of Lambda invocations caused by the same triggering event. For
  example, imagine that an Amazon SQS queue invokes your Lambda function. Your Lambda function then
  sends the processed event back to the same Amazon SQS queue, which invokes your function again."
* Lambda tracks it in trace-header metadata that supported SDKs update: "You don't need to enable
  X-Ray active tracing for this feature to work." botocore adds ``X-Amzn-Trace-Id`` (the invocation's
  ``_X_AMZN_TRACE_ID``) to every call made inside Lambda (``handlers.add_recursion_detection_header``);
  SQS keeps it as the message's ``AWSTraceHeader`` system attribute and Lambda hands it back in the
  record's ``attributes``. Its ``Lineage`` part counts the function's invocations in the chain, as
  ``<version>:<function hash>:<count>`` (``Lineage=1:fe460cdd:0`` in published SQS records; several
  functions are joined with ``|``, ``Lineage=a87bd80c:1|68fd508a:5``).
* "If your function is invoked approximately 16 times in the same chain of requests, then Lambda
  automatically stops the next function invocation in that request chain". HARSHER: the invocation
  that would be the 16th of a chain is stopped, so at most ``MOST_INVOCATIONS`` (15) run.
* "When Lambda detects a recursive loop and drops subsequent invocations, it returns a
  ``RecursiveInvocationException`` to the event source mapping. This increments the receiveCount value
  on the message. Lambda continues to retry the message, and continues to block function invocations,
  until Amazon SQS determines that the maxReceiveCount is exceeded and sends the message to the
  configured dead-letter queue." The metric ``RecursiveInvocationsDropped`` counts each stop; with
  ``RecursiveLoop: Allow`` nothing is stopped and the metric "isn't emitted".
* A batch whose records belong to several chains: AWS does not say. HARSHER: the invocation continues
  the longest of them (its count is one more than the highest count among its records, so whatever the
  function sends carries that count), and a stop holds back every record of the batch.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

# The invocation that would be this one of its chain is stopped (HARSHER than "approximately 16").
STOPPED_AT = 16
MOST_INVOCATIONS = STOPPED_AT - 1
LINEAGE_VERSION = "1"
ALLOW, TERMINATE = "Allow", "Terminate"  # AWS::Lambda::Function RecursiveLoop; Terminate by default
_LINEAGE = re.compile(r"(?:^|;)Lineage=([^;]*)")


def function_hash(function_arn: str) -> str:
    """The function's 8-hex-digit mark in a lineage (any stable digest of its ARN)."""
    return hashlib.sha256(function_arn.encode()).hexdigest()[:8]


def counts(trace_header: str | None) -> dict[str, int]:
    """Function hash -> how many times it was invoked in this chain, read from a trace header."""
    found = _LINEAGE.search(trace_header or "")
    chains: dict[str, int] = {}
    for entry in found.group(1).split("|") if found else []:
        parts = entry.split(":")
        if len(parts) >= 2 and parts[-1].isdigit():
            chains[parts[-2]] = max(int(parts[-1]), chains.get(parts[-2], 0))
    return chains


def invocation_count(function: str, record_headers: Iterable[str | None]) -> int:
    """Which invocation of its chain the next one of ``function`` is, for a batch of records (the
    longest chain among them; a record without lineage starts one)."""
    return 1 + max((counts(header).get(function, 0) for header in record_headers), default=0)


def invocation_header(function: str, count: int, sampled: bool = False) -> str:
    """The ``_X_AMZN_TRACE_ID`` Lambda gives the invocation: a new trace, the chain's lineage."""
    root = f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
    return (
        f"Root={root};Parent={secrets.token_hex(8)};Sampled={int(sampled)};"
        f"Lineage={LINEAGE_VERSION}:{function}:{count}"
    )


def stopped(recursive_loop: str, count: int) -> bool:
    """Whether Lambda stops an invocation that would be the ``count``-th of its chain."""
    return recursive_loop != ALLOW and count >= STOPPED_AT
