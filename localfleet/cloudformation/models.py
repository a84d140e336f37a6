"""A service-managed StackSet's stack instances, served as CloudFormation's ``ListStackInstances``.

Why not moto's stack sets: moto 5.2.5 lists every instance ``CURRENT`` / ``SUCCEEDED`` and
never a ``StatusReason``, ignores ``CallAs``, and does not paginate ("Pagination is not yet
implemented", ``moto/cloudformation/models.py``); its service-managed stack sets deploy
nothing. The runner must meet what the API reference documents (ListStackInstances,
StackInstanceSummary), so this small model keeps only what ListStackInstances shows and lets a
test set each instance's state:

* ``Status``: ``CURRENT`` (up to date with the stack set), ``OUTDATED`` (its stack failed, or
  an operation failed or stopped before it was created or updated), ``INOPERABLE`` (a
  DeleteStackInstances failed and left it unstable); ``StackInstanceStatus.DetailedStatus``:
  ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``CANCELLED``, ``INOPERABLE``,
  ``SKIPPED_SUSPENDED_ACCOUNT``, ``FAILED_IMPORT``; ``StatusReason`` when there is one.
  ``StackId`` only once a stack exists: an instance whose creation failed or has not run yet has
  none, while one that is ``OUTDATED`` during an update, or after a failed one (the update rolled
  back, the previous stack still stands), or ``INOPERABLE`` keeps its stack and says so.
* ``CallAs`` (StackSets of the ``SERVICE_MANAGED`` model belong to the organization's
  management account): ``SELF`` (the default) finds only the caller's own stack sets, so a
  delegated administrator asking as ``SELF`` gets ``StackSetNotFoundException`` ("StackSet
  <name> not found", 404: aws-cloudformation/rain #277 and #585); ``DELEGATED_ADMIN`` from an
  account that is not a registered delegated administrator — the management account
  included — gets ``ValidationError`` "Account used is not a delegated administrator"
  (cdklabs/cdk-stacksets #265, terraform-provider-aws #37069).
* Stack sets are regional: asked in another region, the name is not found.
* Pages: ``MaxResults`` 1-100; without it, pages of ``DEFAULT_PAGE_SIZE`` (CHOICE: the
  reference gives no default; a small page makes clients follow ``NextToken``). Filters
  ``StackInstanceAccount``, ``StackInstanceRegion`` and ``Filters`` by ``DETAILED_STATUS``
  or ``LAST_OPERATION_ID``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..transport import ServiceError
from ..transport.paging import page
from ..transport.query_protocol import error_status

STATUSES = ("CURRENT", "OUTDATED", "INOPERABLE")
DETAILED_STATUSES = (
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INOPERABLE", "SKIPPED_SUSPENDED_ACCOUNT",
    "FAILED_IMPORT",
)  # fmt: skip
CALL_AS = ("SELF", "DELEGATED_ADMIN")
DEFAULT_PAGE_SIZE = 10
_FILTER_NAME = re.compile(r"^Filters\.member\.(\d+)\.Name$")
INVALID_NEXT_TOKEN = ServiceError("ValidationError", "Invalid NextToken")


@dataclass
class StackInstance:
    account: str
    region: str
    status: str = "CURRENT"
    detailed_status: str = "SUCCEEDED"
    status_reason: str = ""
    organizational_unit_id: str = ""
    last_operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    stack_id: str = ""  # empty: no stack was created (yet)
    stack_exists: bool | None = None  # None: a stack exists when the instance is CURRENT


@dataclass
class StackSet:
    name: str
    owner: str  # the account that owns it: the management account, for SERVICE_MANAGED
    region: str
    stack_set_id: str = ""
    instances: list[StackInstance] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stack_set_id = self.stack_set_id or f"{self.name}:{uuid.uuid4()}"

    def put(self, instance: StackInstance) -> StackInstance:
        """Add the instance, or replace the one of the same account and region."""
        self.instances = [
            i for i in self.instances if (i.account, i.region) != (instance.account, instance.region)
        ]
        self.instances.append(instance)
        exists = instance.status == "CURRENT" if instance.stack_exists is None else instance.stack_exists
        if exists and not instance.stack_id:
            instance.stack_id = (
                f"arn:aws:cloudformation:{instance.region}:{instance.account}:stack/"
                f"StackSet-{self.name}-{uuid.uuid4()}/{uuid.uuid4()}"
            )
        return instance

    def operate(
        self, account: str, region: str, status: str, detailed_status: str, reason: str
    ) -> StackInstance:
        """A new operation on the instance in (account, region): its statuses and a new operation id."""
        (instance,) = [i for i in self.instances if (i.account, i.region) == (account, region)]
        instance.status, instance.detailed_status = status, detailed_status
        instance.status_reason = reason
        instance.last_operation_id = str(uuid.uuid4())
        return instance


class StackSets:
    """The stack sets of one organization: owned by its management account, administered also by
    its registered delegated administrators."""

    def __init__(self, management_account: str, delegated_admins: tuple[str, ...] = ()) -> None:
        self.management_account = management_account
        self.delegated_admins = set(delegated_admins)
        self._sets: dict[tuple[str, str], StackSet] = {}  # (region, name)
        self._lock = threading.Lock()

    def create(self, name: str, region: str, *, owner: str | None = None) -> StackSet:
        stack_set = StackSet(name, owner or self.management_account, region)
        self._sets[(region, name)] = stack_set
        return stack_set

    def list_stack_instances(self, caller: str, region: str, params: Mapping[str, str]) -> dict[str, Any]:
        name = params.get("StackSetName", "")
        if not name:
            raise ServiceError("ValidationError", "StackSetName is required")
        call_as = params.get("CallAs", "SELF")
        if call_as not in CALL_AS:
            raise ServiceError(
                "ValidationError",
                f"1 validation error detected: Value '{call_as}' at 'callAs' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(CALL_AS)}]",
            )
        if call_as == "DELEGATED_ADMIN" and caller not in self.delegated_admins:
            raise ServiceError("ValidationError", "Account used is not a delegated administrator")
        owner = caller if call_as == "SELF" else self.management_account
        stack_set = self._sets.get((region, name))
        if stack_set is None or stack_set.owner != owner:
            raise ServiceError(
                "StackSetNotFoundException",
                f"StackSet {name} not found",
                error_status("cloudformation", "StackSetNotFoundException"),
            )
        size = _page_size(params.get("MaxResults"))
        chosen = [i for i in stack_set.instances if _selected(i, params)]
        shown, token = page(
            chosen, token=params.get("NextToken"), size=size, scope=name, invalid=INVALID_NEXT_TOKEN
        )
        return {"Summaries": [_summary(stack_set, i) for i in shown], "NextToken": token}


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    size = int(raw)
    if not 1 <= size <= 100:
        raise ServiceError(
            "ValidationError",
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
            "Member must have value between 1 and 100",
        )
    return size


def _selected(instance: StackInstance, params: Mapping[str, str]) -> bool:
    if params.get("StackInstanceAccount") not in (None, instance.account):
        return False
    if params.get("StackInstanceRegion") not in (None, instance.region):
        return False
    for key, name in params.items():
        matched = _FILTER_NAME.match(key)
        if not matched:
            continue
        value = params.get(f"Filters.member.{matched.group(1)}.Values", "")
        if name == "DETAILED_STATUS" and instance.detailed_status != value:
            return False
        if name == "LAST_OPERATION_ID" and instance.last_operation_id != value:
            return False
    return True


def _summary(stack_set: StackSet, instance: StackInstance) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "StackSetId": stack_set.stack_set_id,
        "Region": instance.region,
        "Account": instance.account,
        "StackId": instance.stack_id or None,
        "Status": instance.status,
        "StatusReason": instance.status_reason or None,
        "StackInstanceStatus": {"DetailedStatus": instance.detailed_status},
        "OrganizationalUnitId": instance.organizational_unit_id or None,
        "DriftStatus": "NOT_CHECKED",
        "LastOperationId": instance.last_operation_id,
    }
    return summary
