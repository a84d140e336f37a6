"""Outcomes and reason codes (agent/outcomes.py): every code the runner relies on is defined."""

from __future__ import annotations

from agent import outcomes


def test_contract_reason_codes_are_all_defined() -> None:
    required = {
        "ok",
        "docker_missing",
        "aws_cli_missing",
        "no_credentials",
        "login_failed",
        "helper_install_failed",
        "checksum_mismatch",
        "config_corrupt",
        "config_unsafe",
        "locked",
        "unsupported_os",
    }
    defined = {value for name, value in vars(outcomes).items() if name.isupper() and isinstance(value, str)}
    assert required <= defined
