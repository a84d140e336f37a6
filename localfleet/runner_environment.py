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

from .synthesized_stack import Template, resolved_runner_environment

# Loopback, a port nothing listens on: a request that escaped the simulator fails at once, never leaves.
NEVER_DIALLED = "http://127.0.0.1:9"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# What the calling process may have set that the function would not have (a profile, Powertools' options).
NOT_INHERITED = ("AWS_", "POWERTOOLS_")


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
