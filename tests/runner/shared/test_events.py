"""The event model: real payloads from tests/events, and every way an event can be wrong."""

from __future__ import annotations

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth.shared.events import RunRequest
from ecr_fleet_auth.shared.invocations import InvalidEvent
from tests.support.event_samples import load_event
from tests.support.runner_world import World


def test_schedule_event_is_the_contract_one_and_takes_every_default() -> None:
    assert load_event("schedule") == contract.SCHEDULED_EVENT
    request = RunRequest.from_event(load_event("schedule"))
    assert request.source == "schedule"
    assert (request.action, request.instance_ids, request.registries, request.users) == (None,) * 4
    assert request.wait_seconds is None
    assert request.dry_run is False


def test_manual_event_without_source_is_manual() -> None:
    assert RunRequest.from_event(load_event("manual_empty")).source == "manual"


def test_every_field_parses_and_repeated_ids_collapse() -> None:
    request = RunRequest.from_event(load_event("manual_full"))
    assert request.action == "check"
    assert request.instance_ids == ("i-0123456789abcdef0", "i-89abcdef")
    assert request.registries == ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "public.ecr.aws")
    assert request.users == ("ec2-user", "ubuntu")
    assert request.wait_seconds == 120


# name in tests/events/invalid.json -> (field the message must name, words of the accepted form)
INVALID = {
    "not_an_object": ("event", "JSON object"),
    "unknown_field": ("instance_id", "accepted fields: source, action, dry_run, instance_ids"),
    "unknown_source": ("source", "'schedule' or 'manual'"),
    # The runner sets these itself, for the runs of instance events it makes (docs/operating/invoking.md).
    "source_instance_running": ("source", "set by the runner itself"),
    "source_tag_change": ("source", "set by the runner itself"),
    "source_instance_events": ("source", "'schedule' or 'manual'"),
    "unknown_action": ("action", "one of refresh, helper, check"),
    "action_wrong_case": ("action", "one of refresh, helper, check"),
    "dry_run_as_string": ("dry_run", "true or false"),
    "dry_run_as_number": ("dry_run", "true or false"),
    "instance_ids_as_string": ("instance_ids", "i-0123456789abcdef0"),
    "instance_ids_empty": ("instance_ids", "a list of 1 to"),
    "instance_id_malformed": ("instance_ids.1", "EC2 instance ids such as"),
    "instance_id_shell": ("instance_ids.0", "EC2 instance ids such as"),
    "instance_id_trailing_newline": ("instance_ids.0", "EC2 instance ids such as"),
    "registry_not_ecr": (
        "registries.0",
        "123456789012.dkr-ecr.eu-west-1.on.aws, public.ecr.aws or ecr-public.aws.com",
    ),
    "registry_short_account": ("registries.0", "public.ecr.aws"),
    "registry_with_path": ("registries.0", "public.ecr.aws"),
    "registries_comma_string": ("registries", "a list of 1 to 20 hosts"),
    "registries_too_many": ("registries", "a list of 1 to 20 hosts"),
    "user_leading_hyphen": ("users.0", "POSIX user names"),
    "user_with_space": ("users.0", "POSIX user names"),
    "users_auto_mixed": ("users", '["auto"] or a list'),
    "wait_seconds_negative": ("wait_seconds", "from 0 to 840"),
    "wait_seconds_too_long": ("wait_seconds", "from 0 to 840"),
    "wait_seconds_as_string": ("wait_seconds", "whole number of seconds"),
    "wait_seconds_as_bool": ("wait_seconds", "whole number of seconds"),
    "wait_seconds_fractional": ("wait_seconds", "whole number of seconds"),
}


def test_the_table_covers_every_invalid_event_file() -> None:
    assert set(INVALID) == set(load_event("invalid"))


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_event_is_rejected_naming_the_field_before_any_aws_call(world: World, name: str) -> None:
    world.launch(2)
    field, accepted = INVALID[name]
    with pytest.raises(InvalidEvent) as raised:
        world.invoke(load_event("invalid")[name])
    message = str(raised.value)
    assert message.startswith("invalid event: ")
    assert field in message
    assert accepted in message
    assert world.api_calls == {}, "no AWS call may precede validation"
    assert world.ssm.sent("SendCommand") == []


@pytest.mark.parametrize("source", contract.INSTANCE_EVENT_SOURCES)
def test_a_source_the_runner_sets_itself_is_refused_in_an_event_but_not_in_its_own_requests(
    source: str,
) -> None:
    with pytest.raises(InvalidEvent) as raised:
        RunRequest.from_event({"source": source, "action": "check"})
    assert str(raised.value) == (
        f"invalid event: source: {source!r} is set by the runner itself, for a run of instance events; "
        "expected 'schedule' or 'manual' (omit it for a manual run)"
    )
    # Another problem in the same event is still reported with it.
    with pytest.raises(InvalidEvent, match=r"source: .* \| action: "):
        RunRequest.from_event({"source": source, "action": "logout"})
    # The runner's own narrowed runs (triggers.handle) build the request directly.
    assert RunRequest(source=source, instance_ids=("i-0123456789abcdef0",)).source == source


def test_the_valid_twin_of_an_invalid_event_is_accepted(world: World) -> None:
    (instance_id,) = world.launch(1)
    report = world.invoke({"instance_ids": [instance_id], "users": ["ec2-user"], "wait_seconds": 60})
    assert [i["status"] for i in report["instances"]] == ["succeeded"]
    assert world.ssm.sent("SendCommand")[0]["Parameters"][contract.USERS] == ["ec2-user"]


def test_a_rejected_item_is_reported_once_in_the_words_of_json() -> None:
    with pytest.raises(InvalidEvent) as raised:
        RunRequest.from_event(load_event("invalid")["registry_not_ecr"])
    message = str(raised.value)
    assert message.count("registries") == 1, message
    assert "tuple" not in message
