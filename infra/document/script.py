"""Assembles the document's shell step from the agent's real files.

The deployed script is: a prelude that writes the Python agent beside the script
SSM runs (its orchestration directory, root-only), the `{{ Name }}` fallback for
SSM agents older than 3.3.2746.0 that do not set `$SSM_<Name>`, then the shell
shim `entrypoint.sh`, which finds a Python 3 and runs the agent.
"""

from __future__ import annotations

import re
from pathlib import Path

from ecr_fleet_auth import contract

AGENT_DIR = Path(__file__).parent / "agent"
AGENT_PY = AGENT_DIR / "ecr_fleet_auth_agent.py"
ENTRYPOINT_SH = AGENT_DIR / "entrypoint.sh"
AGENT_PY_ENV = "ECR_FLEET_AUTH_AGENT_PY"
_HEREDOC_END = "ECR_FLEET_AUTH_AGENT_PY_EOF"
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def parameter_fallback_lines() -> list[str]:
    # Safe to splice into single quotes: every pattern forbids quotes and shell syntax.
    lines = []
    for parameter in contract.DOCUMENT_PARAMETERS:
        env = f"SSM_{parameter.name}"
        lines.append(f"[ -n \"${{{env}+x}}\" ] || {env}='{{{{ {parameter.name} }}}}'")
        lines.append(f"export {env}")
    return lines


def run_command_lines() -> list[str]:
    agent = AGENT_PY.read_text(encoding="utf-8")
    entrypoint = ENTRYPOINT_SH.read_text(encoding="utf-8").splitlines()
    for name, text in (("agent", agent), ("entrypoint", "\n".join(entrypoint))):
        if _PLACEHOLDER.search(text):
            raise ValueError(f"the {name} must not contain '{{{{ }}}}': SSM would substitute it")
    if _HEREDOC_END in agent.splitlines():
        raise ValueError(f"the agent must not contain a line '{_HEREDOC_END}'")
    if entrypoint and entrypoint[0].startswith("#!"):
        entrypoint = entrypoint[1:]
    return [
        "#!/bin/sh",
        "# ecr-fleet-auth: generated from infra/document/agent/ by the document construct",
        f'{AGENT_PY_ENV}="$(dirname -- "$0")/ecr_fleet_auth_agent.py"',
        f"export {AGENT_PY_ENV}",
        f"cat > \"${AGENT_PY_ENV}\" <<'{_HEREDOC_END}'",
        *agent.splitlines(),
        _HEREDOC_END,
        *parameter_fallback_lines(),
        *entrypoint,
    ]
