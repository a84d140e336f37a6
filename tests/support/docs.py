"""The documentation site's pages as the site shows them: generated parts rendered from the code."""

from __future__ import annotations

import html
import re

from tests.support.template import PROJECT_ROOT
from tools.mkdocs_hooks import expand

DOCS = PROJECT_ROOT / "docs"


def rendered_page(page: str) -> str:
    """``docs/<page>`` with its ``<!-- reference: ... -->`` parts rendered, as MkDocs builds it."""
    return expand((DOCS / page).read_text(encoding="utf-8"))


def section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading of any level."""
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = re.search(r"\n#+ ", text[start:])
    return text[start : start + end.start()] if end else text[start:]


def table_rows(text: str) -> list[list[str]]:
    """The rows of the tables in ``text`` whose first cell is code, as plain cell texts."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = re.split(r"(?<!\\) \| ", line.strip()[2:-2])
            rows.append([html.unescape(cell.replace("\\|", "|")) for cell in cells])
    return rows
