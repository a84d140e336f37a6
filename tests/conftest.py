"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os

import pytest

from infra.document.script import run_command_lines


def require(condition: bool, what: str) -> None:
    """Skip locally when a prerequisite is missing; fail under CI, saying what is missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"prerequisite missing under CI: {what}")
    pytest.skip(f"prerequisite missing: {what}")


@pytest.fixture(scope="session")
def agent_script() -> str:
    """The document's shell step as SSM writes it to _script.sh (runCommand joined by newlines)."""
    return "\n".join(run_command_lines()) + "\n"
