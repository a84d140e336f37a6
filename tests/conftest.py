"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.workermanage import WorkerController

from localfleet.synthesized_stack import use_pinned_node
from tests.support.parallel import (
    GroupScheduling,
    configure_node,
    group_and_order,
    make_scheduler,
    once_per_run,
)
from tests.support.service_models import share_service_models
from tests.support.template import Template, run_command_script, synthesize

# jsii and the CDK CLI run on the Node.js package.json pins, in every test as under make.
use_pinned_node()
# No test may reach real AWS: no instance metadata lookups, and fake credentials so that
# nothing on this machine (a profile, a role) is ever used.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)
share_service_models()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    group_and_order(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: WorkerController) -> None:
    configure_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> GroupScheduling | None:
    return make_scheduler(config, log)


@pytest.fixture(scope="session")
def default_synthesis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Path]:
    """The default stack synthesized once per run (by the first xdist worker that needs it)."""
    templates, outdir = once_per_run(
        tmp_path_factory, "cdk.out", {"context": "cdk.json"}, lambda folder: synthesize(outdir=str(folder))
    )
    assert isinstance(templates, dict)
    return templates["EcrFleetAuth"], outdir


@pytest.fixture(scope="session")
def synthesized_outdir(default_synthesis: tuple[Template, Path]) -> Path:
    """Where the default stack was synthesized: its assets are staged there (read-only)."""
    return default_synthesis[1]


@pytest.fixture(scope="session")
def synthesized_template(default_synthesis: tuple[Template, Path]) -> Template:
    """The default stack's template, synthesized with the context in cdk.json (cdk-nag on)."""
    return default_synthesis[0]


@pytest.fixture(scope="session")
def agent_script(synthesized_template: Template) -> str:
    """The document's shell step from the synthesized template, as SSM writes it to _script.sh."""
    return run_command_script(synthesized_template)
