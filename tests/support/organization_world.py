"""An organization for the runner's tests: the stack synthesized with organization context, and the
simulated organization the runner runs in (``localfleet.composition.simulated_organization``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecr_fleet_auth.shared.observability import metrics
from ecr_fleet_auth_cdk.member_stack import MEMBER_STACK_ID
from localfleet.clocks import SimulatedClock
from localfleet.composition.simulated_organization import SimulatedOrganization
from localfleet.harnesses.in_process_runner import InProcessRunner
from localfleet.harnesses.in_process_state_machine import InProcessStateMachine
from localfleet.harnesses.organization_fleet import populate
from localfleet.hosts.canned_agent import CannedRun
from localfleet.runner_environment import ORGANIZATION_SERVICES
from localfleet.stepfunctions import MOTO_CONFIG
from localfleet.synthesized_stack import Template, document_content, runner_environment, synthesize
from tests.support.runner_world import DOCUMENT, REGION, TAG_KEY, TAG_VALUE, Mailbox, use_runner_environment

HOME = "123456789012"
OTHER_REGION = "us-east-1"
STACK_SET = "EcrFleetAuth-Members"
ORGANIZATION_CONTEXT = {
    "organizationalUnitIds": "ou-ab12-cdef3456",
    "organizationId": "o-a1b2c3d4e5",
    "memberRegions": f"{REGION},{OTHER_REGION}",
}
TAGS = {"Name": "web", TAG_KEY: TAG_VALUE}


@dataclass(frozen=True)
class OrganizationStack:
    """The central stack synthesized with organization context, and its member template."""

    central: Template  # the central template
    member: Template  # the member template

    @classmethod
    def of(cls, templates: dict[str, Template]) -> OrganizationStack:
        return cls(templates["central"], templates["member"])

    @property
    def member_document(self) -> dict[str, Any]:
        """The agent document the StackSet creates in each member pair."""
        return document_content(self.member)

    @property
    def member_document_name(self) -> str:
        """The name the stack gives the runner for the member document (``MEMBER_DOCUMENT_NAME``)."""
        return str(runner_environment(self.central)["MEMBER_DOCUMENT_NAME"])


def synthesize_organization_stack(outdir: Path) -> dict[str, Template]:
    """Synthesize the app with ``ORGANIZATION_CONTEXT`` into ``outdir``: the central and member templates."""
    central = synthesize(ORGANIZATION_CONTEXT, outdir=str(outdir))["EcrFleetAuth"]
    member = json.loads((outdir / "EcrFleetAuth.members" / f"{MEMBER_STACK_ID}.template.json").read_text())
    return {"central": central, "member": member}


@dataclass
class InOrganization:
    """The runner in a simulated organization: the organization, the runner (its home pair's), the mail."""

    org: SimulatedOrganization
    runner: InProcessRunner
    mail: Mailbox

    def notifications(self) -> list[dict[str, Any]]:
        return self.mail.notifications()

    def sent(self, account: str, region: str) -> list[dict[str, Any]]:
        """The SendCommand requests that pair received."""
        return self.org.pair(account, region).ssm_endpoint.sent("SendCommand")


@contextlib.contextmanager
def runner_in_organization(
    monkeypatch: pytest.MonkeyPatch,
    stack: OrganizationStack,
    agent_document: dict[str, Any],
    moto_config: dict[str, Any] | None = None,
) -> Iterator[InOrganization]:
    """The runner with the central stack's environment, the home pair holding the stack's document, the
    notifications subscribed to; moto (STS, SNS, ...) on for its life (``moto_config``: its options)."""
    use_runner_environment(monkeypatch, stack.central, services=ORGANIZATION_SERVICES)
    with mock_aws(config=moto_config) if moto_config else mock_aws():  # type: ignore[arg-type]
        org = SimulatedOrganization(SimulatedClock(), stack_set_name=STACK_SET)
        try:
            org.home.register_document(DOCUMENT, agent_document)
            mail = Mailbox.subscribed()
            monkeypatch.setenv("TOPIC_ARN", mail.topic_arn)
            runner = InProcessRunner(org.home, monkeypatch, region=REGION, session=org.session())
            yield InOrganization(org, runner, mail)
        finally:
            org.close()
    metrics.clear_metrics()


# 51 accounts in two regions and the home pair: 103 pairs. At wait_seconds 60 a child runs one wave of
# 50 pairs, whole accounts only: three children of 25, 25 and 1 accounts (the home account in the first).
MEMBERS = [f"{100_000_000_001 + index:012d}" for index in range(51)]
RUN = {"action": "refresh", "wait_seconds": 60}


@dataclass
class StateMachineRun(InOrganization):
    """The organization's state machine (the stack's), its Lambda tasks reaching the runner in the
    organization (one world, on one clock): ``MEMBERS``' 51 accounts in two regions and the home pair."""

    machine: InProcessStateMachine
    session: boto3.Session  # the runner's clients'


@contextlib.contextmanager
def state_machine_run(
    monkeypatch: pytest.MonkeyPatch, stack: OrganizationStack, agent_document: dict[str, Any]
) -> Iterator[StateMachineRun]:
    """Every pair with one instance whose agent runs 30 s; the state machine created, nothing started."""
    with runner_in_organization(monkeypatch, stack, agent_document, moto_config=MOTO_CONFIG) as running:
        org, runner = running.org, running.runner
        document = (stack.member_document_name, stack.member_document)
        members = [(account, region) for account in MEMBERS for region in (REGION, OTHER_REGION)]
        populate(
            org,
            [(org.home_account, org.home_region), *members],
            document=document,
            instances=1,
            tags=lambda _: TAGS,
            agent=lambda _: CannedRun(duration=30),
        )
        machine = InProcessStateMachine(
            stack.central,
            monkeypatch,
            worlds=lambda event, at: runner,  # one organization, on one clock
            start=org.clock.monotonic(),
        )
        try:
            yield StateMachineRun(org, runner, running.mail, machine, runner.session)
        finally:
            machine.close()


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents the runner printed (Powertools' metrics, one JSON line each)."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]
