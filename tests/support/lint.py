"""cfn-lint over a synthesized template, as the tests judge it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.prerequisites import require
from tests.support.template import PROJECT_ROOT

# The project's cfn-lint settings, the ones make dist ships beside the templates (each rule it
# leaves out is explained there).
CFN_LINT_CONFIG = PROJECT_ROOT / ".cfnlintrc.yaml"


def cfn_lint_findings(template_file: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings on ``template_file`` with the project's settings."""
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    require(cfn_lint is not None, "cfn-lint in the virtualenv")
    assert cfn_lint is not None
    result = subprocess.run(
        [cfn_lint, "--config-file", str(CFN_LINT_CONFIG), "--format", "json", str(template_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings
