"""SSM Compliance over the wire: PutComplianceItems, ListComplianceItems, ListComplianceSummaries.

What each test holds the simulator to is the SSM API reference's text for the operation (quoted
in ``localfleet/ssm/models/compliance_store.py``) and botocore's service model (sizes, patterns, enums), which
the wire checks as the service would.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localfleet.hosts.executors import CannedExecutor
from localfleet.ssm import SsmEmulator
from tests.localfleet.ssm.ssm_calls import error_code
from tests.support.ssm_emulator import instance_id

TYPE = "Custom:EcrFleetAuth"
WHEN = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def put(ssm: Any, resource: str, items: list[dict[str, Any]], **request: Any) -> None:
    ssm.put_compliance_items(
        ResourceId=resource,
        ResourceType=request.pop("ResourceType", "ManagedInstance"),
        ComplianceType=request.pop("ComplianceType", TYPE),
        ExecutionSummary=request.pop(
            "ExecutionSummary", {"ExecutionTime": WHEN, "ExecutionId": "run-1", "ExecutionType": "run"}
        ),
        Items=items,
        **request,
    )


def item(item_id: str, status: str = "COMPLIANT", severity: str = "HIGH", **details: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Id": item_id,
        "Title": f"title of {item_id}",
        "Status": status,
        "Severity": severity,
    }
    if details:
        entry["Details"] = details
    return entry


def listed(ssm: Any, resource: str, **request: Any) -> list[dict[str, Any]]:
    pages = ssm.get_paginator("list_compliance_items").paginate(
        ResourceIds=[resource], ResourceTypes=["ManagedInstance"], **request
    )
    return [entry for page in pages for entry in page["ComplianceItems"]]


def summaries(ssm: Any, **request: Any) -> dict[str, dict[str, Any]]:
    pages = ssm.get_paginator("list_compliance_summaries").paginate(**request)
    return {s["ComplianceType"]: s for page in pages for s in page["ComplianceSummaryItems"]}


@pytest.fixture
def nodes(emulator: SsmEmulator) -> list[str]:
    """Three managed nodes; the third terminated."""
    ids = [instance_id(number) for number in (1, 2, 3)]
    for node in ids:
        emulator.register_instance(node, CannedExecutor())
    emulator.register_instance(ids[2], CannedExecutor(), state="terminated")
    return ids


def test_a_put_is_listed_with_its_execution_summary_and_details(ssm: Any, nodes: list[str]) -> None:
    put(ssm, nodes[0], [item("run", reason="ok"), item("root@registry", "NON_COMPLIANT", "MEDIUM")])

    found = listed(ssm, nodes[0])

    assert [(e["Id"], e["Status"], e["Severity"]) for e in found] == [
        ("run", "COMPLIANT", "HIGH"),
        ("root@registry", "NON_COMPLIANT", "MEDIUM"),
    ]
    assert {e["ComplianceType"] for e in found} == {TYPE}
    assert {e["ResourceType"] for e in found} == {"ManagedInstance"}
    assert found[0]["Details"] == {"reason": "ok"}
    summary = found[0]["ExecutionSummary"]
    assert (summary["ExecutionTime"], summary["ExecutionId"], summary["ExecutionType"]) == (
        WHEN,
        "run-1",
        "run",
    )


def test_a_complete_put_overwrites_every_item_of_its_type_and_keeps_other_types(
    ssm: Any, nodes: list[str]
) -> None:
    """PutComplianceItems: "This call overwrites existing compliance information on the resource, so
    you must provide a full list of compliance items each time": items of the earlier put that the
    next one leaves out are gone; another compliance type on the same node stays."""
    put(ssm, nodes[0], [item("run"), item("root@registry"), item("ec2-user@registry")])
    put(ssm, nodes[0], [item("other")], ComplianceType="Custom:Other")

    later = {"ExecutionTime": WHEN + dt.timedelta(hours=6), "ExecutionId": "run-2"}
    put(ssm, nodes[0], [item("run", "NON_COMPLIANT")], ExecutionSummary=later, UploadType="COMPLETE")

    found = {(e["ComplianceType"], e["Id"]): e for e in listed(ssm, nodes[0])}
    assert sorted(found) == [("Custom:EcrFleetAuth", "run"), ("Custom:Other", "other")]
    assert found[(TYPE, "run")]["Status"] == "NON_COMPLIANT"
    assert found[(TYPE, "run")]["ExecutionSummary"]["ExecutionId"] == "run-2"
    assert found[("Custom:Other", "other")]["ExecutionSummary"]["ExecutionId"] == "run-1"


def test_an_empty_put_removes_the_type_from_the_node(ssm: Any, nodes: list[str]) -> None:
    put(ssm, nodes[0], [item("run")])
    put(ssm, nodes[0], [])

    assert listed(ssm, nodes[0]) == []
    assert summaries(ssm) == {}


def test_a_put_with_the_content_hash_of_the_one_recorded_is_ignored(ssm: Any, nodes: list[str]) -> None:
    """ItemContentHash: "If the content hashes match, the request to put compliance information is
    ignored" (the earlier put stands, its execution summary too)."""
    put(ssm, nodes[0], [item("run")], ItemContentHash="hash-1")
    again = {"ExecutionTime": WHEN + dt.timedelta(hours=1), "ExecutionId": "run-2"}

    put(ssm, nodes[0], [item("run", "NON_COMPLIANT")], ItemContentHash="hash-1", ExecutionSummary=again)
    (kept,) = listed(ssm, nodes[0])
    put(ssm, nodes[0], [item("run", "NON_COMPLIANT")], ItemContentHash="hash-2", ExecutionSummary=again)
    (replaced,) = listed(ssm, nodes[0])

    assert (kept["Status"], kept["ExecutionSummary"]["ExecutionId"]) == ("COMPLIANT", "run-1")
    assert (replaced["Status"], replaced["ExecutionSummary"]["ExecutionId"]) == ("NON_COMPLIANT", "run-2")


