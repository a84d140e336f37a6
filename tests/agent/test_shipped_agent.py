"""The file the document carries, as its script unpacks it, under the oldest Pythons the agent meets.

The agent's floor is Python 3.6 (RHEL 8's /usr/libexec/platform-python; Amazon Linux 2's python3 is
3.7). These run the packed agent itself, `python -I <file>` as entrypoint.sh runs it, on paths that
need no root tools: every module compiles and imports there, and a refused parameter still ends in
the one result line the runner reads (contract.py's keys, its schema).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth_cdk.document.script import AGENT_FILE, shipped_modules
from tests.agent.old_pythons import OLDEST, old_python
from tests.support.prerequisites import require

RESULT_KEYS = {"schema", "action", "outcome", "reason", "message", "host", "users"}


@pytest.fixture(scope="module")
def shipped_agent_file(agent_script: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent unpacked by the synthesized document's own prelude (`base64 -d`)."""
    lines = agent_script.splitlines()
    end = lines.index("ECR_FLEET_AUTH_AGENT_EOF")
    folder = tmp_path_factory.mktemp("orchestration")
    prelude = folder / "_script.sh"
    prelude.write_text("\n".join(lines[: end + 1]) + "\n")
    subprocess.run(["/bin/sh", str(prelude)], check=True, capture_output=True)
    return folder / AGENT_FILE


def interpreter(version: str, platform: str) -> str:
    found = old_python(version)
    require(found is not None, f"a Python {version} interpreter (pyenv) standing in for {platform}")
    assert found is not None
    return found


@pytest.mark.parametrize(("version", "platform"), OLDEST)
def test_every_module_of_the_shipped_agent_imports(
    shipped_agent_file: Path, version: str, platform: str
) -> None:
    """Through the file's own __main__.py (agent/__main__.py's install: the modules, xz-compressed, are
    imported from memory), each compiled under its path in the file: a traceback names it and the
    repository's line (tests/infra/test_document.py keeps the lines)."""
    python = interpreter(version, platform)
    names = sorted(
        name[len("agent/") : -len(".py")]
        for name in shipped_modules(shipped_agent_file.read_bytes())
        if name.startswith("agent/") and name != "agent/__init__.py"
    )
    listing = (
        "import importlib, runpy, sys; pyz = sys.argv[1]; "
        "runpy.run_path(pyz, run_name='check')['install'](pyz); "
        "modules = [importlib.import_module('agent.' + name) for name in sys.argv[2:]]; "
        "assert all(m.__spec__.origin == pyz + '/agent/%s.py' % n for m, n in zip(modules, sys.argv[2:])); "
        "code = importlib.import_module('agent.host_clients').identify.__code__; "
        "assert code.co_filename == pyz + '/agent/host_clients.py', code.co_filename; "
        "print('%d.%d' % sys.version_info[:2], len(modules))"
    )
    done = subprocess.run(
        [python, "-I", "-c", listing, str(shipped_agent_file), *names],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [version, str(len(names))]
    packaged = {path.stem for path in (Path(__file__).parents[2] / "agent").glob("*.py")}
    assert set(names) == packaged - {"__init__", "__main__"}, "__main__.py is the file's own, at its root"


@pytest.mark.parametrize(("version", "platform"), OLDEST)
def test_without_lzma_the_result_line_says_the_agent_could_not_be_unpacked(
    shipped_agent_file: Path, version: str, platform: str
) -> None:
    """A Python built without its lzma module (distributions' python3 always have it) cannot read the
    payload: the file still prints the one result line, reason agent_unpack_failed."""
    python = interpreter(version, platform)
    run_without_lzma = (
        "import runpy, sys; sys.modules['lzma'] = None; runpy.run_path(sys.argv[1], run_name='__main__')"
    )
    done = subprocess.run(
        [python, "-I", "-c", run_without_lzma, str(shipped_agent_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert set(result) == RESULT_KEYS
    assert (result["outcome"], result["reason"]) == ("failed", "agent_unpack_failed")


# (the SSM environment, the action the result line names, the parameter its message names)
REFUSALS = {
    "malformed-registries": ({"SSM_Action": "check", "SSM_Registries": "docker.io"}, "check", "Registries"),
    "unknown-action": ({"SSM_Action": "reboot"}, None, "Action"),
}


@pytest.mark.parametrize(("version", "platform"), OLDEST)
@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_a_refused_parameter_ends_in_the_result_line(
    shipped_agent_file: Path, version: str, platform: str, refusal: str
) -> None:
    environ, action, named = REFUSALS[refusal]
    python = interpreter(version, platform)
    done = subprocess.run(
        [python, "-I", str(shipped_agent_file)],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert set(result) == RESULT_KEYS
    assert result["schema"] == contract.RESULT_SCHEMA
    assert (result["action"], result["outcome"], result["reason"]) == (action, "failed", "invalid_parameter")
    assert named in result["message"]
    assert len(line.encode()) <= contract.RESULT_LINE_MAX_BYTES
