"""The invocation event: what a schedule or an operator may ask of one run.

Every field is optional; what is omitted comes from the deployed settings. The
model is strict (no coercion: ``"true"`` is not a boolean, ``"60"`` not a
number) and closed (unknown fields are errors), and every string is checked
against the same pattern the SSM document enforces, so a bad event fails here —
before any AWS call — with a message naming the field and the accepted form.

``source`` is ``schedule`` or ``manual``: the sources of runs of instance events are the runner's
own (it builds those requests itself), so an event carrying one is rejected.

An event can only narrow the run: ``instance_ids`` selects among the tagged
fleet (the runner reports, and never commands, an id without the target tag);
``account_ids`` and ``regions`` select among the (account, region) pairs the stack covers
(``organization``: one outside them is rejected before anything is sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from . import contract
from .invocations import MESSAGE_PREFIX, InvalidEvent
from .settings import ACCOUNT_ID_PATTERN, MAX_WAIT_SECONDS

# A narrowed run is for a handful of instances (or one new instance); a whole
# fleet is the tag's job. The cap keeps the event and the report bounded.
MAX_REQUESTED_INSTANCES = 1000
# As many as the settings accept for memberAccounts and regions.
MAX_REQUESTED_ACCOUNTS = 1000
MAX_REQUESTED_REGIONS = 30

InstanceId = Annotated[str, StringConstraints(pattern=contract.INSTANCE_ID_PATTERN)]
RegistryHost = Annotated[str, StringConstraints(pattern=contract.REGISTRY_PATTERN)]
UserName = Annotated[str, StringConstraints(pattern=contract.USER_NAME_PATTERN)]
AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
RegionName = Annotated[str, StringConstraints(pattern=rf"^{contract.REGION_RE}$")]

ACCEPTED_FORMS: dict[str, str] = {
    "source": f"'{contract.SOURCE_SCHEDULE}' or '{contract.SOURCE_MANUAL}' (omit it for a manual run)",
    "action": contract.PARAMETERS_BY_NAME[contract.ACTION].accepted_form,
    "dry_run": "true or false",
    "instance_ids": (
        f'a list of 1 to {MAX_REQUESTED_INSTANCES} EC2 instance ids such as ["i-0123456789abcdef0"]'
    ),
    "registries": "a list of "
    + contract.PARAMETERS_BY_NAME[contract.REGISTRIES].accepted_form.replace("comma-separated ", ""),
    "users": f'["{contract.AUTO_USERS}"] or a list of 1 to {contract.MAX_USERS} POSIX user names',
    "wait_seconds": f"a whole number of seconds from 0 to {MAX_WAIT_SECONDS}",
    "account_ids": f'a list of 1 to {MAX_REQUESTED_ACCOUNTS} 12-digit account ids such as ["123456789012"]',
    "regions": f'a list of 1 to {MAX_REQUESTED_REGIONS} region names such as ["eu-west-1"]',
}


SEPARATOR = " | "
# Whatever the event, the rejection stays a readable message.
MAX_MESSAGE_CHARS = 1500


class RunRequest(BaseModel):
    # Built at the first event it reads, not at import: a cold start of another path never builds it.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    source: contract.Source = contract.SOURCE_MANUAL
    action: contract.Action | None = None
    dry_run: bool = False
    instance_ids: tuple[InstanceId, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_REQUESTED_INSTANCES
    )
    registries: tuple[RegistryHost, ...] | None = Field(
        default=None, min_length=1, max_length=contract.MAX_REGISTRIES
    )
    users: tuple[UserName, ...] | None = Field(default=None, min_length=1, max_length=contract.MAX_USERS)
    wait_seconds: int | None = Field(default=None, ge=0, le=MAX_WAIT_SECONDS)
    account_ids: tuple[AccountId, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_REQUESTED_ACCOUNTS
    )
    regions: tuple[RegionName, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_REQUESTED_REGIONS
    )

    @field_validator("instance_ids", "account_ids", "regions")
    @classmethod
    def _drop_repeats(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # Asking twice for one instance must not command it twice.
        return None if value is None else tuple(dict.fromkeys(value))

    @field_validator("users")
    @classmethod
    def _users_match_document(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            contract.check_users(value)
        return value

    @classmethod
    def from_event(cls, event: object) -> RunRequest:
        """Parse a Lambda event, raising ``InvalidEvent`` with a message a person can act on."""
        if not isinstance(event, Mapping):
            raise InvalidEvent(f"{MESSAGE_PREFIX}expected a JSON object, got {_json_kind(event)}")
        # null is never a value (docs/reference/contract.md): a field is given or omitted. The
        # model's None means "omitted", so a null must be refused before the model sees it.
        nulls = [str(key) for key, value in event.items() if value is None]
        # JSON arrays arrive as lists; strict mode wants the model's tuples, so
        # convert only that, leaving every other type check strict.
        data = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in event.items()
            if value is not None
        }
        problems = [_null_problem(field) for field in nulls]
        # A run of instance events is the runner's own (triggers.handle builds its request): an
        # event claiming that source would label a run it is not.
        if data.get("source") in contract.INSTANCE_EVENT_SOURCES:
            problems.append(
                f"source: {data.pop('source')!r} is set by the runner itself, for a run of instance events; "
                f"expected {ACCEPTED_FORMS['source']}"
            )
        try:
            request = cls.model_validate(data)
        except ValidationError as error:
            problems += _problems(error)
        if problems:
            raise InvalidEvent(_message(problems))
        return request


def _json_kind(value: object) -> str:
    """What a value is in JSON's words (an event arrives as JSON: null, not NoneType)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _null_problem(field: str) -> str:
    if field not in ACCEPTED_FORMS:
        return f"{_shown(field)}: unknown field (accepted fields: {', '.join(ACCEPTED_FORMS)})"
    return f"{field}: null is not accepted, omit the field instead; expected {ACCEPTED_FORMS[field]}"


