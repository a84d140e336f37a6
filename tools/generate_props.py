"""`make props`: the construct's typed props and their reference, written out from the settings table.

    .venv/bin/python -m tools.generate_props [--check]

Writes ``infra/props.py`` (``EcrFleetAuthProps``, the TypedDict ``EcrFleetAuth(scope, id, **props)``
takes) and the props reference, the README's block between ``REFERENCE_START`` and
``REFERENCE_END``. Each prop of a setting comes from its row in
``ecr_fleet_auth/settings.py`` (``SETTINGS``): its name in snake_case, default, accepted form and
meaning; its type is ``DeploymentConfig``'s field of the same name (a list is taken as any
sequence). The props that hand the construct a resource of the app (a topic, roles, ...) are not
settings; they are written out from ``RESOURCE_PROPS`` below. With ``--check`` nothing is written:
the exit status is 1 if a file differs from what the table gives (tests/infra/test_props.py).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import typing
from dataclasses import dataclass
from pathlib import Path

from ecr_fleet_auth import contract, settings
from ecr_fleet_auth_cdk.config import DeploymentConfig

ROOT = Path(__file__).resolve().parent.parent
PROPS_MODULE = ROOT / "infra" / "props.py"
README = ROOT / "README.md"
REFERENCE_START = "<!-- props reference: generated from the settings table by make props; do not edit -->"
REFERENCE_END = "<!-- end of the props reference -->"
# Python types of DeploymentConfig's fields, as the props take them (any sequence for a list).
_PROP_TYPES = {"tuple[str, ...]": "Sequence[str]"}
_WIDTH = 106


@dataclass(frozen=True)
class ResourceProp:
    """A prop that hands the construct something the app already has (not a setting: no cdk.json key)."""

    name: str
    type: str
    doc: str


RESOURCE_PROPS = (
    ResourceProp(
        "name",
        "str",
        "The name this deployment goes by: the runner's metrics' `service` dimension (its alarms read only "
        "its own), the dashboard `<name>-<region>`, and in organization mode the StackSet `<name>-Members` "
        "and the member accounts' `<name>-Agent-...` document and `<name>-InstanceAccess` policy. Default: "
        "the stack's name, followed by `-<construct id>` unless the id is `Default`; the form of `stackName` "
        "(letters, digits, -).",
    ),
    ResourceProp(
        "topic",
        "aws_sns.ITopic",
        "An existing SNS topic for the run reports and the alarms, instead of the encrypted topic the "
        "construct creates (then it creates no topic and no key). The runner may `sns:Publish` to it. "
        "CloudWatch alarms publish to it as the service `cloudwatch.amazonaws.com`: if it is encrypted, "
        "its key policy must allow that service `kms:Decrypt` and `kms:GenerateDataKey*` (the construct "
        "adds the statement to a key of the same app, not to an imported one).",
    ),
    ResourceProp(
        "topic_key",
        "aws_kms.IKey",
        "The KMS key `topic` is encrypted with: the runner may `kms:GenerateDataKey*` and `kms:Decrypt` with "
        "it to publish. Only with `topic`.",
    ),
    ResourceProp(
        "instance_roles",
        "Sequence[aws_iam.IRole]",
        "Instance roles to attach the instances' managed policy to (ECR tokens, pulls, Run Command output); "
        "they need `AmazonSSMManagedInstanceCore` too. Default: none (attach the policy, "
        "`EcrFleetAuth.instance_policy`, yourself).",
    ),
    ResourceProp(
        "permissions_boundary",
        "aws_iam.IManagedPolicy",
        "A permissions boundary for every IAM role the construct creates (the runner's, the schedule's, the "
        "stack's shared AwsCustomResource provider's). Member accounts' roles in organization mode are "
        "created by the StackSet and do not get it.",
    ),
    ResourceProp(
        "tags",
        "Mapping[str, str]",
        "Tags for every taggable resource the construct creates (and the StackSet, which passes them to "
        "the member stacks' resources). Keys and values as AWS accepts them.",
    ),
)


def prop_type(setting: settings.Setting) -> str:
    """The field's annotation as written (Python gives it back with single quotes)."""
    annotation: str = DeploymentConfig.__annotations__[setting.field].replace("'", '"')
    return _PROP_TYPES.get(annotation, annotation)


