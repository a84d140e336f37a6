"""STS in front of moto's: AssumeRole refused as AWS refuses it, then issued by moto.

moto 5.2.5's ``assume_role`` issues credentials for any role ARN, existing or not, whoever
asks (``moto/sts/models.py``: "Note that the role does not need to exist"). The gate checks
first what AWS checks (``localfleet.iam``): the caller's credentials are known and valid in the
region called (else ``InvalidClientTokenId``); the role exists in its account and its trust
policy lets the caller in (else ``AccessDenied``, 403, worded as AWS words it: "User: <caller's
session ARN> is not authorized to perform: sts:AssumeRole on resource: <role ARN>" — AWS gives
the same answer for a role that does not exist, so that its existence does not leak). Only
then is the request handed to moto (``issue``: the request's headers and form body in, moto's
reply out), and the credentials moto returns are registered as the role's session, so that
requests signed with them reach the role's account (``routing``). ``GetCallerIdentity`` is
answered from the same registry. Other actions go to moto as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from ..iam.models import Identities, Principal, trusts
from ..transport import Reply, Request, ServiceError
from ..transport.query_protocol import QueryWire, result_reply
from ..transport.routing import signature

_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]{1,64})$")
_ACCESS_KEY = re.compile(r"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>")
# Hands a request (headers, form body) to moto's STS; its reply.
Issuer = Callable[[Mapping[str, str], bytes], Reply]


class StsGate(QueryWire):
    service = "sts"

    def __init__(self, identities: Identities, issue: Issuer) -> None:
        self.identities = identities
        self.issue = issue

    def answer(self, request: Request) -> Reply:
        try:
            caller = self._caller(request)
            if request.operation == "GetCallerIdentity":
                return result_reply(
                    "sts",
                    "GetCallerIdentity",
                    {"UserId": caller.session_arn.rsplit("/", 1)[-1], "Account": caller.account,
                     "Arn": caller.session_arn},
                )  # fmt: skip
            if request.operation == "AssumeRole":
                return self._assume_role(request, caller)
        except ServiceError as error:
            return self.error(error)
        return self.issue(request.headers, urlencode(request.params).encode())

    def _caller(self, request: Request) -> Principal:
        signed = signature(request.headers)
        if signed is None:
            raise ServiceError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
        return self.identities.caller(signed.access_key, signed.region, "sts")

    def _assume_role(self, request: Request, caller: Principal) -> Reply:
        role_arn = request.params.get("RoleArn", "")
        matched = _ROLE_ARN.match(role_arn)
        if matched is None:
            raise ServiceError("ValidationError", f"{role_arn} is invalid")
        partition, account, name = matched.groups()
        policy = self.identities.trust_policy(account, name)
        if policy is None or not trusts(policy, account, caller):
            denied = f"User: {caller.session_arn} is not authorized to perform: sts:AssumeRole on resource: "
            raise ServiceError("AccessDenied", denied + role_arn, 403)
        reply = self.issue(request.headers, urlencode(request.params).encode())
        if reply.status == 200:
            key = _access_key(reply.body)
            session = request.params.get("RoleSessionName", "")
            self.identities.add_key(
                key,
                Principal(
                    account=account,
                    arn=f"arn:{partition}:iam::{account}:role/{name}",
                    session_arn=f"arn:{partition}:sts::{account}:assumed-role/{name}/{session}",
                ),
            )
        return reply


def _access_key(body: bytes) -> str:
    found = _ACCESS_KEY.search(body.decode(errors="replace"))
    if found is None:
        raise ValueError("moto's AssumeRole answer carries no AccessKeyId")
    return found.group(1)
