"""Deployment settings: cdk.json context (or ``-c key=value``) or the construct's props, validated.

Every key, its default, accepted form and meaning are one row of the table in
``ecr_fleet_auth/shared/settings.py`` (``SETTINGS``); this module only reads the context (the
repository's app) or the props (``EcrFleetAuth``) through it. Values given with ``-c`` arrive
as strings, so lists also accept a comma-separated string and numbers and booleans their usual
spellings. All problems are reported together, each naming the key (the prop) and the accepted
form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from aws_cdk import aws_logs

from ecr_fleet_auth.shared import contract, settings

if TYPE_CHECKING:
    from .props import EcrFleetAuthProps


@dataclass(frozen=True)
class DeploymentConfig:
    """The context settings, one field per row of ``settings.SETTINGS`` (a test keeps them equal).

    In a construct's config ``stack_name`` is the construct's name (``EcrFleetAuth.name``: the
    runner's metric service, the prefix of the names it gives) and ``regions`` is empty: which
    stacks exist is the app's business."""

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
    chat_channel: str  # empty: none; slack:<workspace>/<channel> or teams:<tenant>/<team>/<channel>
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
    organization_id: str  # empty: none given (needed with organizationalUnitIds and newInstances)
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
                title=TITLE,
                name=lambda setting: setting.key,
            )
        except settings.SettingsError as error:
            problems = str(error).splitlines()[1:]
        else:
            problems = []
        parsed = _parsed_values(context)
        problems += _combination_problems(parsed, lambda key: key) + _app_problems(parsed)
        if problems:
            raise settings.SettingsError(f"{TITLE}:\n" + "\n".join(problems))
        return cls(**values)

    @classmethod
    def from_props(cls, props: Mapping[str, Any], *, name: str, name_shown: str = "name") -> DeploymentConfig:
        """Build from the construct's props (by snake_case name; one left out takes its default) and
        its ``name``. Raises ``settings.SettingsError`` as ``from_context`` does, naming each prop;
        ``name_shown`` is how a bad ``name`` is named (a derived one says where it came from)."""
        rows = (settings.BY_KEY[_NAME_KEY], *settings.PROP_SETTINGS)
        raw = {_NAME_KEY: name} | {
            setting.key: props.get(setting.field) for setting in settings.PROP_SETTINGS
        }

        def shown(setting: settings.Setting) -> str:
            return name_shown if setting.key == _NAME_KEY else setting.field

        try:
            values = settings.parse_all(rows, lambda setting: raw[setting.key], title=TITLE, name=shown)
        except settings.SettingsError as error:
            problems = str(error).splitlines()[1:]
        else:
            problems = []
        problems += _combination_problems(
            _valid_values(rows, raw.get), lambda key: settings.BY_KEY[key].field
        )
        if problems:
            raise settings.SettingsError(f"{TITLE}:\n" + "\n".join(problems))
        return cls(regions=(), **values)

    def props(self) -> EcrFleetAuthProps:
        """These settings as ``EcrFleetAuth``'s props (the app's own, stack name and regions, left out)."""
        return cast("EcrFleetAuthProps", {s.field: getattr(self, s.field) for s in settings.PROP_SETTINGS})

    def runner_environment(self, **from_the_stack: object) -> dict[str, str]:
        """The runner's environment: these settings, plus what only the stack knows (its
        resources' names, the registries once an empty setting is resolved), by field name."""
        unknown = sorted(set(from_the_stack) - {s.field for s in settings.RUNNER_SETTINGS})
        if unknown:
            raise ValueError(f"not runner settings: {', '.join(unknown)}")
        return settings.runner_environment({**asdict(self), **from_the_stack})


# The first line of every SettingsError about the configuration (context or props).
TITLE = "invalid ecr-fleet-auth configuration"
# The row whose value names a construct (its ``name``) as it names the app's stacks.
_NAME_KEY = "stackName"
_ORGANIZATION_ONLY = ("memberAccounts", "memberRegions", "organizationId")
_ORGANIZATION_ONLY_CHOICES = ("memberRoleName", "stackSetCallAs")


