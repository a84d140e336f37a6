"""Fixtures for the runner's tests: the world of tests/support/runner_world.py, in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from ecr_fleet_auth.shared.observability import metrics
from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_account import SimulatedAccount
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.runner_environment import ACCOUNT_SERVICES
from tests.support.organization_world import (
    OrganizationStack,
    StateMachineRun,
    state_machine_run,
    synthesize_organization_stack,
)
from tests.support.parallel import once_per_run
from tests.support.runner_world import CLAIM_TABLE, DOCUMENT, REGION, World, use_runner_environment
from tests.support.template import Template, document_content


@pytest.fixture(scope="session")
def agent_document(synthesized_template: Template) -> dict[str, Any]:
    """The stack's Command document, as SSM stores it."""
    return document_content(synthesized_template)


@pytest.fixture(scope="session")
def organization_stack(tmp_path_factory: pytest.TempPathFactory) -> OrganizationStack:
    """The stack synthesized with organization context, once per run (by the first xdist worker that
    needs it; the others read its templates)."""
    templates, _ = once_per_run(
        tmp_path_factory, "cdk.out-organization", {"context": "organization"}, synthesize_organization_stack
    )
    assert isinstance(templates, dict)
    return OrganizationStack.of(templates)


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, agent_document: dict[str, Any], synthesized_template: Template
) -> Iterator[World]:
    use_runner_environment(monkeypatch, synthesized_template, services=ACCOUNT_SERVICES)
    account = SimulatedAccount(SimulatedClock())
    account.register_document(DOCUMENT, agent_document)
    runner = InProcessRunner(account, monkeypatch, region=REGION)
    with mock_aws():
        account.create_tables(synthesized_template, CLAIM_TABLE)  # moto's DynamoDB, in this process
        yield World(account, runner, monkeypatch)
    account.close()
    metrics.clear_metrics()


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, organization_stack: OrganizationStack, agent_document: dict[str, Any]
) -> Iterator[StateMachineRun]:
    """An organization run through the stack's state machine (tests/support/organization_world.py)."""
    with state_machine_run(monkeypatch, organization_stack, agent_document) as running:
        yield running
