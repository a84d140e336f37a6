"""SSM Compliance, simulated: what PutComplianceItems records per managed node, and the two listings.

Sizes, patterns and enums (an item's Title up to 500 characters, Details keys 1-64 and values up to
4,096, at most 10,000 items, ``ComplianceType`` ``Custom:<name>``, ``Status`` COMPLIANT or
NON_COMPLIANT, ``Severity``) are botocore's model, which the wire checks before anything here runs.
The rest follows the SSM API reference (PutComplianceItems, ListComplianceItems,
ListComplianceSummaries); where it leaves a choice the choice is marked CHOICE, where the harsher
reading for a client is taken, HARSHER:

* "This call overwrites existing compliance information on the resource, so you must provide a full
  list of compliance items each time that you send the request": a put replaces every item of its
  type on its resource (``UploadType`` COMPLETE, "By default, all requests use COMPLETE mode"); items
  of other types stay. An empty list leaves none: the type no longer shows for the resource (CHOICE).
* ``UploadType`` PARTIAL "overwrites compliance information for a specific association ... This
  attribute is only valid for association compliance": refused for any other type (HARSHER:
  ``ValidationException``; the reference names no error for it).
* ``ItemContentHash``: "If the content hashes match, the request to put compliance information is
  ignored": the earlier put stands, its execution summary too.
* ``ResourceType``: "ManagedInstance is currently the only supported resource type"; anything else
  is ``InvalidResourceType``. ``ResourceId``: a managed node of this account and region, else
  ``InvalidResourceId`` ("The resource ID isn't valid"); HARSHER: a node shutting down or
  terminated too.
* ``ComplianceTypeCountLimitExceededException``: "You can specify a maximum of 10 different types"
  (custom types, per resource; CHOICE: counted per resource).
* Two items of one request with one ``Id``: ``InvalidItemContentException`` (HARSHER: undocumented).
* ListComplianceItems: "Currently, you can only specify one resource ID" (HARSHER: none or two is a
  ``ValidationException``), resource type ManagedInstance; filter keys ``ComplianceType``, ``Status``,
  ``Severity``, ``Id``, with ``EQUAL`` (the default), ``NOT_EQUAL`` or ``BEGIN_WITH`` (CHOICE: the
  reference lists no keys; any other key or comparison is ``InvalidFilter``). A node with nothing
  recorded lists nothing.
* ListComplianceSummaries: per compliance type, a resource is NON_COMPLIANT when any of its items
  is, else COMPLIANT, and is counted once, under the highest severity among its non-compliant items
  (compliant resources: among all their items) (CHOICE: the reference does not say how the
  severity summary counts). Filter key ``ComplianceType`` (``EQUAL``, ``BEGIN_WITH``).
* ListResourceComplianceSummaries: one summary per resource and compliance type recorded ("a
  resource-level summary count ... for compliant and non-compliant statuses and detailed compliance-item
  severity counts"), its ``Status`` NON_COMPLIANT when any item is, ``OverallSeverity`` the highest
  among the non-compliant items (else among all). Filter keys ``ComplianceType``, ``Status``,
  ``OverallSeverity`` (CHOICE: the CLI's examples use these; others are ``InvalidFilter``). A type put
  with an empty list is no longer recorded, so it is not listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...transport.endpoint import ServiceError

RESOURCE_TYPE = "ManagedInstance"
MAX_CUSTOM_TYPES = 10
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")  # highest first
SEVERITY_COUNTS = {
    "CRITICAL": "CriticalCount",
    "HIGH": "HighCount",
    "MEDIUM": "MediumCount",
    "LOW": "LowCount",
    "INFORMATIONAL": "InformationalCount",
    "UNSPECIFIED": "UnspecifiedCount",
}
ITEM_FILTER_KEYS = {"ComplianceType", "Status", "Severity", "Id"}
SUMMARY_FILTER_KEYS = {"ComplianceType"}
RESOURCE_SUMMARY_FILTER_KEYS = {"ComplianceType", "Status", "OverallSeverity"}
COMPARISONS: dict[str, Callable[[str, Sequence[str]], bool]] = {
    "EQUAL": lambda value, wanted: value in wanted,
    "NOT_EQUAL": lambda value, wanted: value not in wanted,
    "BEGIN_WITH": lambda value, wanted: any(value.startswith(prefix) for prefix in wanted),
}


@dataclass
class _Recorded:
    """One compliance type on one resource: its items and the execution summary of the put."""

    items: list[dict[str, Any]]
    execution_summary: dict[str, Any]
    content_hash: str | None = None


@dataclass
class ComplianceStore:
    """The compliance data of one account and region. ``is_managed_node(id)``: whether ``id`` is a
    managed node a put may name."""

    is_managed_node: Callable[[str], bool]
    _records: dict[str, dict[str, _Recorded]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- PutComplianceItems ------------------------------------------------------------------
    def put_items(self, params: Mapping[str, Any]) -> dict[str, Any]:
        resource, kind = params["ResourceId"], params["ComplianceType"]
        self._check_resource(params["ResourceType"], resource)
        if params.get("UploadType", "COMPLETE") == "PARTIAL" and kind != "Association":
            raise ServiceError(
                "ValidationException", "UploadType PARTIAL is only valid for association compliance"
            )
        ids = [item.get("Id") for item in params["Items"] if item.get("Id") is not None]
        if len(ids) != len(set(ids)):
            raise ServiceError("InvalidItemContentException", "One or more content items isn't valid.")
        content_hash = params.get("ItemContentHash")
        with self._lock:
            recorded = self._records.setdefault(resource, {})
            earlier = recorded.get(kind)
            if content_hash and earlier is not None and earlier.content_hash == content_hash:
                return {}
            custom = {name for name in recorded if name.startswith("Custom:")}
            if kind.startswith("Custom:") and kind not in custom and len(custom) >= MAX_CUSTOM_TYPES:
                raise ServiceError(
                    "ComplianceTypeCountLimitExceededException",
                    "You specified too many custom compliance types. You can specify a maximum of "
                    f"{MAX_CUSTOM_TYPES} different types.",
                )
            if not params["Items"]:
                recorded.pop(kind, None)
                return {}
            recorded[kind] = _Recorded(
                items=[dict(item) for item in params["Items"]],
                execution_summary=dict(params["ExecutionSummary"]),
                content_hash=content_hash,
            )
        return {}

    # --- ListComplianceItems -----------------------------------------------------------------
    def list_items(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of the one resource asked for that the filters select, in the order put."""
        resources = list(params.get("ResourceIds") or [])
        if len(resources) != 1:
            raise ServiceError("ValidationException", "Currently, you can only specify one resource ID.")
        for resource_type in params.get("ResourceTypes") or [RESOURCE_TYPE]:
            self._check_resource(resource_type, resources[0])
        matches = _filters(params.get("Filters") or [], ITEM_FILTER_KEYS)
        with self._lock:
            recorded = dict(self._records.get(resources[0], {}))
        listed = []
        for kind, record in sorted(recorded.items()):
            for item in record.items:
                entry = {
                    "ComplianceType": kind,
                    "ResourceType": RESOURCE_TYPE,
                    "ResourceId": resources[0],
                    "Id": item.get("Id"),
                    "Title": item.get("Title"),
                    "Status": item["Status"],
                    "Severity": item["Severity"],
                    "ExecutionSummary": record.execution_summary,
                    "Details": item.get("Details"),
                }
                if matches(entry):
                    listed.append(entry)
        return listed

    # --- ListComplianceSummaries -------------------------------------------------------------
    def list_summaries(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One summary per compliance type the filters select, by type name."""
        matches = _filters(params.get("Filters") or [], SUMMARY_FILTER_KEYS)
        compliant: dict[str, list[str]] = {}
        non_compliant: dict[str, list[str]] = {}
        with self._lock:
            records = [(kind, r) for by_type in self._records.values() for kind, r in by_type.items()]
        for kind, record in records:
            if not matches({"ComplianceType": kind}):
                continue
            failing = [item["Severity"] for item in record.items if item["Status"] == "NON_COMPLIANT"]
            if failing:
                non_compliant.setdefault(kind, []).append(_highest(failing))
            else:
                compliant.setdefault(kind, []).append(_highest([i["Severity"] for i in record.items]))
        return [
            {
                "ComplianceType": kind,
                "CompliantSummary": {
                    "CompliantCount": len(compliant.get(kind, [])),
                    "SeveritySummary": _severity_counts(compliant.get(kind, [])),
                },
                "NonCompliantSummary": {
                    "NonCompliantCount": len(non_compliant.get(kind, [])),
                    "SeveritySummary": _severity_counts(non_compliant.get(kind, [])),
                },
            }
            for kind in sorted({*compliant, *non_compliant})
        ]

    # --- ListResourceComplianceSummaries -----------------------------------------------------
    def list_resource_summaries(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One summary per resource and compliance type the filters select, by resource then type."""
        matches = _filters(params.get("Filters") or [], RESOURCE_SUMMARY_FILTER_KEYS)
        with self._lock:
            records = [
                (resource, kind, record)
                for resource, by_type in sorted(self._records.items())
                for kind, record in sorted(by_type.items())
            ]
        listed = []
        for resource, kind, record in records:
            failing = [item["Severity"] for item in record.items if item["Status"] == "NON_COMPLIANT"]
            passing = [item["Severity"] for item in record.items if item["Status"] == "COMPLIANT"]
            entry = {
                "ComplianceType": kind,
                "ResourceType": RESOURCE_TYPE,
                "ResourceId": resource,
                "Status": "NON_COMPLIANT" if failing else "COMPLIANT",
                "OverallSeverity": _highest(failing or passing),
                "ExecutionSummary": record.execution_summary,
                "CompliantSummary": {
                    "CompliantCount": len(passing),
                    "SeveritySummary": _severity_counts(passing),
                },
                "NonCompliantSummary": {
                    "NonCompliantCount": len(failing),
                    "SeveritySummary": _severity_counts(failing),
                },
            }
            if matches(entry):
                listed.append(entry)
        return listed

    def _check_resource(self, resource_type: str, resource: str) -> None:
        if resource_type != RESOURCE_TYPE:
            raise ServiceError("InvalidResourceType", "The resource type isn't valid.")
        if not self.is_managed_node(resource):
            raise ServiceError(
                "InvalidResourceId", "The resource ID isn't valid. Verify that you entered the correct ID."
            )


def _filters(filters: Sequence[Mapping[str, Any]], keys: set[str]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over an entry's fields: every filter holds."""
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for given in filters:
        key, comparison = given.get("Key", ""), given.get("Type", "EQUAL")
        if key not in keys or comparison not in COMPARISONS:
            raise ServiceError("InvalidFilter", f"The filter name isn't valid: {key} {comparison}")
        checks.append(_check(key, COMPARISONS[comparison], list(given.get("Values") or [])))
    return lambda entry: all(check(entry) for check in checks)


def _check(
    key: str, compare: Callable[[str, Sequence[str]], bool], wanted: list[str]
) -> Callable[[Mapping[str, Any]], bool]:
    return lambda entry: compare(str(entry.get(key) or ""), wanted)


def _highest(severities: Sequence[str]) -> str:
    return min(severities, key=SEVERITIES.index)


def _severity_counts(severities: Sequence[str]) -> dict[str, int]:
    return {name: sum(1 for s in severities if s == severity) for severity, name in SEVERITY_COUNTS.items()}