def _app_problems(values: dict[str, Any]) -> list[str]:
    """The app's own settings (its stacks) that cannot go with the others."""
    regions = values.get("regions") or ()
    if values.get("organizationalUnitIds") and len(regions) > 1:
        return [
            f"  regions={', '.join(regions)!r}: organization mode (organizationalUnitIds set) deploys one "
            "central stack, so regions may name at most one region; list the member accounts' regions "
            "in memberRegions"
        ]
    return []


def _parsed_values(context: Callable[[str], Any]) -> dict[str, Any]:
    """Each context setting whose own value is valid, by key (a bad one is reported on its own)."""
    return _valid_values(settings.CONTEXT_SETTINGS, context)


def _valid_values(rows: tuple[settings.Setting, ...], raw: Callable[[str], Any]) -> dict[str, Any]:
    """Each of ``rows`` whose own value (``raw`` by key) is valid, by key."""
    values = {}
    for setting in rows:
        value = raw(setting.key)
        try:
            values[setting.key] = setting.parse(setting.default if value is None else value)
        except ValueError:
            continue
    return values


def _combination_problems(values: dict[str, Any], shown: Callable[[str], str]) -> list[str]:
    """Settings valid one by one that cannot be deployed together, each line naming the settings
    (``shown``: a setting's key as the user wrote it, cdk.json's key or the construct's prop)."""
    problems = []
    units, named_units = values.get("organizationalUnitIds"), shown("organizationalUnitIds")
    if units == ():
        # Service-managed StackSets create stack instances only in organizational units
        # (DeploymentTargets: "For create and delete operations, specify OrganizationalUnitIds").
        for key in _ORGANIZATION_ONLY:
            if values.get(key):
                value = values[key] if isinstance(values[key], str) else ", ".join(values[key])
                problems.append(
                    f"  {shown(key)}={value!r}: needs {named_units} (the StackSet "
                    f"deploys to organizational units; {shown(key)} only narrows them); set "
                    f"{named_units} or leave {shown(key)} empty"
                )
        # Accepted alone they would change nothing but the runner's environment: say so instead.
        for key in _ORGANIZATION_ONLY_CHOICES:
            if key in values and values[key] != settings.BY_KEY[key].default:
                problems.append(
                    f"  {shown(key)}={values[key]!r}: applies only to an organization deployment; set "
                    f"{named_units} or leave {shown(key)} at its default "
                    f"({settings.BY_KEY[key].default!r})"
                )
    reserved, least = values.get("reservedConcurrency"), settings.ORGANIZATION_MIN_RESERVED_CONCURRENCY
    if units and reserved and reserved < least:
        # The state machine runs ORGANIZATION_CHILDREN_AT_ONCE invocations at once: fewer reserved would
        # throttle most children, each retried only a few times before its pairs are reported failed.
        problems.append(
            f"  {shown('reservedConcurrency')}={reserved!r}: organization mode ({named_units} set) runs "
            f"up to {settings.ORGANIZATION_CHILDREN_AT_ONCE} invocations of the runner at once (the state "
            f"machine's children) beside new-instance batches and a manual run; set it to {least} or "
            "more, or 0 (none reserved)"
        )
    if units and values.get("newInstances") and values.get("organizationId") == "":
        # Member accounts forward their instances' events to this stack's bus, whose policy lets in
        # only the organization's principals (aws:PrincipalOrgID): it needs the organization's id.
        named = shown("organizationId")
        problems.append(
            f"  {named}='': needed with {named_units} and {shown('newInstances')} (member accounts "
            "forward their new instances' events to this stack, and only the organization may): set "
            f"{named} (aws organizations describe-organization --query Organization.Id), or "
            f"{shown('newInstances')}=false"
        )
    return problems
