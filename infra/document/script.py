"""Assembles the document's shell step from the agent's real files.

The deployed script is: a prelude that unpacks the Python agent beside the script
SSM runs (its orchestration directory, root-only), the `{{ Name }}` fallback for
SSM agents older than 3.3.2746.0 that do not set `$SSM_<Name>`, then the shell
shim `entrypoint.sh`, which finds a Python 3 and runs the agent.

The agent travels gzip-compressed and base64-encoded: as plain text it fills most
of SSM's 64 KB document limit. Compression is deterministic (no timestamp), so an
unchanged agent synthesizes to an unchanged document.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import textwrap
from pathlib import Path

from ecr_fleet_auth import contract

AGENT_DIR = Path(__file__).parent / "agent"
AGENT_PY = AGENT_DIR / "ecr_fleet_auth_agent.py"
ENTRYPOINT_SH = AGENT_DIR / "entrypoint.sh"
AGENT_PY_ENV = "ECR_FLEET_AUTH_AGENT_PY"
_HEREDOC_END = "ECR_FLEET_AUTH_AGENT_EOF"
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
# The one result line the contract promises, should the agent not unpack (no base64 or gzip).
_UNPACK_FAILED = (
    '{"schema":1,"action":null,"outcome":"failed","reason":"agent_unpack_failed",'
    '"message":"could not unpack the agent (base64, gzip)","host":null,"users":[]}'
)


def packed_agent(source: bytes) -> list[str]:
    """The agent as base64 lines of its gzip stream (mtime 0: the same bytes every synth)."""
    return textwrap.wrap(base64.b64encode(gzip.compress(source, compresslevel=9, mtime=0)).decode(), 76)


def unpack_agent(lines: list[str]) -> bytes:
    """The inverse of packed_agent, for tests and for anyone auditing a deployed document."""
    return gzip.decompress(base64.b64decode("".join(lines)))


def parameter_fallback_lines() -> list[str]:
    # Safe to splice into single quotes: every pattern forbids quotes and shell syntax.
    lines = []
    for parameter in contract.DOCUMENT_PARAMETERS:
        env = f"SSM_{parameter.name}"
        lines.append(f"[ -n \"${{{env}+x}}\" ] || {env}='{{{{ {parameter.name} }}}}'")
        lines.append(f"export {env}")
    return lines


def run_command_lines() -> list[str]:
    agent = AGENT_PY.read_bytes()
    entrypoint = ENTRYPOINT_SH.read_text(encoding="utf-8").splitlines()
    for name, text in (("agent", agent.decode()), ("entrypoint", "\n".join(entrypoint))):
        if _PLACEHOLDER.search(text):
            raise ValueError(f"the {name} must not contain '{{{{ }}}}': SSM would substitute it")
    if entrypoint and entrypoint[0].startswith("#!"):
        entrypoint = entrypoint[1:]
    return [
        "#!/bin/sh",
        "# ecr-fleet-auth: generated from infra/document/agent/ by the document construct.",
        f"# The agent (ecr_fleet_auth_agent.py, sha256 {hashlib.sha256(agent).hexdigest()}) follows",
        "# gzip-compressed and base64-encoded, to fit SSM's 64 KB document limit.",
        f'{AGENT_PY_ENV}="$(dirname -- "$0")/ecr_fleet_auth_agent.py"',
        f"export {AGENT_PY_ENV}",
        f"base64 -d <<'{_HEREDOC_END}' | gzip -dc > \"${AGENT_PY_ENV}\" ||"
        f" {{ printf '%s\\n' '{_UNPACK_FAILED}'; exit 1; }}",
        *packed_agent(agent),
        _HEREDOC_END,
        *parameter_fallback_lines(),
        *entrypoint,
    ]
