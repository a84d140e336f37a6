"""How parameters reach a shell step depends on the node's SSM agent, as on AWS.

``interpolationType: ENV_VAR`` makes the agent export ``SSM_<name>`` only from agent 3.3.2746.0 on
(SSM User Guide, "Troubleshooting parameter handling issues": "Verify SSM Agent version is 3.3.2746.0
or later", "Add fallback logic for older agent versions: if [ -z "${SSM_parameterName+x}" ]; then
export SSM_parameterName="{{parameterName}}" fi"); every agent replaces ``{{ name }}`` in the step
("Data elements and parameters": the ENV_VAR example runs ``echo {{Message}}``). The stack's document
carries that fallback (``infra/document/script.py``, ``parameter_fallback_lines``); here it runs in a
real shell under both kinds of agent, with the stack's own parameter definitions.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth_cdk.document.script import parameter_fallback_lines
from localfleet.hosts.executors import CannedExecutor, SubprocessExecutor
from localfleet.ssm import SsmEmulator
from localfleet.ssm.models.managed_nodes import ManagedInstance
from tests.support.ssm_emulator import client_for, instance_id
from tests.support.template import Template, document_content

OLD_AGENT, NEW_AGENT = "3.3.1142.0", "3.3.2746.0"
PARAMETERS = {
    contract.ACTION: "refresh",
    contract.REGISTRIES: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    contract.USERS: "auto",
    contract.HELPER_VERSION: "0.12.0",
    contract.RELEASE_BASE_URL: contract.DEFAULT_RELEASE_BASE_URL,
    contract.KEEP_USER_DOCKER_LOGIN: "false",
}


def fallback_document(synthesized_template: Template) -> dict[str, Any]:
    """The stack's document with its step reduced to the fallback and a print of what the step sees."""
    document = document_content(synthesized_template)
    step = document["mainSteps"][0]
    step["inputs"]["runCommand"] = [*parameter_fallback_lines(), "env | grep '^SSM_' | sort"]
    return document


def run(emulator: SsmEmulator, node: ManagedInstance) -> dict[str, str]:
    ssm = client_for(emulator)
    command = ssm.send_command(
        DocumentName="Fallback",
        InstanceIds=[node.instance_id],
        Parameters={name: [value] for name, value in PARAMETERS.items()},
    )["Command"]["CommandId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = ssm.get_command_invocation(CommandId=command, InstanceId=node.instance_id)
        if answer["Status"] not in ("Pending", "InProgress", "Delayed"):
            break
        time.sleep(0.1)
    assert answer["Status"] == "Success", answer
    return dict(line.split("=", 1) for line in answer["StandardOutputContent"].splitlines())


@pytest.fixture
def emulator(synthesized_template: Template) -> Any:
    with SsmEmulator() as running:
        running.register_document("Fallback", fallback_document(synthesized_template))
        yield running


def test_an_agent_older_than_3_3_2746_sets_no_parameter_variables_and_the_fallback_passes_them(
    emulator: SsmEmulator,
) -> None:
    recorded = CannedExecutor()
    old = emulator.register_instance(instance_id(1), recorded, agent_version=OLD_AGENT)
    run_recorded(emulator, old)
    assert not [name for name in recorded.last_env if name.startswith("SSM_")]
    # ... and yet the step sees every parameter, through the document's {{ }} fallback.
    shell = emulator.register_instance(instance_id(2), SubprocessExecutor(), agent_version=OLD_AGENT)
    assert run(emulator, shell) == {f"SSM_{name}": value for name, value in PARAMETERS.items()}


def test_an_agent_from_3_3_2746_exports_the_parameters_itself(emulator: SsmEmulator) -> None:
    recorded = CannedExecutor()
    new = emulator.register_instance(instance_id(1), recorded, agent_version=NEW_AGENT)
    run_recorded(emulator, new)
    assert {k: v for k, v in recorded.last_env.items() if k.startswith("SSM_")} == {
        f"SSM_{name}": value for name, value in PARAMETERS.items()
    }
    shell = emulator.register_instance(instance_id(2), SubprocessExecutor(), agent_version="3.3.4364.0")
    assert run(emulator, shell) == {f"SSM_{name}": value for name, value in PARAMETERS.items()}


def run_recorded(emulator: SsmEmulator, node: ManagedInstance) -> None:
    """Send to a node whose executor only records the script and environment it was handed."""
    client_for(emulator).send_command(
        DocumentName="Fallback",
        InstanceIds=[node.instance_id],
        Parameters={name: [value] for name, value in PARAMETERS.items()},
    )
    assert emulator.wait_idle(10)
