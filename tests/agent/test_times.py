"""Timestamps (agent/times.py) as the AWS CLI prints them."""

from __future__ import annotations

import pytest

from agent.times import format_time, parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T18:00:00+00:00", "2026-11-27T18:00:00Z"),
        ("2026-11-27T18:00:00.123000+00:00", "2026-11-27T18:00:00Z"),
        ("2026-11-27T20:00:00+02:00", "2026-11-27T18:00:00Z"),
        ("2026-11-27T18:00:00Z", "2026-11-27T18:00:00Z"),
        (1795802400.0, "2026-11-27T18:00:00Z"),
    ],
)
def test_parse_time_accepts_what_the_aws_cli_prints(value: object, expected: str) -> None:
    assert format_time(parse_time(value)) == expected


def test_parse_time_rejects_garbage() -> None:
    assert parse_time("tomorrow") is None
    assert parse_time(None) is None
