"""Every setting once: ``SETTINGS``, one row per setting — its name, default, accepted form and doc line.

A row's ``key`` is the cdk.json context key (``action``); the same name in snake_case is
its Python field and, for the settings the runner reads, in UPPER_CASE its Lambda environment
variable (``ACTION``); ``parameter`` names the document parameter it fills (``Action``, which
the agent reads as ``$SSM_Action``). So one row is the whole path of one value. One
``parse`` accepts the value from cdk.json, from ``-c key=value`` and from the environment, so
the synth and the runner accept exactly the same values. Derived from this table:

* ``infra/config.py``: ``DeploymentConfig.from_context`` validates the context (synth errors
  name the key and the ``form``);
* the runner's environment: the stack writes it with ``runner_environment`` and the runner
  reads it back with ``RunnerSettings.from_environment`` (a variable left out takes the row's
  default: the runner has no defaults of its own);
* the configuration reference (docs/reference/configuration.md), rendered from it when the site is
  built (tools/mkdocs_hooks.py);
* tests/infra/test_settings.py checks cdk.json's context, ``DeploymentConfig``'s and
  ``RunnerSettings``' fields and the console events against it, tests/test_docs.py the reference.

Rows with ``context=False`` are not settings a user gives: the stack fills them in from the
resources it creates (the document's name, the topic, ...). This module is part of the Lambda
asset, so it imports nothing beyond the standard library and ``contract``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from . import contract

# Lambda's hard limit; the runner returns before it with what is still running as pending.
LAMBDA_TIMEOUT_SECONDS: Final = 900
MAX_WAIT_SECONDS: Final = 840
# How long a new instance may take to come online in SSM (newInstanceReadinessSeconds): at
# least a minute (agents register within seconds to minutes), at most an hour.
MIN_READINESS_SECONDS: Final = 60
MAX_READINESS_SECONDS: Final = 3600

# The retention periods CloudWatch Logs accepts (days), with their aws_logs.RetentionDays names.
LOG_RETENTION: Final = {
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
SCHEDULE_PATTERN: Final = rf"^(?:{_RATE}|{_CRON}|{_AT})$"
# Tag keys: 1-128 of letters, digits, spaces and + - = . _ : / @, not starting with aws:.
TAG_KEY_PATTERN: Final = r"^(?!aws:)[\w +=.:/@-]{1,128}$"
# Values are joined with commas in the runner's environment, so a value cannot hold one.
TAG_VALUE_PATTERN: Final = r"^[\w +=.:/@-]{0,256}$"
EMAIL_PATTERN: Final = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
STACK_NAME_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9-]{0,100}$"
# StackSets' own patterns (CloudFormation API reference, DeploymentTargets): an organization root
# (r-...) or an organizational unit (ou-...); member accounts are 12 digits.
ORGANIZATIONAL_UNIT_PATTERN: Final = r"^(?:ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$"
ACCOUNT_ID_PATTERN: Final = r"^[0-9]{12}$"
# IAM role names (IAM API reference, CreateRole: RoleName).
ROLE_NAME_PATTERN: Final = r"^[A-Za-z0-9_+=,.@-]{1,64}$"  # ASCII only, as IAM: \w would take any letter
STACK_SET_CALL_AS: Final = ("DELEGATED_ADMIN", "SELF")
# A region's partition DNS suffix, by the region name's prefix (the first that matches; else
# amazonaws.com: aws and aws-us-gov). One of contract.PARTITION_DOMAINS.
REGION_DOMAINS: Final = (
    ("cn-", "amazonaws.com.cn"),
    ("us-isob-", "sc2s.sgov.gov"),
    ("us-isof-", "csp.hci.ic.gov"),
    ("us-iso-", "c2s.ic.gov"),
    ("eu-isoe-", "cloud.adc-e.uk"),
    ("eusc-", "amazonaws.eu"),
)


@dataclass(frozen=True)
class Setting:
    key: str  # the cdk.json context key; snake_case: the Python field; UPPER_CASE: the runner's variable
    default: Any  # as cdk.json holds it; None: no default (the stack always sets it)
    form: str  # the accepted form, as synth errors and the configuration reference say it
    parse: Callable[[Any], Any]  # raw value (JSON, or a string from -c or the environment) -> value
    # The configuration reference's one-line meaning (Markdown; links relative to docs/reference/,
    # where tools/mkdocs_hooks.py renders the table).
    doc: str
    runner: bool = False  # the runner reads it from its environment
    context: bool = True  # False: not in cdk.json; the stack sets it from a resource it creates
    parameter: str | None = None  # the document parameter the runner fills with it (an event may override)

    @property
    def field(self) -> str:
        return re.sub(r"[A-Z]", lambda upper: "_" + upper.group().lower(), self.key)

    @property
    def env(self) -> str:
        return self.field.upper()


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists each with its accepted form."""


