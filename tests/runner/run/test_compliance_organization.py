"""SSM Compliance of an organization run through its state machine (issue 23's plan, children, merge).

Each child writes its pairs' compliance with that pair's own client (``runner``); the merge adds the
children's tallies into the one report it publishes, and so its ``ComplianceNotWritten`` metric, as one
invocation's report does. PutComplianceItems (SSM API reference) writes one resource's items per call.
"""

from __future__ import annotations

import json

import pytest

from ecr_fleet_auth.shared import contract
from tests.support.organization_world import MEMBERS, RUN, emf_documents
from tests.support.organization_world import StateMachineRun as Run


def test_the_merged_report_and_metric_hold_every_childs_compliance(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """103 pairs with one instance each, three children: every instance written, the merged report's
    ``compliance`` their sum (the children's reports' added), ComplianceNotWritten 0 once, from the merge."""
    described = run.machine.run(RUN, name="compliance-1")

    assert described["status"] == "SUCCEEDED", described
    report = run.machine.report(described)
    written = sum(len(pair.ssm_endpoint.sent("PutComplianceItems")) for pair in run.org.pairs.values())
    assert written == report["summary"]["total"] == 1 + 2 * len(MEMBERS)
    assert report["compliance"] == {
        "type": contract.compliance_type("EcrFleetAuth"),
        "written": written,
        "not_managed": 0,
        "failed": 0,
        "not_written": 0,
    }
    documents = emf_documents(capsys.readouterr().out)
    not_written = [
        d[contract.COMPLIANCE_NOT_WRITTEN_METRIC]
        for d in documents
        if contract.COMPLIANCE_NOT_WRITTEN_METRIC in d
    ]
    assert not_written == [[0.0]], "published once, by the merge (children publish nothing)"


def test_an_organization_dry_run_writes_and_reports_no_compliance(run: Run) -> None:
    described = run.machine.run({**RUN, "dry_run": True}, name="compliance-dry")

    report = run.machine.report(described)
    assert report["dry_run"] is True
    assert "compliance" not in report
    assert all(not pair.ssm_endpoint.sent("PutComplianceItems") for pair in run.org.pairs.values())
    assert json.loads(described["output"])["summary"]["total"] == report["summary"]["total"]
