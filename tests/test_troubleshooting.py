"""Every reason code an instance (or a run) can end with has a next step, in the code and on the site.

The codes are found in the code, not in a list kept here: the runner's are the members
of ``Reason`` (and no runner module may give a reason as a bare string, so there is no
other), the agent's are the string constants of the "reason codes" section of agent/outcomes.py, the shim's
are the ``"reason":"..."`` its result lines print.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ecr_fleet_auth.shared.reasons import Reason
from ecr_fleet_auth.shared.troubleshooting import DEFAULT_NEXT_STEP, NEXT_STEPS, next_step
from ecr_fleet_auth_cdk.document.script import AGENT_PACKAGE, ENTRYPOINT_SH, run_command_lines
from tests.support.docs import rendered_page, table_rows
from tests.support.template import PROJECT_ROOT

RUNNER_PACKAGE = PROJECT_ROOT / "lambda_src" / "ecr_fleet_auth"
# Where the runner builds a per-instance result, and which argument is its reason.
REASON_ARGUMENT = {"InstanceResult": (4, "reason"), "Exclusion": (1, "reason"), "_set": (2, "reason")}


def agent_reason_codes() -> set[str]:
    """The string constants from OK to the end of the agent's "reason codes" section."""
    lines = (AGENT_PACKAGE / "outcomes.py").read_text().splitlines()
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


def shim_reason_codes() -> set[str]:
    """What the entrypoint shim and the document's unpacking step print before the agent runs."""
    text = ENTRYPOINT_SH.read_text() + "\n".join(run_command_lines())
    return set(re.findall(r'"reason":"([a-z_]+)"', text))


def runner_reason_codes() -> set[str]:
    return {reason.value for reason in Reason}


def every_reason_code() -> set[str]:
    return agent_reason_codes() | shim_reason_codes() | runner_reason_codes()


def _literal_reasons(path: Path) -> list[str]:
    """Places in ``path`` that give a per-instance result a reason as a string literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name not in REASON_ARGUMENT:
            continue
        index, keyword = REASON_ARGUMENT[name]
        arguments = [k.value for k in node.keywords if k.arg == keyword]
        if len(node.args) > index:
            arguments.append(node.args[index])
        found += [
            f"{path.name}:{node.lineno} {name}(... {argument.value!r} ...)"
            for argument in arguments
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str)
        ]
    return found


def test_the_runner_gives_reasons_only_from_reason() -> None:
    modules = sorted(RUNNER_PACKAGE.rglob("*.py"))
    assert len(modules) > 5
    assert [place for path in modules for place in _literal_reasons(path)] == []


def test_status_tables_map_to_reason_members() -> None:
    from ecr_fleet_auth.run.results import SSM_STATUS_DETAILS, SSM_STATUSES  # noqa: PLC0415

    for status, reason in [*SSM_STATUS_DETAILS.values(), *SSM_STATUSES.values()]:
        assert isinstance(reason, Reason), (status, reason)


def test_codes_are_found_on_every_side() -> None:
    assert {"ok", "config_corrupt", "locked", "internal_error"} <= agent_reason_codes()
    assert {"no_python", "agent_unpack_failed"} <= shim_reason_codes()
    assert {"send_failed", "no_invocation", "instance_busy", "run_failed"} <= runner_reason_codes()


@pytest.mark.parametrize("code", sorted(every_reason_code()))
def test_every_reason_has_a_next_step(code: str) -> None:
    assert code in NEXT_STEPS
    assert NEXT_STEPS[code] != DEFAULT_NEXT_STEP


def test_no_next_step_for_a_reason_nothing_gives() -> None:
    assert set(NEXT_STEPS) - every_reason_code() == set()


def test_the_troubleshooting_page_gives_every_reason_its_next_step() -> None:
    """The page as the site renders it (its table generated from NEXT_STEPS): every reason any
    side can give has its row, with the next step the e-mail gives."""
    rows = {row[0]: row[1] for row in table_rows(rendered_page("operating/troubleshooting.md"))}
    missing = sorted(code for code in every_reason_code() if f"`{code}`" not in rows)
    assert missing == [], f"reasons missing from the troubleshooting page: {missing}"
    assert {code: rows[f"`{code}`"] for code in NEXT_STEPS} == NEXT_STEPS


def test_unknown_reason_gets_the_generic_step() -> None:
    assert next_step("no_such_code") == DEFAULT_NEXT_STEP
    assert next_step(None) == DEFAULT_NEXT_STEP
    assert next_step("config_corrupt") == NEXT_STEPS["config_corrupt"]