# --- how raw values are read (each raises ValueError saying what is wrong) ---


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


def _any_text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("not a string")
    return raw


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
    # JSON's true/false in cdk.json; `-c key=value` gives a string, taken as JSON spells them
    # (exactly, like every other choice: "TRUE" or "False" is refused, not guessed at).
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise ValueError(
        "not a boolean (lower case)"
        if isinstance(raw, str) and raw.lower() in ("true", "false")
        else "not a boolean"
    )


def _time_zone(raw: Any) -> str:
    import zoneinfo  # noqa: PLC0415 - only the synth reads time zones; the runner never does

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


def _new_instance_action(raw: Any) -> str:
    return "" if raw == "" else _choice(contract.ACTIONS)(raw)


def _new_instance_max_concurrency(raw: Any) -> str:
    return "" if raw == "" else _text(contract.MAX_CONCURRENCY_PATTERN)(raw)


def _form(name: str) -> str:
    return contract.PARAMETERS_BY_NAME[name].accepted_form


# --- the table: the order is the configuration reference's ---

SETTINGS: Final[tuple[Setting, ...]] = (
    Setting("stackName", "EcrFleetAuth", "a CloudFormation stack name (letters, digits, -)",
            _text(STACK_NAME_PATTERN), "Name of the stack in every region.", runner=True),
    Setting("regions", [], "a list of region names such as eu-west-1 (empty: the CLI's region)",
            _list(rf"^{contract.REGION_RE}$", least=0, most=30),
            "Regions to deploy to, one stack each (ids `EcrFleetAuth-<region>`); empty deploys one stack "
            "`EcrFleetAuth` to the AWS CLI's region."),
    Setting("targetTagKey", "ecr-fleet-auth", "a tag key (1-128 characters, not aws:...)",
            _text(TAG_KEY_PATTERN), "Tag key that selects the instances to manage.", runner=True),
    Setting("targetTagValues", ["enabled"], "a list of 1-5 tag values (no commas, up to 256 characters)",
            _list(TAG_VALUE_PATTERN, least=1, most=5), "Accepted values of the target tag.", runner=True),
    Setting("action", "refresh", "one of " + ", ".join(contract.ACTIONS), _choice(contract.ACTIONS),
            "What scheduled runs do (the document's own default is `check`: see "
            "[The document's own defaults](#the-documents-own-defaults)).", runner=True,
            parameter=contract.ACTION),
    Setting("scheduleExpression", "rate(6 hours)",
            "rate(N minutes|hours|days), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss)",
            _text(SCHEDULE_PATTERN), "When scheduled runs happen (EventBridge Scheduler)."),
    Setting("scheduleTimeZone", "UTC", "an IANA time zone such as Europe/Paris", _time_zone,
            "Time zone of `cron()` and `at()` expressions."),
    Setting("scheduleEnabled", True, "true or false", _boolean,
            "`false` deploys the schedule disabled (manual runs only)."),
    Setting("registries", [],
            f"a list of up to {contract.MAX_REGISTRIES} hosts of the form 123456789012.dkr.ecr.eu-west-1"
            ".amazonaws.com or public.ecr.aws (empty: the account's own registry)",
            _list(contract.REGISTRY_PATTERN, least=0, most=contract.MAX_REGISTRIES),
            "ECR registries to authenticate; empty means the account's own registry in each stack's region.",
            runner=True, parameter=contract.REGISTRIES),
    Setting("users", [contract.AUTO_USERS], _form(contract.USERS), _users,
            "Whose docker config to manage: `auto` = root plus members of the `docker` group.", runner=True,
            parameter=contract.USERS),
    Setting("helperVersion", contract.DEFAULT_HELPER_VERSION, _form(contract.HELPER_VERSION),
            _text(contract.HELPER_VERSION_PATTERN),
            "Credential-helper version for the release-binary install (used only where no package manager "
            "provides it): the agent fetches `<releaseBaseUrl>/<version>/linux-<amd64\\|arm64>/"
            "docker-credential-ecr-login` and installs it only if it matches `<same URL>.sha256`. The "
            "release bucket publishes versioned paths only, so there is no `latest`; the default is the "
            "newest release (February 2026).", runner=True, parameter=contract.HELPER_VERSION),
    Setting("releaseBaseUrl", contract.DEFAULT_RELEASE_BASE_URL, _form(contract.RELEASE_BASE_URL),
            _text(contract.RELEASE_BASE_URL_PATTERN),
            "Where release binaries and their `.sha256` files are fetched "
            "(`<base>/<version>/linux-<arch>/docker-credential-ecr-login`); point it at a mirror.",
            runner=True, parameter=contract.RELEASE_BASE_URL),
    Setting("keepUserDockerLogin", False, "true or false", _boolean,
            "With the helper action: users' own `docker login` to the registries it manages keeps "
            "succeeding (a no-op: pulls use the helper). The agent sets `AWS_ECR_IGNORE_CREDS_STORAGE=true` "
            "in `/etc/environment` (login sessions, ssh, su, cron) and requires helper 0.9.0+, which "
            "honours it; services started by systemd need it in their unit. Off: such a login fails "
            "(`not implemented`), as the helper's README says. See "
            "[The agent](../how-it-works/agent.md#users-own-docker-login).",
            runner=True, parameter=contract.KEEP_USER_DOCKER_LOGIN),
    Setting("maxConcurrency", "10%", "a number of instances or a percentage (1%-100%)",
            _text(contract.MAX_CONCURRENCY_PATTERN),
            "Run Command rate control, promised for the whole run (not per batch).", runner=True),
    Setting("maxErrors", "10%", "a number of errors (0 or more) or a percentage (0%-100%)",
            _text(contract.MAX_ERRORS_PATTERN),
            "Errors after which Run Command stops sending to more instances.", runner=True),
    Setting("deliveryTimeoutSeconds", 600, "a whole number from 30 to 2592000", _integer(30, 2_592_000),
            "How long Run Command tries to deliver to an instance.", runner=True),
    Setting("executionTimeoutSeconds", 600, "a whole number from 30 to 3600", _integer(30, 3600),
            "How long the agent may run on an instance (the document step's timeout).", runner=True),
    Setting("waitSeconds", 600, f"a whole number from 0 to {MAX_WAIT_SECONDS}", _integer(0, MAX_WAIT_SECONDS),
            "How long a run waits for results; instances still running are reported `pending`.",
            runner=True),
    Setting("notificationEmail", "", "an e-mail address, or empty for none", _email,
            "Subscribes this address to the notification topic (confirm the e-mail AWS sends)."),
    Setting("notifyPolicy", "failures", "one of " + ", ".join(contract.NOTIFY_POLICIES),
            _choice(contract.NOTIFY_POLICIES), "When the runner publishes its report to the topic.",
            runner=True),
    Setting("logRetentionDays", 30, "one of " + ", ".join(map(str, LOG_RETENTION)), _retention,
            "Retention of the runner's and the Run Command output log groups."),
    Setting("reservedConcurrency", 0, "a whole number from 0 (none) to 1000", _integer(0, 1000),
            "Concurrency reserved for the runner; `0` reserves none, so the stack deploys on any account "
            "(see [Reserved concurrency](#reserved-concurrency))."),
    Setting("newInstances", True, "true or false", _boolean,
            "Covers a tagged instance as soon as it enters `running` or gains the target tag, without "
            "waiting for the schedule (see [New instances](../how-it-works/new-instances.md)); `false` "
            "deploys no rules "
            "and no queue."),
    Setting("newInstanceAction", "", "one of " + ", ".join(contract.ACTIONS) + ", or empty for `action`",
            _new_instance_action,
            "What runs of instance events do; empty: the same as scheduled runs (`action`).", runner=True),
    Setting("newInstanceMaxConcurrency", "50",
            "a number of instances or a percentage (1%-100%), or empty for `maxConcurrency`",
            _new_instance_max_concurrency,
            "Run Command rate control of runs of instance events, over each run's instances (`maxErrors` "
            "still applies); `50`: a burst of new instances runs 50 at a time, one SendCommand's worth "
            "(see [Latency and limits](../how-it-works/new-instances.md#latency-and-limits)); empty: the "
            "same as `maxConcurrency`.",
            runner=True),
    Setting("newInstanceReadinessSeconds", 900,
            f"a whole number from {MIN_READINESS_SECONDS} to {MAX_READINESS_SECONDS}",
            _integer(MIN_READINESS_SECONDS, MAX_READINESS_SECONDS),
            "How long after its event a new instance may take to come online in SSM; one still not "
            "`Online` then is reported `unreachable` / `not_online_in_time` (once).", runner=True),
    Setting("organizationalUnitIds", [],
            "a list of organization root or OU ids (r-..., ou-...-...); empty: this account only",
            _list(ORGANIZATIONAL_UNIT_PATTERN, least=0, most=100),
            "Organization units whose accounts the runner covers, through a StackSet with automatic "
            "deployment (see [Organizations](../how-it-works/organizations.md)); empty: the stack covers "
            "its own account and region, as a single-account deployment.", runner=True),
    Setting("memberAccounts", [], "a list of 12-digit account ids (empty: every account in the units)",
            _list(ACCOUNT_ID_PATTERN, least=0, most=1000),
            "Narrows `organizationalUnitIds` to these accounts (StackSets' `INTERSECTION`); accounts "
            "added to the units later are then not covered automatically.", runner=True),
    Setting("memberRegions", [], "a list of region names such as eu-west-1 (empty: the stack's region)",
            _list(rf"^{contract.REGION_RE}$", least=0, most=30),
            "Regions of the member accounts the StackSet deploys to and the runner covers.", runner=True),
    Setting("memberRoleName", "EcrFleetAuthMember", "an IAM role name (1-64 of letters, digits, +=,.@_-)",
            _text(ROLE_NAME_PATTERN),
            "Name of the role the StackSet creates in each member account; only the runner can assume it.",
            runner=True),
    Setting("stackSetCallAs", "DELEGATED_ADMIN", "one of " + ", ".join(STACK_SET_CALL_AS),
            _choice(STACK_SET_CALL_AS),
            "Whether the stack is deployed from a StackSets delegated administrator account "
            "(`DELEGATED_ADMIN`) or the organization's management account (`SELF`).", runner=True),
    # Set by the stack from the resources it creates (not in cdk.json).
    Setting("documentName", None, "the name of the stack's SSM document", _text(r"^\S+$"),
            "The agent document the runner sends.", runner=True, context=False),
    Setting("documentVersion", "1", "a document version", _text(r"^\S+$"),
            "The document version the runner pins (a replaced document starts at 1).",
            runner=True, context=False),
    Setting("outputLogGroup", "", "a log group name, or empty for none", _any_text,
            "Where Run Command sends the agent's full output.", runner=True, context=False),
    Setting("topicArn", "", "an SNS topic ARN, or empty for none", _any_text,
            "Where the runner publishes its report.", runner=True, context=False),
    Setting("stackSetName", "", "a StackSet name, or empty for a single-account deployment", _any_text,
            "The StackSet whose stack instances are the (account, region) pairs the runner covers.",
            runner=True, context=False),
    Setting("memberDocumentName", "", "the agent document's name in member accounts, or empty", _any_text,
            "The agent document the StackSet creates in each member account and region.",
            runner=True, context=False),
    Setting("claimTableName", "", "a DynamoDB table name, or empty for none", _any_text,
            "The table where runs of instance events claim an instance before commanding or "
            "reporting it (`newInstances` on), so that two batches never both do.",
            runner=True, context=False),
)  # fmt: skip

