"""`make props`: the construct's typed props, written out from the settings table.

    .venv/bin/python -m tools.generate_props [--check]

Writes ``infra/props.py``: ``EcrFleetAuthProps``, the TypedDict ``EcrFleetAuth(scope, id, **props)``
takes, a module mypy and editors read (so it is a file, not built at import). Each prop of a
setting comes from its row in ``ecr_fleet_auth/shared/settings.py`` (``SETTINGS``): its name in
snake_case, default, accepted form and meaning; its type is ``DeploymentConfig``'s field of the
same name (a list is taken as any sequence). The props that hand the construct a resource of the
app (a topic, roles, ...) are not settings; they come from ``infra/resource_props.py``. With
``--check`` nothing is written: the exit status is 1 if the file differs from what the table gives
(tests/infra/test_props.py). The docs' props reference is rendered from the same sources when the
site is built (tools/mkdocs_hooks.py).
"""

from __future__ import annotations

import argparse
import posixpath
import re
import sys
import textwrap
from pathlib import Path

from ecr_fleet_auth.shared import settings
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.resource_props import RESOURCE_PROPS

ROOT = Path(__file__).resolve().parent.parent
PROPS_MODULE = ROOT / "infra" / "props.py"
# Python types of DeploymentConfig's fields, as the props take them (any sequence for a list).
_PROP_TYPES = {"tuple[str, ...]": "Sequence[str]"}
_WIDTH = 106


def prop_type(setting: settings.Setting) -> str:
    """The field's annotation as written (Python gives it back with single quotes)."""
    annotation: str = DeploymentConfig.__annotations__[setting.field].replace("'", '"')
    return _PROP_TYPES.get(annotation, annotation)


# A markdown link of the settings' docs: [label](target), the target relative to the page they are
# shown on (docs/reference/configuration.md).
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_SETTINGS_PAGE = "docs/reference/configuration.md"


def plain_links(text: str) -> str:
    """The settings' markdown links as an editor shows a docstring best: the label, then the
    repository file it points to (a site anchor means nothing there), ``Reserved concurrency
    (docs/reference/configuration.md)``."""

    def plain(link: re.Match[str]) -> str:
        label, target = link.group(1), link.group(2).partition("#")[0]
        page = (
            posixpath.normpath(posixpath.join(posixpath.dirname(_SETTINGS_PAGE), target))
            if target
            else _SETTINGS_PAGE
        )
        return f"{label} ({page})"

    return _LINK.sub(plain, text)


def _doc_lines(text: str) -> list[str]:
    return textwrap.wrap(plain_links(text), _WIDTH - 4, break_long_words=False, break_on_hyphens=False)


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
        "Each prop of a setting is its row of ``SETTINGS`` in ``ecr_fleet_auth/shared/settings.py``: its",
        "name in snake_case, default, accepted form and meaning (the type is ``DeploymentConfig``'s). A",
        "prop left out takes its default; every value is validated when the construct is created. The",
        "props after them hand the construct what the app already has.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Mapping, Sequence",
        "from typing import TYPE_CHECKING, Literal, TypedDict",
        "",
        "from ecr_fleet_auth.shared import contract",
        "",
        "from .resource_props import ImportedOnUse",
        "",
        "if TYPE_CHECKING:",
        "    from aws_cdk import aws_iam, aws_kms, aws_sns",
        "else:",
        "    # The CDK's modules are imported when an annotation naming them is evaluated",
        "    # (typing.get_type_hints), not with this module: the docs build reads it without the CDK.",
        *(f'    {name} = ImportedOnUse("aws_cdk.{name}")' for name in ("aws_iam", "aws_kms", "aws_sns")),
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


GENERATED = {PROPS_MODULE: render_props_module}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file differs")
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
