"""Every reason code an instance can end with has a next step, in the code and in the README."""

from __future__ import annotations

import ast
import re

from ecr_fleet_auth.troubleshooting import DEFAULT_NEXT_STEP, NEXT_STEPS, next_step
from infra.document.script import AGENT_PY, ENTRYPOINT_SH, run_command_lines
from tests.support.template import PROJECT_ROOT


def agent_reason_codes() -> set[str]:
    """The string constants from OK to the end of the agent's "reason codes" section."""
    lines = AGENT_PY.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("# ---") and "reason codes" in line)
    last = next(i for i in range(first + 1, len(lines)) if lines[i].startswith("# ---"))
    section = ast.parse("\n".join(lines[first:last]))
    constants = [
        node.value.value
        for node in section.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]
    return set(constants[constants.index("ok") :])


def test_every_agent_reason_has_a_next_step() -> None:
    codes = agent_reason_codes()
    assert {"ok", "config_corrupt", "locked", "internal_error"} <= codes
    shim_codes = set(
        re.findall(r'"reason":"([a-z_]+)"', ENTRYPOINT_SH.read_text() + "\n".join(run_command_lines()))
    )
    assert shim_codes == {"no_python", "agent_unpack_failed"}
    assert codes | shim_codes <= set(NEXT_STEPS)


def test_readme_table_matches_the_code() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (.+) \|$", readme, flags=re.MULTILINE))
    assert {code: rows.get(code) for code in NEXT_STEPS} == NEXT_STEPS


def test_unknown_reason_gets_the_generic_step() -> None:
    assert next_step("no_such_code") == DEFAULT_NEXT_STEP
    assert next_step(None) == DEFAULT_NEXT_STEP
    assert next_step("config_corrupt") == NEXT_STEPS["config_corrupt"]
