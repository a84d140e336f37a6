"""Assembles the document's shell step from the agent's real files.

The deployed script is: a prelude that unpacks the Python agent beside the script
SSM runs (its orchestration directory, root-only), the `{{ Name }}` fallback for
SSM agents older than 3.3.2746.0 that do not set `$SSM_<Name>`, then the shell
shim `entrypoint.sh`, which finds a Python 3 and runs the agent.

The agent travels without its comments and docstrings (the code is unchanged: a
test compares the two ASTs), gzip-compressed and base64-encoded: as plain text it
would fill SSM's 64 KB document limit. Compression is deterministic (no timestamp),
so an unchanged agent synthesizes to an unchanged document.
"""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
import io
import re
import textwrap
import tokenize

from ecr_fleet_auth import contract

from ..bundled import AGENT, bundled

AGENT_DIR = bundled(AGENT)
AGENT_PY = AGENT_DIR / "ecr_fleet_auth_agent.py"
ENTRYPOINT_SH = AGENT_DIR / "entrypoint.sh"
AGENT_PY_ENV = "ECR_FLEET_AUTH_AGENT_PY"
# The agent's TIMEOUT_ENV: the step's execution timeout, which the agent keeps its run inside.
AGENT_TIMEOUT_ENV = "ECR_FLEET_AUTH_TIMEOUT"
_HEREDOC_END = "ECR_FLEET_AUTH_AGENT_EOF"
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
# The one result line the contract promises, should the agent not unpack (no base64 or gzip).
_UNPACK_FAILED = (
    '{"schema":1,"action":null,"outcome":"failed","reason":"agent_unpack_failed",'
    '"message":"could not unpack the agent (base64, gzip)","host":null,"users":[]}'
)


def _docstring_lines(source: bytes) -> tuple[set[int], dict[int, str]]:
    """Line numbers of every docstring, and a `pass` for each that is its block's only statement."""
    lines = source.decode().splitlines()
    drop: set[int] = set()
    stand_in: dict[int, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            continue
        if not isinstance(first.value.value, str) or first.end_lineno is None:
            continue
        drop.update(range(first.lineno, first.end_lineno + 1))
        if len(node.body) == 1:
            stand_in[first.lineno] = lines[first.lineno - 1][: first.col_offset] + "pass"
    return drop, stand_in


def shipped_agent(source: bytes) -> bytes:
    """The agent without comments and docstrings: the same code in fewer bytes."""
    drop, stand_in = _docstring_lines(source)
    kept = [
        stand_in.get(number, "" if number in drop else line)
        for number, line in enumerate(source.decode().splitlines(), 1)
    ]
    readline = io.StringIO("\n".join(kept) + "\n").readline
    tokens = [token for token in tokenize.generate_tokens(readline) if token.type != tokenize.COMMENT]
    return "\n".join(line.rstrip() for line in tokenize.untokenize(tokens).splitlines()).encode() + b"\n"


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


def timeout_lines(seconds: int | None) -> list[str]:
    if seconds is None:
        return []
    return [f"{AGENT_TIMEOUT_ENV}={int(seconds)}", f"export {AGENT_TIMEOUT_ENV}"]


def run_command_lines(execution_timeout_seconds: int | None = None) -> list[str]:
    """The step's lines; with the step's timeout, exported as $ECR_FLEET_AUTH_TIMEOUT so that the agent
    stops short of it and still prints its result line (without it the agent assumes the default)."""
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
        f"# The agent (ecr_fleet_auth_agent.py, sha256 {hashlib.sha256(agent).hexdigest()}) follows without",
        "# comments and docstrings, gzip-compressed and base64-encoded, to fit SSM's 64 KB document limit.",
        f'{AGENT_PY_ENV}="$(dirname -- "$0")/ecr_fleet_auth_agent.py"',
        f"export {AGENT_PY_ENV}",
        f"base64 -d <<'{_HEREDOC_END}' | gzip -dc > \"${AGENT_PY_ENV}\" ||"
        f" {{ printf '%s\\n' '{_UNPACK_FAILED}'; exit 1; }}",
        *packed_agent(shipped_agent(agent)),
        _HEREDOC_END,
        *parameter_fallback_lines(),
        *timeout_lines(execution_timeout_seconds),
        *entrypoint,
    ]