def _shown(value: object, most: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


def _problems(error: ValidationError) -> list[str]:
    problems = []
    details = error.errors(include_url=False)
    # A rejected item also empties the list, which pydantic reports as "too short": say it once.
    items_rejected = {detail["loc"][0] for detail in details if len(detail["loc"]) > 1}
    for detail in details:
        field = str(detail["loc"][0]) if detail["loc"] else "event"
        if detail["type"] == "too_short" and len(detail["loc"]) == 1 and field in items_rejected:
            continue
        where = ".".join(str(part) for part in detail["loc"])
        if detail["type"] == "extra_forbidden":
            accepted = ", ".join(ACCEPTED_FORMS)
            problems.append(f"{_shown(field)}: unknown field (accepted fields: {accepted})")
            continue
        problem = _problem(detail)
        problems.append(f"{where}: {problem}; expected {ACCEPTED_FORMS.get(field, 'a valid value')}")
    return problems


def _message(problems: list[str]) -> str:
    """All the problems while they fit in MAX_MESSAGE_CHARS, then how many more there were.

    A thousand bad instance ids are a thousand problems; a person reads the first few
    and the count (a Lambda error message is also shown whole in the console)."""
    shown: list[str] = []
    length = len(MESSAGE_PREFIX)
    for index, problem in enumerate(problems):
        left = len(problems) - index - 1
        tail = len(f" | ... and {left} more problems") if left else 0
        if length + len(SEPARATOR) + len(problem) + tail > MAX_MESSAGE_CHARS:
            break
        shown.append(problem)
        length += len(SEPARATOR) + len(problem)
    text = MESSAGE_PREFIX + SEPARATOR.join(shown)
    if len(shown) < len(problems):
        more = len(problems) - len(shown)
        text += f"{SEPARATOR if shown else ''}... and {more} more problem{'s' if more > 1 else ''}"
    return text


def _problem(detail: Any) -> str:
    given = detail.get("input")
    if detail["type"] == "string_pattern_mismatch":
        shown = repr(given)
        return f"{shown[:80]}{'...' if len(shown) > 80 else ''} is not accepted"
    # Events are JSON: what the model holds as a tuple arrived as a list.
    return str(detail["msg"]).lower().replace("tuple", "list")
