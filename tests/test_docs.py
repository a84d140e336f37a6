"""The documentation site: it builds strictly, its generated reference is whole, it points nowhere missing.

The strict build fails on a broken link or anchor, a page left out of the navigation and an unknown
generated part (mkdocs.yml's ``validation``); the reference tests render the pages as the build
does (tools/mkdocs_hooks.py) and require every setting, reason, event field and result-line field.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from ecr_fleet_auth.shared.events import RunRequest
from ecr_fleet_auth.shared.settings import CONTEXT_SETTINGS, RUNNER_SETTINGS
from ecr_fleet_auth.shared.troubleshooting import NEXT_STEPS
from ecr_fleet_auth_cdk.document.script import AGENT_PACKAGE
from tests.support.docs import DOCS, rendered_page, table_rows
from tests.support.event_samples import RUN_REQUEST_SAMPLES, load_event
from tests.support.template import PROJECT_ROOT
from tools.mkdocs_hooks import PARTS, SIMULATOR_README, event_json_schema, expand

# A file of this project may point neither at a design file outside it nor at a missing CONTRACT
# file (spelled with character classes so that this file does not match itself).
OUTSIDE_REFERENCES = re.compile(r"CONTRAC[T]\.md|\.\.[/]shared")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout}\n{built.stderr}"
    return site


def test_the_site_builds_strictly_with_its_generated_pages(built_site: Path) -> None:
    configuration = (built_site / "reference" / "configuration" / "index.html").read_text()
    for setting in CONTEXT_SETTINGS:
        assert f"<td><code>{setting.key}</code></td>" in configuration, setting.key
    troubleshooting = (built_site / "operating" / "troubleshooting" / "index.html").read_text()
    for reason in NEXT_STEPS:
        assert f"<td><code>{reason}</code></td>" in troubleshooting, reason
    simulator = (built_site / "development" / "simulator" / "index.html").read_text()
    assert "One engine, two clocks." in simulator, f"{SIMULATOR_README} is the simulator's page"
    assert "reference:" not in configuration + troubleshooting, "every generated part was rendered"


def test_every_generated_part_a_page_asks_for_exists_and_every_part_is_used() -> None:
    asked = {
        name
        for page in DOCS.rglob("*.md")
        for name in re.findall(r"<!-- reference: ([a-z-]+) -->", page.read_text(encoding="utf-8"))
    }
    assert asked == set(PARTS)


def test_an_unknown_generated_part_fails_the_build() -> None:
    with pytest.raises(ValueError, match="unknown generated part 'settngs'"):
        expand("<!-- reference: settngs -->")


def test_the_contract_lists_every_runner_variable_and_event_field() -> None:
    contract_page = rendered_page("reference/contract.md")
    for setting in RUNNER_SETTINGS:
        assert f"| `{setting.env}` |" in contract_page, setting.env
    for field in RunRequest.model_fields:
        assert f"| `{field}` |" in contract_page, field


def test_the_invoking_page_explains_every_event_field() -> None:
    fields = [row[0] for row in table_rows(rendered_page("operating/invoking.md")) if len(row) == 3]
    assert set(fields) >= {f"`{field}`" for field in RunRequest.model_fields}


def _result_line_keys() -> set[str]:
    """The keys of the agent's result line: the dict ``Report.result`` returns, and what
    ``result_line`` adds when users are left out."""
    tree = ast.parse((AGENT_PACKAGE / "result.py").read_text(encoding="utf-8"))
    keys = {"users_truncated"}
    (report,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Report"]
    (result,) = [n for n in report.body if isinstance(n, ast.FunctionDef) and n.name == "result"]
    (returned,) = [n.value for n in ast.walk(result) if isinstance(n, ast.Return)]
    assert isinstance(returned, ast.Dict)
    keys |= {key.value for key in returned.keys if isinstance(key, ast.Constant)}
    assert "users_truncated" in (AGENT_PACKAGE / "result.py").read_text(encoding="utf-8")
    return keys


def test_the_contract_describes_every_field_of_the_agents_result_line() -> None:
    text = rendered_page("reference/contract.md")
    result_line = text[text.index("## The agent's result line") : text.index("## The runner's event")]
    documented = {row[0].strip("`") for row in table_rows(result_line)}
    assert _result_line_keys() <= documented, _result_line_keys() - documented


def _documented_events() -> list[dict[str, object]]:
    page = (DOCS / "operating" / "invoking.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\"action\": \"check\", \"dry_run\": true\}.*?)```", page, re.DOTALL)
    assert block, "the invoking page's example events"
    return [json.loads(line) for line in block.group(1).splitlines() if line.strip()]


def test_the_published_event_schema_is_the_models() -> None:
    """The schema on the contract page takes the events the runner takes and refuses a null."""
    schema = event_json_schema()
    events = [*_documented_events()]
    events += [load_event(name) for name in RUN_REQUEST_SAMPLES]
    for event in events:
        RunRequest.from_event(event)
        jsonschema.validate(event, schema)
    for refused in ({"instance_ids": None}, {"source": "tag_change"}, {"dry_run": "true"}, {"nope": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(refused, schema)


def test_no_file_points_outside_the_project_for_its_contract() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    found = [
        f"{name}:{number}"
        for name in listed
        if (PROJECT_ROOT / name).is_file()
        for number, line in enumerate(
            (PROJECT_ROOT / name).read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if OUTSIDE_REFERENCES.search(line)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("page", "part"),
    [
        ("reference/props.md", "construct-props"),
        ("reference/configuration.md", "settings"),
        ("reference/configuration.md", "document-defaults"),
    ],
)
def test_a_reference_table_says_where_it_is_without_building(page: str, part: str) -> None:
    """Read in the repository (GitHub, an editor), the page has no table, only its marker: the note
    after it says how to build the site and which committed files hold the same reference (each link
    resolving to a file of the repository); the build puts the table in place of both."""
    text = (DOCS / page).read_text(encoding="utf-8")
    start = text.index(f"<!-- reference: {part} -->")
    note = text[start : text.index("<!-- /reference -->", start)]
    assert "`make docs`" in note
    links = re.findall(r"\]\((\.\./[^)]+)\)", note)
    assert links, note
    for link in links:
        assert ((DOCS / page).parent / link).resolve().is_file(), link
    rendered = rendered_page(page)
    assert "This table is generated when the site is built" not in rendered
    assert "/reference -->" not in rendered


def test_the_pages_say_what_the_alarms_and_the_dashboard_do(synthesized_template: dict[str, object]) -> None:
    """The alarms publish on ALARM only (no ``OKActions`` in the template: CloudWatch sends to an alarm's
    OKActions "when this alarm transitions into an OK state", AWS::CloudWatch::Alarm), and the
    organization dashboard's per-account views are Logs Insights tables, not ``SEARCH`` graphs of
    per-account metrics: no page may say otherwise."""
    alarms = [
        resource["Properties"]
        for resource in synthesized_template["Resources"].values()  # type: ignore[attr-defined]
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert alarms and not any(alarm.get("OKActions") for alarm in alarms)
    stale = ("when it clears", "one line per account", "`SEARCH`")
    for page in DOCS.rglob("*.md"):
        text = " ".join(page.read_text(encoding="utf-8").split())
        for phrase in stale:
            assert phrase not in text, f"{page.relative_to(DOCS)} says {phrase!r}"