@pytest.mark.parametrize(
    ("resource", "request_fields", "code"),
    [
        ("unknown", {}, "InvalidResourceId"),
        ("terminated", {}, "InvalidResourceId"),
        ("managed", {"ResourceType": "EC2Instance"}, "InvalidResourceType"),
        ("managed", {"UploadType": "PARTIAL"}, "ValidationException"),
        ("managed", {"ComplianceType": "Custom:E"}, "ValidationException"),  # the model: Custom: and 2+
        ("managed", {"ComplianceType": "Custom:Ecr-Fleet"}, "ValidationException"),  # \w after the first
    ],
)
def test_what_a_put_is_refused_for(
    ssm: Any, nodes: list[str], resource: str, request_fields: dict[str, Any], code: str
) -> None:
    """InvalidResourceId: "The resource ID isn't valid" (a terminated node is no longer one: HARSHER);
    InvalidResourceType: "ManagedInstance is currently the only supported resource type"; PARTIAL "is
    only valid for association compliance"; the type's pattern is the model's."""
    target = {"unknown": instance_id(99), "terminated": nodes[2], "managed": nodes[0]}[resource]

    with pytest.raises(ClientError) as caught:
        put(ssm, target, [item("run")], **request_fields)

    assert error_code(caught) == code
    assert listed(ssm, nodes[0]) == []


def test_items_are_bounded_by_the_model(ssm: Any, nodes: list[str]) -> None:
    """botocore's model: at most 10,000 items; a title of at most 500 characters; detail names of
    1-64 characters and values of at most 4,096."""
    too_long_key = item("run")
    too_long_key["Details"] = {"k" * 65: "v"}
    too_long_value = item("run")
    too_long_value["Details"] = {"key": "v" * 4097}
    for items in (
        [item(f"i{n}") for n in range(10_001)],
        [{**item("run"), "Title": "t" * 501}],
        [too_long_key],
        [too_long_value],
    ):
        with pytest.raises(ClientError) as caught:
            put(ssm, nodes[0], items)
        assert error_code(caught) == "ValidationException"

    put(ssm, nodes[0], [item(f"i{n}") for n in range(10_000)])
    assert len(listed(ssm, nodes[0], MaxResults=50)) == 10_000


def test_two_items_with_one_id_are_refused(ssm: Any, nodes: list[str]) -> None:
    with pytest.raises(ClientError) as caught:
        put(ssm, nodes[0], [item("run"), item("run", "NON_COMPLIANT")])

    assert error_code(caught) == "InvalidItemContentException"


def test_at_most_ten_custom_types_per_node(ssm: Any, nodes: list[str]) -> None:
    """ComplianceTypeCountLimitExceededException: "You can specify a maximum of 10 different types"."""
    for number in range(10):
        put(ssm, nodes[0], [item("x")], ComplianceType=f"Custom:Type{number}")
    put(ssm, nodes[0], [item("y")], ComplianceType="Custom:Type3")  # a type it has: replaced

    with pytest.raises(ClientError) as caught:
        put(ssm, nodes[0], [item("x")], ComplianceType="Custom:Type10")

    assert error_code(caught) == "ComplianceTypeCountLimitExceededException"
    put(ssm, nodes[1], [item("x")], ComplianceType="Custom:Type10")  # per node


