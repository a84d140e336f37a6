"""Assembles the document's shell step from the agent's real files (the top-level agent/ folder).

The deployed script is: a prelude that unpacks the Python agent beside the script
SSM runs (its orchestration directory, root-only), the `{{ Name }}` fallback for
SSM agents older than 3.3.2746.0 that do not set `$SSM_<Name>`, then the shell
shim `entrypoint.sh`, which finds a Python 3 and runs the agent.

The agent is a package of small modules; it travels as one file, a zip application
(`python3 <file>` runs its `__main__.py`, agent/__main__.py, which unpacks and imports the
package). Each module goes without its comments and docstrings and indented one space a level, on
its own lines (the code is unchanged: a test compares the ASTs, module by module); the modules are
one xz-compressed payload (`<path> <length>` lines, each followed by the module: the modules
compress together, and lzma packs them a tenth smaller than gzip) beside `__main__.py` (deflated) in
the application, which is base64-encoded
in long lines (each line of the step costs a few bytes of JSON): as plain text the agent would fill
SSM's 64 KB document limit. Every step is deterministic (sorted entries, fixed timestamps and
permissions, xz has no timestamp), so an unchanged agent synthesizes to an unchanged document.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import lzma
import re
import textwrap
import tokenize
import zipfile

from ecr_fleet_auth.shared import contract

from ..bundled import AGENT, bundled

# The agent package's folder: the repository's agent/, or the wheel's copy of it (infra/bundled.py).
# Its name is the package's name in the zip application.
AGENT_PACKAGE = bundled(AGENT)
ENTRYPOINT_SH = AGENT_PACKAGE / "entrypoint.sh"
# The package's __main__.py also sits at the zip's root, where `python3 <file>` looks for it.
MAIN_MODULE = "__main__.py"
# Beside it, the modules, xz-compressed (agent/__main__.py's PAYLOAD and `modules`).
PAYLOAD = "agent.xz"
# Characters of base64 per line of the step: long lines, since each costs its quotes and comma in JSON.
PACKED_LINE = 2048
# The file the script unpacks the agent to, beside _script.sh; the shim runs what $AGENT_PY_ENV names.
AGENT_FILE = "ecr_fleet_auth_agent.pyz"
AGENT_PY_ENV = "ECR_FLEET_AUTH_AGENT_PY"
# The agent's TIMEOUT_ENV: the step's execution timeout, which the agent keeps its run inside.
AGENT_TIMEOUT_ENV = "ECR_FLEET_AUTH_TIMEOUT"
_HEREDOC_END = "ECR_FLEET_AUTH_AGENT_EOF"
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
# zip's earliest date: no build time in the archive.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_UNIX = 3
# The one result line the contract promises, should the agent not unpack (no base64).
_UNPACK_FAILED = (
    '{"schema":1,"action":null,"outcome":"failed","reason":"agent_unpack_failed",'
    '"message":"could not unpack the agent (base64)","host":null,"users":[]}'
)


def agent_sources() -> dict[str, bytes]:
    """The agent's modules as they are in the repository, by their path in the zip application:
    agent/<module>.py, and agent/__main__.py as the application's __main__.py."""
    sources = {}
    for path in sorted(AGENT_PACKAGE.glob("*.py")):
        name = MAIN_MODULE if path.name == MAIN_MODULE else f"{AGENT_PACKAGE.name}/{path.name}"
        sources[name] = path.read_bytes()
    return sources


def sources_digest(sources: dict[str, bytes]) -> str:
    """What `cd agent && LC_ALL=C sha256sum *.py | sha256sum` prints: one digest for the whole package."""
    by_file = {name.rsplit("/", 1)[-1]: source for name, source in sources.items()}
    listing = "".join(f"{hashlib.sha256(by_file[name]).hexdigest()}  {name}\n" for name in sorted(by_file))
    return hashlib.sha256(listing.encode()).hexdigest()


def _docstring_lines(source: bytes) -> tuple[set[int], dict[int, str]]:
    """Line numbers of every docstring, and a `pass` for each that is its block's only statement."""
    lines = source.decode().splitlines()
    drop: set[int] = set()
    stand_in: dict[int, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not node.body:  # an empty module
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


def _one_space_indents(text: str) -> str:
    """Each statement indented one space a level, continuation lines not at all (inside brackets or
    after a backslash, indentation means nothing); lines inside a string are left as they are."""
    depth, statement_starts, inside_strings = 0, {}, set[int]()
    at_statement_start = True
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.INDENT:
            depth += 1
        elif token.type == tokenize.DEDENT:
            depth -= 1
        elif token.type == tokenize.NEWLINE:
            at_statement_start = True
        elif token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER):
            if at_statement_start:
                statement_starts[token.start[0]] = depth
                at_statement_start = False
            inside_strings.update(range(token.start[0] + 1, token.end[0] + 1))
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if number in inside_strings:
            lines.append(line)
        else:
            lines.append(" " * statement_starts.get(number, 0) + line.lstrip())
    return "\n".join(lines) + "\n"


