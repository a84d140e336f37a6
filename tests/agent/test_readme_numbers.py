"""The numbers the documentation states about the agent are the agent's."""

from __future__ import annotations

from pathlib import Path

from agent.as_user import USER_PATH
from agent.go_json import MAX_JSON_DEPTH
from agent.main import DEFAULT_TIMEOUT
from agent.reading import MAX_CONFIG_BYTES
from agent.records import REFRESH_MARGIN
from agent.stores import HELPER_TIMEOUT
from ecr_fleet_auth.shared.contract import DOCUMENT_PARAMETERS


def test_the_readme_states_the_agents_numbers() -> None:
    """What the documentation promises about refresh timing, helper calls, sizes and the model's floor."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    readme = "\n".join((docs / page).read_text() for page in ("index.md", "how-it-works/agent.md"))
    margin = REFRESH_MARGIN.total_seconds() / 3600
    assert f"renews every token with {margin:.0f} hours or less left" in readme
    assert f"runs must reach each instance less than {margin:.0f} hours apart" in readme
    assert f"Each call of a credential helper or\n  store has {HELPER_TIMEOUT} seconds" in readme
    assert f"Files larger than {MAX_CONFIG_BYTES // 2**20} MiB are not read" in readme
    assert f"Go's limit of {MAX_JSON_DEPTH:,} levels" in readme
    assert f"default of {DEFAULT_TIMEOUT} seconds" in readme
    assert f"`{USER_PATH}`" in readme


def test_the_reference_states_how_many_parameters_the_document_takes() -> None:
    """The reference says the document takes, and the runner always sends, as many parameters as
    DOCUMENT_PARAMETERS has (KeepUserDockerLogin made it six), and no page states another count."""
    words = {5: "five", 6: "six", 7: "seven", 8: "eight"}
    count = words[len(DOCUMENT_PARAMETERS)]
    docs = Path(__file__).resolve().parents[2] / "docs"
    contract = (docs / "reference" / "contract.md").read_text()
    configuration = (docs / "reference" / "configuration.md").read_text()
    assert f"takes {count} parameters, built from" in contract
    assert f"\n{count}; the defaults apply only" in contract
    assert f"The runner always sends all {count} document parameters" in configuration
    pages = "\n".join(path.read_text() for path in docs.rglob("*.md"))
    for other in set(words.values()) - {count}:
        for phrase in (
            f"takes {other} parameters",
            f"all {other} document parameters",
            f"runner's {other} parameters",
        ):
            assert phrase not in pages
