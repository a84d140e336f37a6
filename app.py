#!/usr/bin/env python3
"""CDK app: one ecr-fleet-auth stack per configured region."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from ecr_fleet_auth.settings import SettingsError
from infra.config import DeploymentConfig
from infra.ecr_fleet_auth_stack import EcrFleetAuthStack
from infra.nag import add_checks


def build_app(app: cdk.App) -> list[EcrFleetAuthStack]:
    config = DeploymentConfig.from_context(app.node.try_get_context)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    stacks = []
    if not config.regions:
        env = cdk.Environment(account=account, region=os.environ.get("CDK_DEFAULT_REGION"))
        stacks.append(EcrFleetAuthStack(app, config.stack_name, config=config, env=env))
    for region in config.regions:
        env = cdk.Environment(account=account, region=region)
        stacks.append(
            EcrFleetAuthStack(
                app, f"{config.stack_name}-{region}", config=config, env=env, stack_name=config.stack_name
            )
        )
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
