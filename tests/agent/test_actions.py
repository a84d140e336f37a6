"""What the actions share (agent/actions.py): one user's surprise is that user's problem only."""

from __future__ import annotations

import pytest

from agent.actions import Run
from agent.result import Report


def test_an_unexpected_error_for_one_user_is_that_users_problem_and_the_others_go_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No per-user surprise (a bug, an OS error nobody foresaw) may stop the other users: it is
    reported as internal_error for that user, with its traceback on stderr, and the step goes on."""
    run = Run.__new__(Run)
    run.report = Report("refresh")
    users = [(name, run.report.user(name), None) for name in ("alice", "bob", "carol")]
    seen = []

    def step(account: str, user: object, auth_file: object) -> None:
        seen.append(account)
        if account == "bob":
            raise RecursionError("maximum recursion depth exceeded")

    done = run.per_user(users, step)

    assert seen == ["alice", "bob", "carol"]
    assert [entry[0] for entry in done] == ["alice", "carol"]
    result = run.report.result()
    assert (result["outcome"], result["reason"]) == ("failed", "internal_error")
    assert result["message"] == "bob: unexpected RecursionError"
    assert [user.get("reason") for user in result["users"]] == [None, "internal_error", None]
    assert "RecursionError" in capsys.readouterr().err
