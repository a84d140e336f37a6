"""The accounts' side of IAM as the simulator needs it: credentials, roles and their trust, enabled regions.

* **Credentials** (access key id -> ``Principal``): the runner's own (its Lambda role's
  session) and every role session STS issued; a request signed with another key is refused
  as AWS refuses unknown credentials.
* **Roles** by (account, name) with their trust policy (``AssumeRolePolicyDocument``). ``trusts``
  evaluates the parts a cross-account trust uses: ``Allow``/``Deny`` statements for
  ``sts:AssumeRole``; ``Principal.AWS`` as an account id, ``arn:...:root`` or a role ARN; conditions
  ``StringEquals``/``StringLike``/``ArnEquals``/``ArnLike`` on ``aws:PrincipalArn``,
  ``aws:PrincipalAccount`` and ``aws:PrincipalOrgID`` (the organization of the caller's account).
  Anything else in a statement (another operator or key, a ``NotPrincipal``) makes that statement
  not apply (HARSHER: AWS might allow; never the reverse). ``allows`` reads a resource policy the
  same way for another action (an event bus's ``events:PutEvents``).
* **Regions**: the opt-in regions (``OPT_IN_REGIONS``) answer an account only once it enabled
  them; the others always do. A request signed for a region its account has not enabled is
  refused as AWS refuses it there — each service in its own words (``refusal``):
  EC2 ``AuthFailure`` (401, "AWS was not able to validate the provided access credentials":
  steampipe-plugin-aws #75, fog-aws #585), JSON services such as SSM
  ``UnrecognizedClientException`` (400: landing-zone-accelerator-on-aws #269, SSM in an opt-in
  region not enabled), query services such as STS and CloudFormation ``InvalidClientTokenId``
  (403: aws-okta #225, GetCallerIdentity in ap-east-1 not enabled). Unknown credentials get the
  same answers (which is why AWS's message cannot tell the two apart).
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..transport import ServiceError

# Regions AWS does not enable by default (AWS General Reference, "Enable or disable AWS Regions").
OPT_IN_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1",
        "eu-south-2", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
    }
)  # fmt: skip
INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 - an error message
# Each service's answer to credentials it does not accept in the region it was called in.
REFUSALS = {
    "ec2": ("AuthFailure", "AWS was not able to validate the provided access credentials", 401),
    "ssm": ("UnrecognizedClientException", INVALID_TOKEN, 400),
    "sts": ("InvalidClientTokenId", INVALID_TOKEN, 403),
    "cloudformation": ("InvalidClientTokenId", INVALID_TOKEN, 403),
}


def refusal(service: str) -> ServiceError:
    code, message, status = REFUSALS.get(service, REFUSALS["sts"])
    return ServiceError(code, message, status)


class UnknownCredentials(Exception):
    """No account issued this access key."""


class RegionNotEnabled(Exception):
    """The account has not enabled this (opt-in) region."""


@dataclass(frozen=True)
class Principal:
    """Who signs with a key: ``arn`` is what a trust policy's aws:PrincipalArn sees (the role for a
    role session), ``session_arn`` what error messages name (arn:aws:sts::...:assumed-role/...)."""

    account: str
    arn: str
    session_arn: str
    org_id: str | None = None  # the organization of its account (aws:PrincipalOrgID); None: none


class Identities:
    def __init__(self) -> None:
        self._keys: dict[str, Principal] = {}
        self._roles: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._enabled: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # --- credentials
    def add_key(self, access_key: str, principal: Principal) -> None:
        with self._lock:
            self._keys[access_key] = principal

    def principal(self, access_key: str) -> Principal:
        with self._lock:
            found = self._keys.get(access_key)
        if found is None:
            raise UnknownCredentials(access_key)
        return found

    def caller(self, access_key: str, region: str, service: str) -> Principal:
        """Who signed, if that key may call ``service`` in ``region``; else the service's refusal."""
        try:
            principal = self.principal(access_key)
        except UnknownCredentials:
            raise refusal(service) from None
        if not self.region_enabled(principal.account, region):
            raise refusal(service)
        return principal

    # --- regions
    def enable_region(self, account: str, region: str) -> None:
        self._enabled.add((account, region))

    def disable_region(self, account: str, region: str) -> None:
        """Opt-in regions only: AWS cannot disable a region enabled by default."""
        if region not in OPT_IN_REGIONS:
            raise ValueError(f"{region} is enabled by default and cannot be disabled")
        self._enabled.discard((account, region))

    def region_enabled(self, account: str, region: str) -> bool:
        return region not in OPT_IN_REGIONS or (account, region) in self._enabled

    # --- roles
    def add_role(self, account: str, name: str, trust_policy: Mapping[str, Any]) -> None:
        self._roles[(account, name)] = trust_policy

    def remove_role(self, account: str, name: str) -> None:
        self._roles.pop((account, name), None)

    def trust_policy(self, account: str, name: str) -> Mapping[str, Any] | None:
        return self._roles.get((account, name))


def trusts(policy: Mapping[str, Any], role_account: str, caller: Principal) -> bool:
    """Whether the trust policy lets ``caller`` AssumeRole (an explicit Deny wins)."""
    return allows(policy, "sts:AssumeRole", caller)


def allows(policy: Mapping[str, Any], action: str, caller: Principal) -> bool:
    """Whether a resource policy lets ``caller`` do ``action`` (an explicit Deny wins)."""
    allowed = False
    for statement in _listed(policy.get("Statement", [])):
        if not _applies(statement, action, caller):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _applies(statement: Mapping[str, Any], action: str, caller: Principal) -> bool:
    if "NotPrincipal" in statement or "NotAction" in statement:
        return False
    actions = _listed(statement.get("Action", []))
    if not any(fnmatch.fnmatchcase(action, pattern) for pattern in actions):
        return False
    principal = statement.get("Principal", {})
    names = _listed(principal.get("AWS", [])) if isinstance(principal, Mapping) else _listed(principal)
    if not any(_names(name, caller) for name in names):
        return False
    return all(_holds(operator, keys, caller) for operator, keys in statement.get("Condition", {}).items())


def _names(name: str, caller: Principal) -> bool:
    partition_root = f":iam::{caller.account}:root"
    return name in ("*", caller.account, caller.arn) or name.endswith(partition_root)


_CONDITION_KEYS = {
    "aws:principalarn": "arn",
    "aws:principalaccount": "account",
    "aws:principalorgid": "org_id",
}


def _holds(operator: str, keys: Mapping[str, Any], caller: Principal) -> bool:
    for key, expected in keys.items():
        attribute = _CONDITION_KEYS.get(key.lower())
        if attribute is None:
            return False
        actual = getattr(caller, attribute)
        if actual is None:  # no such context (an account outside any organization): never matches
            return False
        values = [str(value) for value in _listed(expected)]
        if operator in ("StringEquals", "ArnEquals"):
            matched = actual in values
        elif operator in ("StringLike", "ArnLike"):
            matched = any(fnmatch.fnmatchcase(actual, value) for value in values)
        else:
            return False
        if not matched:
            return False
    return True
