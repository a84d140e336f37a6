"""The runs bucket as the runner's role sees it: S3's answer to a GetObject of a key that does not exist.

S3 API Reference, GetObject, "Permissions": "If the object that you request doesn't exist, the error
that Amazon S3 returns depends on whether you also have the s3:ListBucket permission. If you have
the s3:ListBucket permission on the bucket, Amazon S3 returns an HTTP status code 404 Not Found
error. If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403
Access Denied error." moto answers 404 whoever asks, so ``RunsBucketAccess`` answers the runner's
session 403 AccessDenied unless the template grants the runner's role s3:ListBucket on the bucket
(``runner_may_list``): an unconditioned Allow, since a GetObject's check carries no ``s3:prefix``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError

from ...synthesized_stack import Template, resources, runner_function


def runner_may_list(template: Template) -> bool:
    """Whether the template lets the runner's role list (every) bucket of the template's own."""
    role = runner_function(template)["Properties"]["Role"]["Fn::GetAtt"][0]
    buckets = [{"Fn::GetAtt": [logical_id, "Arn"]} for logical_id in resources(template, "AWS::S3::Bucket")]
    granted = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Effect") == "Allow" and "Condition" not in statement
        and "s3:ListBucket" in _listed(statement["Action"])
    ]  # fmt: skip
    return bool(buckets) and all(
        any(bucket in _listed(statement["Resource"]) for statement in granted) for bucket in buckets
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class RunsBucketAccess:
    """``bucket`` read through a session whose principal ``may_list`` it or not; ``s3``: a client that
    sees everything (the test's), to tell whether a key exists."""

    def __init__(self, s3: Any, bucket: str, *, may_list: bool) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.may_list = may_list
        self.denied: list[str] = []  # keys answered 403 for not existing
        # Weakly: a benchmark's children each come with a session of their own, dropped after it.
        self._sessions: weakref.WeakSet[boto3.Session] = weakref.WeakSet()

    def attach(self, sessions: Iterable[boto3.Session]) -> None:
        for session in sessions:
            if self.may_list or session in self._sessions:
                continue
            self._sessions.add(session)
            answer: Callable[..., Any] = self._answer  # botocore takes a before-call's answer as the call's
            session.events.register("before-call.s3.GetObject", answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        key = self._key(params["url"])
        if self.may_list or key is None or self._exists(key):
            return None
        self.denied.append(key)
        error = {"Code": "AccessDenied", "Message": "Access Denied"}
        return AWSResponse(params["url"], 403, HTTPHeaders(), None), {
            "Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}
        }  # fmt: skip

    def _key(self, url: str) -> str | None:
        """The key of a request for ``bucket`` (virtual-hosted or path style), else None."""
        parts = urlsplit(url)
        path = unquote(parts.path)
        if (parts.hostname or "").startswith(f"{self.bucket}."):
            return path[1:]
        if path.startswith(f"/{self.bucket}/"):
            return path[len(self.bucket) + 2 :]
        return None

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True
