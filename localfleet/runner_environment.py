"""The runner's environment for running it in this process, built from the synthesized template.

The tests and the benchmarks start the real handler against the simulator with the environment the stack
sets on the function (each deploy-time reference replaced by the world's own name: ``deploy_time``), test
credentials and a region, and nothing of the calling process's AWS or Powertools settings. Its endpoints
point at loopback and are never dialled: the simulator answers in this process before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol

from .identity import registry_name
from .synthesized_stack import Template, resolved_runner_environment

# Loopback, a port nothing listens on: a request that escaped the simulator fails at once, never leaves.
NEVER_DIALLED = "http://127.0.0.1:9"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# What the calling process may have set that the function would not have (a profile, Powertools' options).
NOT_INHERITED = ("AWS_", "POWERTOOLS_")


# What CloudFormation fills in at deploy time, as every local world names it (``deploy_time``).
DOCUMENT_NAME = "EcrFleetAuth-Agent"
OUTPUT_LOG_GROUP = "/ecr-fleet-auth/run-command"
CLAIM_TABLE_NAME = "EcrFleetAuth-NewInstanceClaims"
TOPIC_NAME = "ecr-fleet-auth"  # the world creates it (moto's SNS in this process), so TOPIC_ARN is its ARN
# The services the simulator answers for the runner, by kind of world (``local_runner_environment``'s
# ``services``); the others (SNS, ...) are moto's in this process.
ACCOUNT_SERVICES = ("SSM", "EC2")
ORGANIZATION_SERVICES = (*ACCOUNT_SERVICES, "STS", "CLOUDFORMATION")  # reached through its routing


def deploy_time(account: str, region: str, runs_bucket: str) -> dict[str, str]:
    """The deploy-time values of a world whose runner lives in ``account`` and ``region`` (an
    organization's home pair): the stack's document, the account's own registry (an organization's
    stack writes REGISTRIES as it is, so there it is not used), the Run Command output's log group,
    the notifications topic, the new-instance claim table, the state machine's ``runs_bucket``."""
    return {
        "DOCUMENT_NAME": DOCUMENT_NAME,
        "REGISTRIES": registry_name(account, region),
        "OUTPUT_LOG_GROUP": OUTPUT_LOG_GROUP,
        "TOPIC_ARN": f"arn:aws:sns:{region}:{account}:{TOPIC_NAME}",
        "CLAIM_TABLE_NAME": CLAIM_TABLE_NAME,
        "RUNS_BUCKET_NAME": runs_bucket,
    }


class Patcher(Protocol):
    def setenv(self, name: str, value: str) -> None: ...

    def delenv(self, name: str) -> None: ...


def local_runner_environment(
    template: Template,
    deploy_time: Mapping[str, str],
    *,
    region: str,
    services: Sequence[str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The runner's environment as ``template`` sets it, deploy-time values from ``deploy_time``.

    ``services``: each gets ``AWS_ENDPOINT_URL_<SERVICE>`` (the others keep their real endpoints, which a
    simulator patched onto the session answers); None: ``AWS_ENDPOINT_URL`` for every service.
    ``overrides``: settings the caller chooses over the template's (a benchmark's quieter log level)."""
    if services is None:
        endpoints = {"AWS_ENDPOINT_URL": NEVER_DIALLED}
    else:
        endpoints = {f"AWS_ENDPOINT_URL_{service.upper()}": NEVER_DIALLED for service in services}
    return {
        **resolved_runner_environment(template, deploy_time),
        **CREDENTIALS,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **endpoints,
        **(overrides or {}),
    }


def use_environment(patch: Patcher, environment: Mapping[str, str]) -> None:
    """Make ``environment`` this process's (undone with ``patch``), none of its own AWS or Powertools
    settings left over."""
    for name in [name for name in os.environ if name.startswith(NOT_INHERITED)]:
        patch.delenv(name)
    for name, value in environment.items():
        patch.setenv(name, value)