def test_listing_items_filters_and_pages(ssm: Any, nodes: list[str]) -> None:
    put(ssm, nodes[0], [item(f"u{n}@r", "NON_COMPLIANT" if n % 3 == 0 else "COMPLIANT") for n in range(25)])
    put(ssm, nodes[0], [item("other")], ComplianceType="Custom:Other")

    first = ssm.list_compliance_items(ResourceIds=[nodes[0]], ResourceTypes=["ManagedInstance"])
    failing = listed(ssm, nodes[0], Filters=[{"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}])
    ours = listed(ssm, nodes[0], Filters=[{"Key": "ComplianceType", "Values": [TYPE]}])
    by_prefix = listed(ssm, nodes[0], Filters=[{"Key": "Id", "Values": ["u1"], "Type": "BEGIN_WITH"}])

    assert len(first["ComplianceItems"]) == 10 and "NextToken" in first
    assert len(listed(ssm, nodes[0])) == 26
    assert {e["Id"] for e in failing} == {f"u{n}@r" for n in range(0, 25, 3)}
    assert len(ours) == 25
    assert {e["Id"] for e in by_prefix} == {"u1@r", *(f"u{n}@r" for n in range(10, 20))}
    assert listed(ssm, nodes[1]) == []  # a managed node with nothing recorded


@pytest.mark.parametrize(
    ("request_fields", "code"),
    [
        ({"ResourceIds": [instance_id(1), instance_id(2)]}, "ValidationException"),
        ({"ResourceTypes": ["ManagedInstance"]}, "ValidationException"),
        ({"ResourceIds": [instance_id(1)], "Filters": [{"Key": "Title", "Values": ["x"]}]}, "InvalidFilter"),
        (
            {
                "ResourceIds": [instance_id(1)],
                "Filters": [{"Key": "Status", "Values": ["x"], "Type": "LESS_THAN"}],
            },
            "InvalidFilter",
        ),
        ({"ResourceIds": [instance_id(99)]}, "InvalidResourceId"),
        ({"ResourceIds": [instance_id(1)], "ResourceTypes": ["EC2Instance"]}, "InvalidResourceType"),
    ],
)
def test_what_listing_items_is_refused_for(
    ssm: Any, nodes: list[str], request_fields: dict[str, Any], code: str
) -> None:
    """One resource id ("Currently, you can only specify one resource ID"; so naming none is refused);
    filter keys other than ComplianceType, Status, Severity and Id, and comparisons other than EQUAL,
    NOT_EQUAL and BEGIN_WITH, are InvalidFilter (CHOICE); an id that is no managed node is
    InvalidResourceId, a resource type other than ManagedInstance InvalidResourceType."""
    with pytest.raises(ClientError) as caught:
        ssm.list_compliance_items(**request_fields)

    assert error_code(caught) == code


def test_summaries_count_each_node_once_under_its_highest_severity(
    ssm: Any, emulator: SsmEmulator, nodes: list[str]
) -> None:
    """A node is NON_COMPLIANT for a type when any of its items is, counted under the highest
    severity among its non-compliant items; a compliant node under the highest among its items."""
    more = [instance_id(number) for number in (4, 5)]
    for node in more:
        emulator.register_instance(node, CannedExecutor())
    put(ssm, nodes[0], [item("run", severity="HIGH"), item("a@r", severity="LOW")])
    put(ssm, nodes[1], [item("run", severity="HIGH"), item("a@r", "NON_COMPLIANT", "MEDIUM")])
    put(ssm, more[0], [item("run", "NON_COMPLIANT", "LOW"), item("a@r", "NON_COMPLIANT", "HIGH")])
    put(ssm, more[1], [item("run", "NON_COMPLIANT", "INFORMATIONAL")])
    put(ssm, more[1], [item("other", "NON_COMPLIANT", "CRITICAL")], ComplianceType="Custom:Other")

    found = summaries(ssm)
    ours = summaries(ssm, Filters=[{"Key": "ComplianceType", "Values": [TYPE], "Type": "EQUAL"}])

    assert sorted(found) == ["Custom:EcrFleetAuth", "Custom:Other"]
    assert list(ours) == [TYPE]
    summary = found[TYPE]
    assert summary["CompliantSummary"]["CompliantCount"] == 1
    assert summary["CompliantSummary"]["SeveritySummary"]["HighCount"] == 1
    failing = summary["NonCompliantSummary"]
    assert failing["NonCompliantCount"] == 3
    assert {k: v for k, v in failing["SeveritySummary"].items() if v} == {
        "HighCount": 1,
        "MediumCount": 1,
        "InformationalCount": 1,
    }
    assert found["Custom:Other"]["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 1
    with pytest.raises(ClientError) as caught:
        summaries(ssm, Filters=[{"Key": "Status", "Values": ["COMPLIANT"]}])
    assert error_code(caught) == "InvalidFilter"
