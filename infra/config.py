"""Deployment settings: read from cdk.json context (or `-c key=value`), validated at synth.

Every key, its default and its accepted form are declared once in ``SETTINGS`` below;
the README's configuration table documents the same keys. Values given with
``-c`` arrive as strings, so lists also accept a comma-separated string and
numbers and booleans their usual spellings. All problems are reported together,
each naming the key and the accepted form.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_logs

from ecr_fleet_auth import contract
from ecr_fleet_auth.settings import MAX_WAIT_SECONDS

DEFAULT_STACK_NAME = "EcrFleetAuth"

# The retention periods CloudWatch Logs accepts (days), by their aws_logs.RetentionDays names.
LOG_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
    1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
}  # fmt: skip

_RATE = r"rate\((?:1 (?:minute|hour|day)|(?:[2-9]|[1-9][0-9]+) (?:minutes|hours|days))\)"
_CRON_FIELD = r"[0-9A-Za-z,*?/#L-]+"
_CRON = rf"cron\({_CRON_FIELD}(?: {_CRON_FIELD}){{5}}\)"
_AT = r"at\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\)"
SCHEDULE_PATTERN = rf"^(?:{_RATE}|{_CRON}|{_AT})$"
# Tag keys: 1-128 of letters, digits, spaces and + - = . _ : / @, not starting with aws:.
TAG_KEY_PATTERN = r"^(?!aws:)[\w +=.:/@-]{1,128}$"
# Values are joined with commas in the runner's environment, so a value cannot hold one.
TAG_VALUE_PATTERN = r"^[\w +=.:/@-]{0,256}$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists each with its accepted form."""


