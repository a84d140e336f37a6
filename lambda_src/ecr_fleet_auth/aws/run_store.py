"""Where an organization's state machine run keeps what does not fit in its state: S3 (``RunStore``).

Step Functions passes at most 256 KiB between states and a child's report of 200 pairs is megabytes,
so the run's plan, its batches, the children's reports and the merged report are objects of the
stack's bucket, under ``runs/<execution name>/``, and the state carries only their keys and counts.
Each object is written once: ``put_new`` is a conditional write (``If-None-Match: *``, S3 User
Guide, "Preventing object overwrites with conditional writes"), so a step invoked twice for one
execution — Lambda's retry, or a replay — finds the first one's object instead of writing its own:
one plan per execution, one claim per batch (so no batch is commanded twice), one merged report.
The bucket's lifecycle rule deletes everything after the stack's log retention.
"""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .clients import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "runs/"
# What S3 answers a conditional write whose object exists (412), and a read of no object.
EXISTS_CODES = frozenset({"PreconditionFailed", "412"})
MISSING_CODES = frozenset({"NoSuchKey", "404"})
GZIP_SUFFIX = ".gz"


class RunStore:
    """The objects of one execution's run in ``bucket``."""

    def __init__(self, s3: S3Client, bucket: str, execution_name: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = f"{PREFIX}{execution_name}/"

    def key(self, name: str) -> str:
        return self.prefix + name

    def put(self, name: str, document: Any) -> str:
        """Write ``document`` as JSON (gzipped when ``name`` ends in .gz); its key."""
        key = self.key(name)
        self._s3.put_object(Bucket=self.bucket, Key=key, **_body(name, document))
        return key

    def put_new(self, name: str, document: Any) -> bool:
        """Write ``document`` unless the object exists already; whether this call wrote it."""
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=self.key(name), IfNoneMatch="*", **_body(name, document)
            )
        except ClientError as error:
            if error_code(error) in EXISTS_CODES:
                return False
            raise
        return True

    def get(self, name: str) -> Any | None:
        """The document, or None when there is no such object."""
        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=self.key(name))
        except ClientError as error:
            if error_code(error) in MISSING_CODES:
                return None
            raise
        body = answer["Body"].read()
        return json.loads(gzip.decompress(body) if name.endswith(GZIP_SUFFIX) else body)


def _body(name: str, document: Any) -> dict[str, Any]:
    data = json.dumps(document, separators=(",", ":"), default=str).encode()
    if name.endswith(GZIP_SUFFIX):
        return {"Body": gzip.compress(data), "ContentType": "application/gzip"}
    return {"Body": data, "ContentType": "application/json"}
