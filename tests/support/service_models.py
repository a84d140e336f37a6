"""One botocore data loader per test process, so that each service model is parsed once.

Every ``boto3.Session()`` makes its own loader, which reads and parses the service's JSON
models (EC2's alone is megabytes) again. The runner makes fresh sessions on each invocation,
as on Lambda, and the runner's tests invoke it a thousand times: half of their CPU went to
parsing the same files. Sessions sharing one loader share its parsed models, as the clients of
one session always do (botocore treats them as read-only); what any client sends or receives
is unchanged. Only this process is affected: a runner started as Lambda starts it (a fresh
process, ``localfleet.lambda_runtime``) still loads its models cold.
"""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.session

_shared_loader = functools.cache(botocore.loaders.create_loader)  # one per data path (AWS_DATA_PATH)


def share_service_models() -> None:
    """Make every botocore session made from now on in this process use the shared loader."""
    botocore.session.create_loader = _shared_loader
