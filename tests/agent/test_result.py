"""The report and its one result line (agent/result.py): compact, within the limit, problems kept."""

from __future__ import annotations

import json

import pytest

from agent.result import MESSAGE_MAX_CHARS, Report, result_line


def big_result(users: int, registries: int) -> dict[str, object]:
    report = Report("check")
    report.host = {
        "os": "amzn-2023",
        "arch": "x86_64",
        "docker": "25.0.3",
        "aws_cli": "2.15.0",
        "helper": None,
    }
    for index in range(users):
        user = report.user(f"user{index:02d}")
        for number in range(registries):
            registry = f"{100000000000 + number}.dkr.ecr.eu-west-1.amazonaws.com"
            user.registries[registry] = {"state": "logged_in", "expires_at": "2026-11-27T18:00:00Z"}
    return report.result()


def test_result_line_is_one_compact_json_line() -> None:
    line = result_line(big_result(users=1, registries=1))
    assert "\n" not in line and ", " not in line
    assert json.loads(line)["users"][0]["user"] == "user00"


@pytest.mark.parametrize(("users", "registries"), [(50, 1), (3, 20), (1, 20), (50, 20)])
def test_result_line_stays_within_the_limit_and_says_what_it_dropped(users: int, registries: int) -> None:
    result = big_result(users, registries)
    line = result_line(result)
    assert len(line.encode()) <= 2000
    parsed = json.loads(line)
    kept = len(parsed["users"])
    assert kept + parsed.get("users_truncated", 0) == users
    assert parsed["outcome"] == result["outcome"] and parsed["reason"] == result["reason"]
    if kept:
        assert parsed["users"] == result["users"][:kept], "the users kept are whole and in order"


def test_truncation_keeps_the_users_with_problems() -> None:
    result = big_result(users=50, registries=3)
    users = result["users"]
    assert isinstance(users, list)
    users[40]["reason"] = "config_corrupt"
    next(iter(users[45]["registries"].values()))["error"] = "login_failed"
    parsed = json.loads(result_line(result))
    names = [user["user"] for user in parsed["users"]]
    assert "user40" in names and "user45" in names
    assert names == sorted(names), "the original order is kept"
    assert len(names) + parsed["users_truncated"] == 50


def test_outcome_follows_changes_and_problems() -> None:
    report = Report("refresh")
    assert (report.result()["outcome"], report.result()["reason"]) == ("unchanged", "ok")
    report.changes += 1
    assert report.result()["outcome"] == "changed"
    user = report.user("alice")
    report.problem("config_corrupt", "alice: bad json", user)
    report.problem("login_failed", "bob: 401")
    assert (report.result()["outcome"], report.result()["reason"]) == ("failed", "config_corrupt")
    assert user.as_dict()["reason"] == "config_corrupt"
    check = Report("check")
    check.problem("config_corrupt", "alice: bad json")
    assert (check.result()["outcome"], check.result()["reason"]) == ("unchanged", "config_corrupt")


@pytest.mark.parametrize("length", [299, 300, 301, 450, 5000])
def test_a_long_message_is_cut_at_a_word_end_and_marked(length: int) -> None:
    """A message over the limit ends with "..." after a whole word, never inside one (an acceptance
    pass read "...helper faile" as a reason of its own); one within the limit is kept whole."""
    words = "the helper could not be installed: checksum mismatch for docker-credential-ecr-login " * 80
    message = words[:length]
    shown = Report("check").result(message=message)["message"]
    assert len(shown) <= MESSAGE_MAX_CHARS
    if length <= MESSAGE_MAX_CHARS:
        assert shown == message
    else:
        assert shown.endswith("...")
        kept = shown[: -len("...")]
        assert message.startswith(kept)
        assert message[len(kept)] in " ;,:", (kept[-12:], message[len(kept) : len(kept) + 5])


def test_a_message_of_one_long_word_is_still_cut_within_the_limit() -> None:
    shown = Report("check").result(message="x" * 1000)["message"]
    assert len(shown) == MESSAGE_MAX_CHARS and shown.endswith("...")
