"""Console test events and the dashboard: what operators meet besides the documentation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.events import RunRequest
from ecr_fleet_auth_cdk.console_events import REGISTRY_NAME, console_events
from ecr_fleet_auth_cdk.dashboard import SHOWN_STATUSES
from tests.support.template import Template, only, resources


def _resolve_join(value: Any) -> str:
    """Render Fn::Join, deploy-time values as TOKEN (they stand inside JSON strings)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve_join(part) for part in parts)
    return "TOKEN"


@pytest.mark.parametrize(("name", "event"), sorted(console_events().items()))
def test_console_event_is_a_valid_runner_event(name: str, event: dict[str, Any]) -> None:
    request = RunRequest.from_event(event)
    assert request.source == "manual", name
    assert len(name) <= 25, "the console shows test event names up to 25 characters"


def test_console_events_cover_the_everyday_runs() -> None:
    events = console_events()
    assert {"check-fleet-dry-run", "refresh-now", "helper-one-instance"} <= set(events)
    assert events["check-fleet-dry-run"] == {"action": "check", "dry_run": True}


def test_shareable_schema_is_named_for_the_runner(synthesized_template: Template) -> None:
    schema = only(synthesized_template, "AWS::EventSchemas::Schema")["Properties"]
    assert schema["RegistryName"] == REGISTRY_NAME
    assert schema["Type"] == "OpenApi3"
    function_id = next(
        k for k, r in resources(synthesized_template, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "handler.handler"
    )  # fmt: skip
    assert schema["SchemaName"] == {"Fn::Join": ["", ["_", {"Ref": function_id}, "-schema"]]}
    examples = json.loads(schema["Content"])["components"]["examples"]
    assert {name: example["value"] for name, example in examples.items()} == console_events()


def test_dashboard_reads_the_metrics_and_log_record_the_runner_emits(synthesized_template: Template) -> None:
    dashboard = only(synthesized_template, "AWS::CloudWatch::Dashboard")["Properties"]
    body = json.loads(_resolve_join(dashboard["DashboardBody"]))
    rows = [row for widget in body["widgets"] for row in widget["properties"].get("metrics", [])]
    named = {tuple(row[:2]) for row in rows if isinstance(row[0], str)}
    assert (contract.METRIC_NAMESPACE, contract.RUN_DURATION_METRIC) in named
    for status in SHOWN_STATUSES:
        assert (contract.METRIC_NAMESPACE, contract.status_metric_name(status)) in named
    for row in rows:
        if isinstance(row[0], str):
            dimensions = dict(zip(row[2:-1:2], row[3:-1:2], strict=True))
            assert dimensions["service"] == "EcrFleetAuth", "the stack's name, as the runner's STACK_NAME"
            assert dimensions[contract.METRIC_ACTION_DIMENSION] in contract.ACTIONS
            assert set(dimensions) == {"service", contract.METRIC_ACTION_DIMENSION}
    (query_widget,) = [w for w in body["widgets"] if w["type"] == "log"]
    assert f'filter message = \\"{contract.RUN_REPORT_LOG_MESSAGE}\\"' in json.dumps(
        query_widget["properties"]["query"]
    )
