"""cfn-lint over a synthesized template, as the tests judge it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import require

# W3005: CDK adds DependsOn on the runner's role as well as referencing it; harmless.
CFN_LINT_ACCEPTED = {"W3005"}


def cfn_lint_findings(template_file: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings on ``template_file`` other than the accepted ones."""
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    require(cfn_lint is not None, "cfn-lint in the virtualenv")
    assert cfn_lint is not None
    result = subprocess.run(
        [cfn_lint, "--format", "json", str(template_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return [finding for finding in findings if finding["Rule"]["Id"] not in CFN_LINT_ACCEPTED]
