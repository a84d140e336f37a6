"""Deployment settings: cdk.json context (or ``-c key=value``), validated at synth.

Every key, its default, accepted form and meaning are one row of the table in
``ecr_fleet_auth/settings.py`` (``SETTINGS``); this module only reads the context through
it. Values given with ``-c`` arrive as strings, so lists also accept a comma-separated
string and numbers and booleans their usual spellings. All problems are reported
together, each naming the key and the accepted form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aws_cdk import aws_logs

from ecr_fleet_auth import contract, settings


@dataclass(frozen=True)
class DeploymentConfig:
    """The context settings, one field per row of ``settings.SETTINGS`` (a test keeps them equal)."""

    stack_name: str
    regions: tuple[str, ...]
    target_tag_key: str
    target_tag_values: tuple[str, ...]
    action: contract.Action
    schedule_expression: str
    schedule_time_zone: str
    schedule_enabled: bool
    registries: tuple[str, ...]  # empty: the account's own registry in the stack's region
    users: tuple[str, ...]
    helper_version: str
    release_base_url: str
    keep_user_docker_login: bool
    max_concurrency: str
    max_errors: str
    delivery_timeout_seconds: int
    execution_timeout_seconds: int
    wait_seconds: int
    notification_email: str
    notify_policy: contract.NotifyPolicy
    log_retention_days: int
    reserved_concurrency: int
    new_instances: bool
    new_instance_action: contract.Action | Literal[""]  # empty: the same as `action`
    new_instance_max_concurrency: str  # empty: the same as `max_concurrency`
    new_instance_readiness_seconds: int
    organizational_unit_ids: tuple[str, ...]  # empty: a single-account deployment
    member_accounts: tuple[str, ...]
    member_regions: tuple[str, ...]  # empty: the stack's own region
    member_role_name: str
    stack_set_call_as: Literal["DELEGATED_ADMIN", "SELF"]

    @property
    def log_retention(self) -> aws_logs.RetentionDays:
        return aws_logs.RetentionDays[settings.LOG_RETENTION[self.log_retention_days]]

    @classmethod
    def from_context(cls, context: Callable[[str], Any]) -> DeploymentConfig:
        """Build from a context lookup such as ``app.node.try_get_context``.

        Raises ``settings.SettingsError`` naming every bad key and its accepted form, and every
        combination of settings that cannot be deployed (each naming the keys involved)."""
        try:
            values = settings.parse_all(
                settings.CONTEXT_SETTINGS,
                lambda setting: context(setting.key),
                title=_TITLE,
                name=lambda setting: setting.key,
            )
        except settings.SettingsError as error:
            problems = str(error).splitlines()[1:]
        else:
            problems = []
        problems += _combination_problems(_parsed_values(context))
        if problems:
            raise settings.SettingsError(f"{_TITLE}:\n" + "\n".join(problems))
        return cls(**values)

    def runner_environment(self, **from_the_stack: object) -> dict[str, str]:
        """The runner's environment: these settings, plus what only the stack knows (its
        resources' names, the registries once an empty setting is resolved), by field name."""
        unknown = sorted(set(from_the_stack) - {s.field for s in settings.RUNNER_SETTINGS})
        if unknown:
            raise ValueError(f"not runner settings: {', '.join(unknown)}")
        return settings.runner_environment({**asdict(self), **from_the_stack})


_TITLE = "invalid ecr-fleet-auth configuration"
_ORGANIZATION_ONLY = ("memberAccounts", "memberRegions")
_ORGANIZATION_ONLY_CHOICES = ("memberRoleName", "stackSetCallAs")


def _parsed_values(context: Callable[[str], Any]) -> dict[str, Any]:
    """Each context setting whose own value is valid, by key (a bad one is reported on its own)."""
    values = {}
    for setting in settings.CONTEXT_SETTINGS:
        raw = context(setting.key)
        try:
            values[setting.key] = setting.parse(setting.default if raw is None else raw)
        except ValueError:
            continue
    return values


def _combination_problems(values: dict[str, Any]) -> list[str]:
    """Settings valid one by one that cannot be deployed together, each line naming the keys."""
    problems = []
    units = values.get("organizationalUnitIds")
    if units == ():
        # Service-managed StackSets create stack instances only in organizational units
        # (DeploymentTargets: "For create and delete operations, specify OrganizationalUnitIds").
        for key in _ORGANIZATION_ONLY:
            if values.get(key):
                problems.append(
                    f"  {key}={', '.join(values[key])!r}: needs organizationalUnitIds (the StackSet "
                    f"deploys to organizational units; {key} only narrows them); set "
                    f"organizationalUnitIds or leave {key} empty"
                )
        # Accepted alone they would change nothing but the runner's environment: say so instead.
        for key in _ORGANIZATION_ONLY_CHOICES:
            if key in values and values[key] != settings.BY_KEY[key].default:
                problems.append(
                    f"  {key}={values[key]!r}: applies only to an organization deployment; set "
                    f"organizationalUnitIds or leave {key} at its default "
                    f"({settings.BY_KEY[key].default!r})"
                )
    regions = values.get("regions") or ()
    if units and len(regions) > 1:
        problems.append(
            f"  regions={', '.join(regions)!r}: organization mode (organizationalUnitIds set) deploys one "
            "central stack, so regions may name at most one region; list the member accounts' regions "
            "in memberRegions"
        )
    return problems
