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

from ecr_fleet_auth import contract
from ecr_fleet_auth_cdk.document.script import AGENT_FILE
from tests.agent.old_pythons import OLDEST, old_python
from tests.conftest import require

RESULT_KEYS = {"schema", "action", "outcome", "reason", "message", "host", "users"}


@pytest.fixture(scope="module")
def shipped_agent_file(agent_script: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent unpacked by the synthesized document's own prelude (`base64 -d | gzip -dc`)."""
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
    python = interpreter(version, platform)
    listing = (
        "import importlib, pkgutil, sys; sys.path.insert(0, sys.argv[1]); import agent; "
        "names = [m.name for m in pkgutil.iter_modules(agent.__path__)]; "
        "[importlib.import_module('agent.' + name) for name in names]; "
        "print('%d.%d' % sys.version_info[:2], ' '.join(sorted(names)))"
    )
    done = subprocess.run(
        [python, "-I", "-c", listing, str(shipped_agent_file)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    version_shown, _, modules = done.stdout.strip().partition(" ")
    assert version_shown == version
    packaged = {path.stem for path in (Path(__file__).parents[2] / "agent").glob("*.py")} - {"__main__"}
    assert set(modules.split()) == packaged - {"__init__"}


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