def stripped_module(source: bytes) -> bytes:
    """A module without comments and docstrings, indented one space a level: the same code (the same
    AST) in fewer bytes, on the same lines (a traceback from an instance names the repository's lines)."""
    drop, stand_in = _docstring_lines(source)
    kept = [
        stand_in.get(number, "" if number in drop else line)
        for number, line in enumerate(source.decode().splitlines(), 1)
    ]
    readline = io.StringIO("\n".join(kept) + "\n").readline
    tokens = [token for token in tokenize.generate_tokens(readline) if token.type != tokenize.COMMENT]
    return _one_space_indents(
        "\n".join(line.rstrip() for line in tokenize.untokenize(tokens).splitlines()) + "\n"
    ).encode()


def zip_application(files: dict[str, bytes]) -> bytes:
    """A zip application of __main__.py (deflated) and the payload (stored: xz-compressed already), the
    same bytes for the same files: entries sorted, fixed dates and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
            entry.create_system = _ZIP_UNIX
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED if name == MAIN_MODULE else zipfile.ZIP_STORED
            archive.writestr(entry, files[name], compresslevel=9)
    return buffer.getvalue()


def payload(modules: dict[str, bytes]) -> bytes:
    """The modules as agent/__main__.py's `modules` reads them, sorted, xz-compressed."""
    listing = b"".join(
        b"%s %d\n%s" % (name.encode(), len(source), source) for name, source in sorted(modules.items())
    )
    return lzma.compress(listing, preset=9 | lzma.PRESET_EXTREME)


def shipped_agent() -> bytes:
    """The file the document carries: a zip application of agent/__main__.py, stripped, and the other
    modules, stripped, as its xz-compressed payload."""
    stripped = {name: stripped_module(source) for name, source in agent_sources().items()}
    main = stripped.pop(MAIN_MODULE)
    return zip_application({MAIN_MODULE: main, PAYLOAD: payload(stripped)})


def shipped_modules(application: bytes) -> dict[str, bytes]:
    """The modules inside a shipped agent, by their path in it (for tests and audits)."""
    with zipfile.ZipFile(io.BytesIO(application)) as archive:
        found = {MAIN_MODULE: archive.read(MAIN_MODULE)}
        listing = lzma.decompress(archive.read(PAYLOAD))
    position = 0
    while position < len(listing):
        end = listing.index(b"\n", position)
        name, size = listing[position:end].decode().rsplit(" ", 1)
        position = end + 1 + int(size)
        found[name] = listing[end + 1 : position]
    return found


def packed_agent(application: bytes) -> list[str]:
    """The agent as base64 lines."""
    return textwrap.wrap(base64.b64encode(application).decode(), PACKED_LINE)


def unpack_agent(lines: list[str]) -> bytes:
    """The inverse of packed_agent, for tests and for anyone auditing a deployed document."""
    return base64.b64decode("".join(lines))


def stripped_shell(lines: list[str]) -> list[str]:
    """The shim's lines without its shebang and its comment lines (the repository's file has them; the
    document's bytes are scarce). Only whole-line comments go: the shim has no here-document."""
    return [line for line in lines if not line.lstrip().startswith("#")]


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
    sources = agent_sources()
    entrypoint = ENTRYPOINT_SH.read_text(encoding="utf-8").splitlines()
    texts = [(f"agent module {name}", source.decode()) for name, source in sources.items()]
    for name, text in [*texts, ("entrypoint", "\n".join(entrypoint))]:
        if _PLACEHOLDER.search(text):
            raise ValueError(f"the {name} must not contain '{{{{ }}}}': SSM would substitute it")
    entrypoint = stripped_shell(entrypoint)
    return [
        "#!/bin/sh",
        "# ecr-fleet-auth, generated from agent/ by infra/document: the agent (agent/*.py:",
        f"# LC_ALL=C sha256sum *.py | sha256sum = {sources_digest(sources)}), a zip application, base64.",
        f'{AGENT_PY_ENV}="$(dirname -- "$0")/{AGENT_FILE}"',
        f"export {AGENT_PY_ENV}",
        f"base64 -d <<'{_HEREDOC_END}' > \"${AGENT_PY_ENV}\" ||"
        f" {{ printf '%s\\n' '{_UNPACK_FAILED}'; exit 1; }}",
        *packed_agent(shipped_agent()),
        _HEREDOC_END,
        *parameter_fallback_lines(),
        *timeout_lines(execution_timeout_seconds),
        *entrypoint,
    ]