BY_KEY: Final = {setting.key: setting for setting in SETTINGS}
CONTEXT_SETTINGS: Final = tuple(setting for setting in SETTINGS if setting.context)
RUNNER_SETTINGS: Final = tuple(setting for setting in SETTINGS if setting.runner)


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_all(
    settings: tuple[Setting, ...],
    lookup: Callable[[Setting], Any],
    *,
    title: str,
    name: Callable[[Setting], str],
) -> dict[str, Any]:
    """Each setting's value by field, its default where ``lookup`` gives None; every problem at once."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in settings:
        raw = lookup(setting)
        try:
            if raw is None and setting.default is None:
                raise ValueError("not set")
            values[setting.field] = setting.parse(setting.default if raw is None else raw)
        except ValueError as error:
            problems.append(f"  {name(setting)}={_show(raw)}: {error}; expected {setting.form}")
    if problems:
        raise SettingsError(f"{title}:\n" + "\n".join(problems))
    return values


def runner_environment(values: Mapping[str, object]) -> dict[str, str]:
    """The runner's Lambda environment: one variable per runner setting, its value from ``values``
    (by field name; CDK tokens allowed). A runner setting missing from ``values`` fails the synth."""
    missing = [setting.field for setting in RUNNER_SETTINGS if setting.field not in values]
    if missing:
        raise ValueError(f"no value for the runner settings {', '.join(missing)}")
    return {setting.env: _env_value(values[setting.field]) for setting in RUNNER_SETTINGS}


def _env_value(value: object) -> str:
    if isinstance(value, bool):  # as the table's booleans are written: true, false
        return contract.BOOLEAN_VALUES[value]
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class RunnerSettings:
    """The runner's view of ``SETTINGS``: the rows marked ``runner``, read from its environment.

    Fields only: names, defaults and accepted forms are the table's (a test keeps them equal).
    """

    stack_name: str
    target_tag_key: str
    target_tag_values: tuple[str, ...]
    action: contract.Action
    registries: tuple[str, ...]
    users: tuple[str, ...]
    helper_version: str
    release_base_url: str
    keep_user_docker_login: bool
    max_concurrency: str
    max_errors: str
    delivery_timeout_seconds: int
    execution_timeout_seconds: int
    wait_seconds: int
    notify_policy: contract.NotifyPolicy
    new_instance_action: contract.Action | Literal[""]
    new_instance_max_concurrency: str
    new_instance_readiness_seconds: int
    organizational_unit_ids: tuple[str, ...]
    member_accounts: tuple[str, ...]
    member_regions: tuple[str, ...]
    member_role_name: str
    stack_set_call_as: Literal["DELEGATED_ADMIN", "SELF"]
    document_name: str
    document_version: str
    output_log_group: str
    topic_arn: str
    stack_set_name: str
    member_document_name: str
    claim_table_name: str

    def registries_for(self, account: str, region: str) -> tuple[str, ...]:
        """The registries a run logs into in ``account`` and ``region``: ``REGISTRIES``, or, left
        empty (organization mode with ``registries`` empty), that account's own registry there."""
        return self.registries or (own_registry(account, region),)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RunnerSettings:
        environ = os.environ if environ is None else environ
        values = parse_all(
            RUNNER_SETTINGS,
            lambda setting: environ.get(setting.env),
            title="invalid runner environment",
            name=lambda setting: setting.env,
        )
        # With ``registries`` empty a single-account stack writes its own registry there; an
        # organization's writes nothing, and every pair logs into its own (``registries_for``).
        if not values["registries"] and not values["stack_set_name"]:
            raise SettingsError(
                "invalid runner environment:\n"
                "  REGISTRIES='': names no registry (empty only with STACK_SET_NAME)"
            )
        return cls(**values)


def own_registry(account: str, region: str) -> str:
    """The private ECR registry of ``account`` in ``region``, with its partition's DNS suffix."""
    domain = next((domain for prefix, domain in REGION_DOMAINS if region.startswith(prefix)), "amazonaws.com")
    return f"{account}.dkr.ecr.{region}.{domain}"
