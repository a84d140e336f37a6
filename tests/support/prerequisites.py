"""What a test needs from the machine: skipped locally when missing, a failure under CI."""

from __future__ import annotations

import os

import pytest


def require(condition: bool, what: str) -> None:
    """Skip locally when a prerequisite is missing; fail under CI, saying what is missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"prerequisite missing under CI: {what}")
    pytest.skip(f"prerequisite missing: {what}")
