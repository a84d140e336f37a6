#!/usr/bin/env python3
"""The repository's CDK app, a user of the construct library like any other: cdk.json's context
(or ``-c key=value``) read through the settings table into ``EcrFleetAuth``'s props, one stack per
configured region holding one ``EcrFleetAuth``.

The construct's id is ``Default``, which CDK leaves out of logical ids and names: each stack's
resources keep the logical ids they had when the stack built them itself, so a deploy replaces
nothing (tests/infra/test_construct.py holds the app to a bare stack with the construct).
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from ecr_fleet_auth.shared.settings import SettingsError
from ecr_fleet_auth_cdk import EcrFleetAuth, add_checks
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.fleet_auth import DEFAULT_ID


def build_app(app: cdk.App) -> list[cdk.Stack]:
    config = DeploymentConfig.from_context(app.node.try_get_context)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    # No regions: one stack in the CLI's region; else one per region, each named stackName.
    placements = (
        [(config.stack_name, os.environ.get("CDK_DEFAULT_REGION"), None)]
        if not config.regions
        else [(f"{config.stack_name}-{region}", region, config.stack_name) for region in config.regions]
    )
    stacks = []
    for stack_id, region, stack_name in placements:
        stack = cdk.Stack(
            app, stack_id, env=cdk.Environment(account=account, region=region), stack_name=stack_name
        )
        EcrFleetAuth(stack, DEFAULT_ID, **config.props()).add_outputs(export_prefix=stack.stack_name)
        stacks.append(stack)
    add_checks(app)
    return stacks


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
    except SettingsError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
