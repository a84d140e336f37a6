"""An emulator per test (tests/support/ssm_emulator.py: its clients and documents)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfleet.ssm import SsmEmulator
from tests.support.ssm_emulator import DOCUMENT, client_for, shell_document


@pytest.fixture
def emulator() -> Iterator[SsmEmulator]:
    with SsmEmulator() as running:
        running.register_document(DOCUMENT, shell_document(["echo '{{ Action }}'"]))
        yield running


@pytest.fixture
def ssm(emulator: SsmEmulator) -> Any:
    return client_for(emulator)
