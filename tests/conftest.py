"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localfleet.synthesized_stack import use_pinned_node
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


def require(condition: bool, what: str) -> None:
    """Skip locally when a prerequisite is missing; fail under CI, saying what is missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"prerequisite missing under CI: {what}")
    pytest.skip(f"prerequisite missing: {what}")


@pytest.fixture(scope="session")
def synthesized_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the default stack was synthesized: its assets are staged there."""
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def synthesized_template(synthesized_outdir: Path) -> Template:
    """The default stack's template, synthesized with the context in cdk.json (cdk-nag on)."""
    return synthesize(outdir=str(synthesized_outdir))["EcrFleetAuth"]


@pytest.fixture(scope="session")
def agent_script(synthesized_template: Template) -> str:
    """The document's shell step from the synthesized template, as SSM writes it to _script.sh."""
    return run_command_script(synthesized_template)
