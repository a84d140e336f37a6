"""The runner's deployed configuration: environment variables set by the stack.

The stack builds the environment with ``RunnerSettings.environment(...)`` and the
runner reads it back with ``RunnerSettings.from_environment()``, so the variable
names exist only here. Each variable is the upper-cased field name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from . import contract

RegistryHost = Annotated[str, StringConstraints(pattern=contract.REGISTRY_PATTERN)]
UserName = Annotated[str, StringConstraints(pattern=contract.USER_NAME_PATTERN)]
Action = Literal["refresh", "helper", "check"]
NotifyPolicy = Literal["failures", "always", "never"]

# Lambda's hard limit; the runner returns before it with what is still running as pending.
LAMBDA_TIMEOUT_SECONDS = 900
MAX_WAIT_SECONDS = 840


class RunnerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    document_name: str = Field(min_length=1)
    document_version: str = Field(default="1", min_length=1)
    target_tag_key: str = Field(min_length=1, max_length=128)
    target_tag_values: tuple[str, ...] = Field(min_length=1)
    action: Action = "refresh"
    registries: tuple[RegistryHost, ...] = Field(min_length=1, max_length=contract.MAX_REGISTRIES)
    users: tuple[str, ...] = (contract.AUTO_USERS,)
    helper_version: str = Field(
        default=contract.DEFAULT_HELPER_VERSION, pattern=contract.HELPER_VERSION_PATTERN
    )
    release_base_url: str = Field(
        default=contract.DEFAULT_RELEASE_BASE_URL, pattern=contract.RELEASE_BASE_URL_PATTERN
    )
    max_concurrency: str = Field(default="10%", pattern=contract.MAX_CONCURRENCY_PATTERN)
    max_errors: str = Field(default="10%", pattern=contract.MAX_ERRORS_PATTERN)
    delivery_timeout_seconds: int = Field(default=600, ge=30, le=2_592_000)
    wait_seconds: int = Field(default=600, ge=0, le=MAX_WAIT_SECONDS)
    output_log_group: str = ""
    topic_arn: str = ""
    notify_policy: NotifyPolicy = "failures"

    @field_validator("target_tag_values", "registries", "users", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("users")
    @classmethod
    def _users_match_document(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        contract.check_users(value)
        return value

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RunnerSettings:
        environ = os.environ if environ is None else environ
        values = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        return cls.model_validate(values)

    @classmethod
    def environment(cls, **values: object) -> dict[str, str]:
        """The Lambda environment for these field values (which may be CDK tokens).

        Unknown names fail here, at synth, rather than in a deployed function.
        """
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"not runner settings: {', '.join(unknown)}")
        return {name.upper(): _env_value(value) for name, value in values.items()}


def _env_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)
