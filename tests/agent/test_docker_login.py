"""Verifying a token as docker login does (agent/docker_login.py): what a refusal is called."""

from __future__ import annotations

from agent.docker_login import login_failure


def test_a_refused_login_is_named_by_the_registrys_refusal() -> None:
    """docker tries https, then http, and ends with the last endpoint's error."""
    diagnostics = (
        'level=info msg="Error logging in to endpoint, trying next endpoint" error="login attempt to '
        'https://r/v2/ failed with status: 401 Unauthorized"\n'
        'level=info msg="Error logging in to endpoint, trying next endpoint" '
        'error="Get http://r/v2/: refused"\n'
        "Get http://r/v2/: connection refused\n"
    )
    assert login_failure(diagnostics) == "login attempt to https://r/v2/ failed with status: 401 Unauthorized"
    assert login_failure("Get http://r/v2/: connection refused\n") == "Get http://r/v2/: connection refused"