def _readable_type(annotation: str) -> str:
    """A type as the reference shows it: ``contract.Action`` as its values."""

    def values(match: re.Match[str]) -> str:
        return " \\| ".join(repr(value) for value in typing.get_args(getattr(contract, match[1])))

    shown = re.sub(r"contract\.(\w+)", values, annotation)
    shown = re.sub(r"Literal\[(.*?)\]", lambda m: m[1].replace(", ", " \\| "), shown)
    return shown.replace(" | ", " \\| ")


def _doc_lines(text: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH - 4, break_long_words=False, break_on_hyphens=False)


def _docstring(paragraphs: list[str]) -> list[str]:
    lines: list[str] = []
    for number, paragraph in enumerate(paragraphs):
        if number:
            lines.append("")
        lines.extend(_doc_lines(paragraph.replace('"""', "'''").replace("\\", "\\\\")))
    lines[0] = '"""' + lines[0]
    lines[-1] += '"""'
    return ["    " + line if line else "" for line in lines]


def setting_doc(setting: settings.Setting) -> list[str]:
    return [
        setting.doc,
        f"Default: `{setting.default!r}`; accepted: {setting.form}; cdk.json: `{setting.key}`.",
    ]


def render_props_module() -> str:
    lines = [
        '"""The props of ``EcrFleetAuth``, generated from the settings table by ``make props``: do not edit.',
        "",
        "Each prop of a setting is its row of ``SETTINGS`` in ``ecr_fleet_auth/settings.py``: its name",
        "in snake_case, default, accepted form and meaning (the type is ``DeploymentConfig``'s). A prop",
        "left out takes its default; every value is validated when the construct is created. The props",
        "after them hand the construct what the app already has.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Mapping, Sequence",
        "from typing import TYPE_CHECKING, Literal, TypedDict",
        "",
        "if TYPE_CHECKING:",
        "    from aws_cdk import aws_iam, aws_kms, aws_sns",
        "",
        "    from ecr_fleet_auth import contract",
        "",
        "",
        "class EcrFleetAuthProps(TypedDict, total=False):",
        '    """Keyword arguments of ``EcrFleetAuth(scope, id, **props)``; every one is optional."""',
    ]
    for setting in settings.PROP_SETTINGS:
        lines += ["", f"    {setting.field}: {prop_type(setting)}", *_docstring(setting_doc(setting))]
    lines += ["", "    # What the app already has (not settings: no cdk.json key)."]
    for prop in RESOURCE_PROPS:
        lines += ["", f"    {prop.name}: {prop.type}", *_docstring([prop.doc])]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_reference() -> str:
    """The props reference: a table of the settings' props, one of the resources'."""
    lines = [
        "| prop | type | default | accepted | meaning | `cdk.json` key |",
        "|---|---|---|---|---|---|",
    ]
    for setting in settings.PROP_SETTINGS:
        lines.append(
            f"| `{setting.field}` | `{_readable_type(prop_type(setting))}` | `{setting.default!r}` | "
            f"{_cell(setting.form)} | {setting.doc} | `{setting.key}` |"
        )
    lines += [
        "",
        "What the app already has (no `cdk.json` key):",
        "",
        "| prop | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{prop.name}` | `{prop.type}` | {prop.doc} |" for prop in RESOURCE_PROPS]
    return "\n".join(lines) + "\n"


def render_readme() -> str:
    """README.md with its props reference block written anew."""
    text = README.read_text(encoding="utf-8")
    start, end = text.find(REFERENCE_START), text.find(REFERENCE_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {REFERENCE_START!r} ... {REFERENCE_END!r} block")
    return text[: start + len(REFERENCE_START)] + "\n" + render_reference() + text[end:]


GENERATED = {PROPS_MODULE: render_props_module, README: render_readme}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    check = parser.parse_args(argv).check
    stale = []
    for path, render in GENERATED.items():
        text = render()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'differs from the settings table' if check else 'wrote'}: {path}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