@dataclass(frozen=True)
class DeploymentConfig:
    stack_name: str
    regions: tuple[str, ...]
    target_tag_key: str
    target_tag_values: tuple[str, ...]
    action: str
    schedule_expression: str
    schedule_time_zone: str
    schedule_enabled: bool
    registries: tuple[str, ...]  # empty: the account's own registry in the stack's region
    users: tuple[str, ...]
    helper_version: str
    release_base_url: str
    max_concurrency: str
    max_errors: str
    delivery_timeout_seconds: int
    execution_timeout_seconds: int
    wait_seconds: int
    notification_email: str
    notify_policy: str
    log_retention_days: int
    reserved_concurrency: int

    @property
    def log_retention(self) -> aws_logs.RetentionDays:
        return aws_logs.RetentionDays[LOG_RETENTION[self.log_retention_days]]

    @classmethod
    def from_context(cls, context: Callable[[str], Any]) -> DeploymentConfig:
        """Build from a context lookup such as ``app.node.try_get_context``."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = context(setting.key)
            try:
                values[setting.field] = setting.parse(setting.default if raw is None else raw)
            except ValueError as error:
                problems.append(f"  {setting.key}={_show(raw)}: {error}; expected {setting.form}")
        if problems:
            raise ConfigError("invalid ecr-fleet-auth configuration:\n" + "\n".join(problems))
        return cls(**values)


@dataclass(frozen=True)
class Setting:
    key: str  # the cdk.json context key
    field: str
    default: Any
    form: str  # the accepted form, as the error message and README say it
    parse: Callable[[Any], Any]
    doc: str


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def _items(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw)
    raise ValueError("not a list of strings")


def _text(pattern: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if not isinstance(raw, str) or not contract.matches(pattern, raw):
            raise ValueError("not accepted")
        return raw

    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if raw not in choices:
            raise ValueError("not one of the choices")
        return str(raw)

    return parse


def _list(pattern: str, *, least: int, most: int) -> Callable[[Any], tuple[str, ...]]:
    def parse(raw: Any) -> tuple[str, ...]:
        items = _items(raw)
        bad = [item for item in items if not contract.matches(pattern, item)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} not accepted")
        if not least <= len(items) <= most:
            raise ValueError(f"{len(items)} items")
        if len(set(items)) != len(items):
            raise ValueError("duplicate items")
        return items

    return parse


def _users(raw: Any) -> tuple[str, ...]:
    items = _items(raw)
    contract.check_users(items)
    return items


def _integer(least: int, most: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("not a whole number")
        if isinstance(raw, str) and re.fullmatch(r"[0-9]+", raw.strip()):
            raw = int(raw)
        if not isinstance(raw, int):
            raise ValueError("not a whole number")
        if not least <= raw <= most:
            raise ValueError("out of range")
        return raw

    return parse


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError("not a boolean")


def _time_zone(raw: Any) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_+/-]{1,64}", raw):
        raise ValueError("not an IANA time zone name")
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return raw


def _retention(raw: Any) -> int:
    days = _integer(1, 3653)(raw)
    if days not in LOG_RETENTION:
        raise ValueError("not a CloudWatch Logs retention value")
    return days


def _email(raw: Any) -> str:
    if raw == "":
        return ""
    return _text(EMAIL_PATTERN)(raw)


def _stack_name(raw: Any) -> str:
    return _text(r"^[A-Za-z][A-Za-z0-9-]{0,100}$")(raw)


_REGISTRY_FORM = contract.PARAMETERS_BY_NAME[contract.REGISTRIES].accepted_form
SETTINGS: tuple[Setting, ...] = (
    Setting("stackName", "stack_name", DEFAULT_STACK_NAME, "a CloudFormation stack name (letters, digits, -)",
            _stack_name, "Name of the stack in every region."),
    Setting("regions", "regions", [], "a list of region names such as eu-west-1 (empty: the CLI's region)",
            _list(rf"^{contract.REGION_RE}$", least=0, most=30),
            "Regions to deploy to, one stack each; empty deploys one stack to the AWS CLI's region."),
    Setting("targetTagKey", "target_tag_key", "ecr-fleet-auth", "a tag key (1-128 characters, not aws:...)",
            _text(TAG_KEY_PATTERN), "Tag key that selects the instances to manage."),
    Setting("targetTagValues", "target_tag_values", ["enabled"],
            "a list of 1-5 tag values (no commas, up to 256 characters)",
            _list(TAG_VALUE_PATTERN, least=1, most=5), "Accepted values of the target tag."),
    Setting("action", "action", "refresh", "one of " + ", ".join(contract.ACTIONS),
            _choice(contract.ACTIONS), "What scheduled runs do: refresh, helper or check."),
    Setting("scheduleExpression", "schedule_expression", "rate(6 hours)",
            "rate(N minutes|hours|days), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss)",
            _text(SCHEDULE_PATTERN), "When scheduled runs happen (EventBridge Scheduler)."),
    Setting("scheduleTimeZone", "schedule_time_zone", "UTC", "an IANA time zone such as Europe/Paris",
            _time_zone, "Time zone of cron() and at() expressions."),
    Setting("scheduleEnabled", "schedule_enabled", True, "true or false", _boolean,
            "false deploys the schedule disabled (manual runs only)."),
    Setting("registries", "registries", [], f"a list of {_REGISTRY_FORM}",
            _list(contract.REGISTRY_PATTERN, least=0, most=contract.MAX_REGISTRIES),
            "ECR registries to authenticate; empty means the account's own registry in each region."),
    Setting("users", "users", [contract.AUTO_USERS],
            contract.PARAMETERS_BY_NAME[contract.USERS].accepted_form, _users,
            "Whose docker config to manage: auto = root plus members of the docker group."),
    Setting("helperVersion", "helper_version", contract.DEFAULT_HELPER_VERSION,
            contract.PARAMETERS_BY_NAME[contract.HELPER_VERSION].accepted_form,
            _text(contract.HELPER_VERSION_PATTERN), "Helper version for the release-binary install."),
    Setting("releaseBaseUrl", "release_base_url", contract.DEFAULT_RELEASE_BASE_URL,
            contract.PARAMETERS_BY_NAME[contract.RELEASE_BASE_URL].accepted_form,
            _text(contract.RELEASE_BASE_URL_PATTERN), "Where release binaries are fetched (mirror support)."),
    Setting("maxConcurrency", "max_concurrency", "10%", "a number of instances or a percentage (1%-100%)",
            _text(contract.MAX_CONCURRENCY_PATTERN), "Run Command rate control across the whole run."),
    Setting("maxErrors", "max_errors", "10%", "a number of errors (0 or more) or a percentage (0%-100%)",
            _text(contract.MAX_ERRORS_PATTERN), "Errors after which Run Command stops sending to more."),
    Setting("deliveryTimeoutSeconds", "delivery_timeout_seconds", 600, "a whole number from 30 to 2592000",
            _integer(30, 2_592_000), "How long Run Command tries to deliver to an instance."),
    Setting("executionTimeoutSeconds", "execution_timeout_seconds", 600, "a whole number from 30 to 3600",
            _integer(30, 3600), "How long the agent may run on an instance (the document step's timeout)."),
    Setting("waitSeconds", "wait_seconds", 600, f"a whole number from 0 to {MAX_WAIT_SECONDS}",
            _integer(0, MAX_WAIT_SECONDS), "How long a run waits for results before reporting pending."),
    Setting("notificationEmail", "notification_email", "", "an e-mail address, or empty for none",
            _email, "Subscribes this address to the notification topic."),
    Setting("notifyPolicy", "notify_policy", "failures", "one of " + ", ".join(contract.NOTIFY_POLICIES),
            _choice(contract.NOTIFY_POLICIES), "When the runner publishes its report to the topic."),
    Setting("logRetentionDays", "log_retention_days", 30,
            "one of " + ", ".join(map(str, LOG_RETENTION)), _retention,
            "Retention of the runner's and Run Command output log groups."),
    Setting("reservedConcurrency", "reserved_concurrency", 0, "a whole number from 0 (none) to 1000",
            _integer(0, 1000),
            "Concurrency reserved for the runner; 0 reserves none, so the stack deploys on any account."),
)  # fmt: skip
