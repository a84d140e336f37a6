"""A command that ends without reaching an instance: each instance is reported for what the command said.

Run Command can end a whole command with a command-level StatusDetails and no invocation at all
(SSM API reference, Command.StatusDetails; SSM User Guide, "Understanding command statuses"):
"Rate Exceeded: The number of managed nodes targeted by the command exceeded the account limit for
pending invocations. The system has canceled the command before running it on any managed node";
command-level "Access Denied"; "No Instances In Tag"; "Incomplete" with this instance not among its
targets. Reading only ``Status`` and the invocations, every instance became ``failed`` /
``no_invocation``, whose next step blames the tag. Each detail is its own reason with its own next step
(``troubleshooting.NEXT_STEPS``, the README's table), and the command's detail is in ``detail``.
"""

from __future__ import annotations

from typing import Any

import pytest

from ecr_fleet_auth.shared.troubleshooting import NEXT_STEPS
from localfleet.hosts.canned_agent import CannedRun
from tests.support.runner_world import World


def reported(report: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        i["instance_id"]: (i["status"], i["reason"], i["detail"].get("command_status", ""))
        for i in report["instances"]
    }


@pytest.mark.parametrize("narrowed", [False, True], ids=["by tag", "by instance id"])
def test_a_command_over_the_accounts_pending_invocations_is_reported_rate_exceeded(
    world: World, narrowed: bool
) -> None:
    """Rate Exceeded: "The system has canceled the command before running it on any managed node"
    (Command.StatusDetails). Nothing ran on the instances: failed, rate_exceeded, and the e-mail says
    what to do about the account's pending invocations, not about the tag."""
    world.engine.pending_invocation_limit = 2
    fleet = world.launch(3)
    event = {"instance_ids": fleet} if narrowed else {}

    report = world.invoke(event)

    assert reported(report) == dict.fromkeys(fleet, ("failed", "rate_exceeded", "Rate Exceeded"))
    assert all(world.engine.commanded(i) == 0 for i in fleet)
    (notification,) = world.notifications()
    assert NEXT_STEPS["rate_exceeded"] in notification["Message"]
    assert NEXT_STEPS["no_invocation"] not in notification["Message"]


def test_a_command_none_of_whose_targets_the_sender_may_command_is_reported_command_access_denied(
    world: World,
) -> None:
    """Command-level Access Denied ends the command with no invocation ("Understanding command
    statuses"): the sender's role, not the instances, is what to fix."""
    fleet = world.launch(2, commandable=False)

    report = world.invoke({})

    assert reported(report) == dict.fromkeys(fleet, ("failed", "command_access_denied", "Access Denied"))


def test_a_tag_no_managed_node_carries_is_reported_no_instances_in_tag(world: World) -> None:
    """No Instances In Tag: SSM resolved the target tag to no managed node ("Understanding command
    statuses"), though EC2 listed the instance tagged (SSM's copy of its tags lags)."""
    (instance,) = world.launch()
    world.node(instance).tags = {}

    report = world.invoke({})

    assert reported(report) == {instance: ("failed", "no_instances_in_tag", "No Instances In Tag")}


def test_an_instance_an_incomplete_command_never_targeted_is_reported_command_incomplete(
    world: World,
) -> None:
    """Incomplete: "The command was attempted on all managed nodes and one or more invocations doesn't
    have a value of Success but not enough invocations failed for the status to be Failed"
    (Command.StatusDetails): the instance SSM left out of the targets is reported for the command."""
    world.configure(MAX_ERRORS="5")
    (failing,) = world.launch(agent=CannedRun("", "boom", exit_code=2, duration=1))
    (left_out,) = world.launch()
    world.node(left_out).tags = {}  # SSM does not resolve it among the tag's targets

    report = world.invoke({})

    assert reported(report)[left_out] == ("failed", "command_incomplete", "Incomplete")
    assert reported(report)[failing][:2] == ("failed", "command_failed")


def test_a_command_that_ran_elsewhere_leaves_an_untargeted_instance_no_invocation(world: World) -> None:
    """After Success the command ran on its targets; an instance it never listed was not one of them
    (SSM's tags lag EC2's): no_invocation, as before."""
    (ran,) = world.launch()
    (left_out,) = world.launch()
    world.node(left_out).tags = {}

    report = world.invoke({})

    assert reported(report) == {
        ran: ("succeeded", "ok", ""),
        left_out: ("failed", "no_invocation", "Success"),
    }
