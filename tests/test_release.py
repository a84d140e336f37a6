"""Release hygiene: the licence, the changelog, the version in one place, the security policy, and a
deploy that installs only what deploying needs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.prerequisites import require
from tests.support.template import PROJECT_ROOT

KEEP_A_CHANGELOG_SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
SEMVER = r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return project


def test_the_licence_is_apache_2() -> None:
    text = (PROJECT_ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert _project()["license"] == "Apache-2.0"
    assert _project()["license-files"] == ["LICENSE", "NOTICE"]


def test_the_notice_names_the_copyright_holder() -> None:
    """Apache-2.0 section 4(d): a NOTICE file travels with every redistribution; it names who holds
    the copyright (the LICENSE's appendix leaves that field a placeholder)."""
    notice = (PROJECT_ROOT / "NOTICE").read_text()
    assert re.search(r"^Copyright \d{4} The ecr-fleet-auth authors$", notice, flags=re.MULTILINE), notice
    assert "Apache License, Version 2.0" in notice


def test_the_version_is_written_once_and_semantic() -> None:
    """pyproject.toml holds it; the package reads it from the installed metadata, the changelog names
    each release; nothing else spells it out."""
    version = str(_project()["version"])
    assert re.fullmatch(SEMVER, version)
    assert metadata.version("ecr-fleet-auth") == version, "reinstall (make deps) after a version change"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    spelled = [
        name
        for name in tracked
        if name not in ("pyproject.toml", "CHANGELOG.md", "package-lock.json")
        and (PROJECT_ROOT / name).is_file()
        and re.search(rf"\b{re.escape(version)}\b", (PROJECT_ROOT / name).read_text(errors="replace"))
        and not name.startswith("tests/events/")
    ]
    assert spelled == [], f"the version {version} is spelt out in {spelled}"


def test_the_changelog_keeps_a_changelog() -> None:
    """https://keepachangelog.com/en/1.1.0/: newest first, an Unreleased section, each release
    `## [X.Y.Z] - YYYY-MM-DD`, its changes under the six kinds of change."""
    text = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text and "https://semver.org/" in text
    headings = re.findall(r"^## \[(.+?)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, flags=re.MULTILINE)
    assert headings[0] == ("Unreleased", "")
    releases = headings[1:]
    assert releases, "at least one release"
    assert all(re.fullmatch(SEMVER, version) and date for version, date in releases)
    versions = [tuple(int(part) for part in version.split(".")) for version, _ in releases]
    assert versions == sorted(versions, reverse=True), "newest first"
    dates = [date for _, date in releases]
    assert dates == sorted(dates, reverse=True)
    assert releases[0][0] == _project()["version"], "the latest release is the version pyproject.toml holds"
    sections = set(re.findall(r"^### (.+)$", text, flags=re.MULTILINE))
    assert sections <= KEEP_A_CHANGELOG_SECTIONS, sections - KEEP_A_CHANGELOG_SECTIONS


def test_the_security_policy_states_the_threat_model_and_how_to_report() -> None:
    text = (PROJECT_ROOT / "SECURITY.md").read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert {"Supported versions", "Reporting a vulnerability", "Threat model"} <= set(headings)
    model = text[text.index("## Threat model") :]
    for subject in ("target tag", "root", "invoke", "release bucket", "sha256", "permissions boundary"):
        assert subject in model, subject


def _fresh_tree(tmp_path: Path) -> Path:
    """The repository's top-level files as a fresh clone has them: no .venv, no node_modules."""
    tree = tmp_path / "clone"
    tree.mkdir()
    for path in PROJECT_ROOT.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, tree / path.name)
    return tree


def _dry_run(tree: Path, target: str, *variables: str) -> str:
    make = shutil.which("make")
    require(make is not None, "make")
    assert make is not None
    done = subprocess.run(
        [make, "-n", target, *variables], cwd=tree, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("target", ["deploy", "synth", "diff", "dist"])
def test_deploying_installs_only_what_deploying_needs(tmp_path: Path, target: str) -> None:
    """On a fresh machine `make deploy` (synth, diff, dist) installs the CDK app's runtime
    requirements and the pinned CDK CLI and Node.js: no test packages, no Debian packages."""
    commands = _dry_run(_fresh_tree(tmp_path), target)
    installs = [line for line in commands.splitlines() if "pip install" in line]
    assert len(installs) == 1 and "-r requirements.txt" in installs[0], commands
    assert "npm ci" in commands
    for development in ("requirements-dev.txt", "apt-get", "system-packages.txt"):
        assert development not in commands, development


def test_the_runtime_requirements_hold_no_development_package() -> None:
    def names(path: Path) -> set[str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return {re.split(r"[=<>\[ ]", line)[0].lower() for line in lines if line and not line.startswith("-")}

    runtime = names(PROJECT_ROOT / "requirements.txt")
    assert runtime == {"aws-cdk-lib", "constructs", "cdk-nag"}
    assert not runtime & names(PROJECT_ROOT / "requirements-dev.txt")


def test_the_tests_install_the_development_toolchain(tmp_path: Path) -> None:
    commands = _dry_run(_fresh_tree(tmp_path), "test")
    assert "-r requirements-dev.txt" in commands
    assert "-r requirements.txt" in commands


def test_dist_reads_cdk_context_and_checks_the_settings_before_touching_dist(tmp_path: Path) -> None:
    """`make dist CDK_CONTEXT="-c ..."` synthesizes with the overrides as `make synth` does, and the
    templates are built (settings checked) before any old file of dist/ is removed."""
    commands = _dry_run(_fresh_tree(tmp_path), "dist", "CDK_CONTEXT=-c targetTagKey=team-x -c stackName=Team")
    lines = commands.splitlines()
    (templates,) = [n for n, line in enumerate(lines) if "-m tools.dist dist" in line]
    assert lines[templates].endswith("-m tools.dist dist -c targetTagKey=team-x -c stackName=Team")
    removals = [n for n, line in enumerate(lines) if line.startswith("rm ") and "dist" in line]
    assert removals and all(n > templates for n in removals), commands
    assert not any(re.search(r"rm -rf .*\bdist(\s|$)", line) for line in lines), "dist/ is never wiped whole"


def test_the_construct_docs_say_a_cdk_nag_2_app_must_move_to_3_and_how() -> None:
    """The wheel requires cdk-nag 3 (pyproject.toml), which removed NagSuppressions (cdk-nag 3.0.2's
    README, "Migrating from v2"): the page a platform team reads says so and what replaces what."""
    assert any(d.startswith("cdk-nag>=3") for d in _project()["dependencies"])  # type: ignore[attr-defined]
    page = " ".join((PROJECT_ROOT / "docs" / "construct.md").read_text().split())
    assert "An app on cdk-nag 2 cannot install the wheel as it is" in page
    for replaced, replacement in (
        (
            "Aspects.of(app).add(AwsSolutionsChecks())",
            "Validations.of(app).add_plugins(AwsSolutionsChecks(app))",
        ),
        ("NagSuppressions.add_resource_suppressions(", "Validations.of(c).acknowledge(Acknowledgment("),
    ):
        assert replaced in page and replacement in page


def test_the_docs_say_why_the_wheel_carries_the_runners_package() -> None:
    page = " ".join((PROJECT_ROOT / "docs" / "construct.md").read_text().split())
    assert "The wheel installs two top-level packages: `ecr_fleet_auth_cdk`" in page
    assert "`ecr_fleet_auth`, the runner's own package" in page


# A stand-in for the CDK CLI (make's CDK variable): it records its arguments and the environment the
# Makefile gives it, and, for synth, writes the templates of the stacks named in STAND_IN_STACKS.
STAND_IN_CDK = """#!/bin/sh
printf '%s\\n' "$*" >> cdk-calls.log
env | grep '^CDK_DISABLE' | sort >> cdk-env.log
if [ "$1" = synth ]; then
  mkdir -p cdk.out
  for stack in $STAND_IN_STACKS; do echo '{}' > "cdk.out/$stack.template.json"; done
fi
"""


def _make_with_stand_in_cdk(tree: Path, target: str, stacks: str) -> subprocess.CompletedProcess[str]:
    """``make <target>`` for real, with the CDK CLI a stand-in and the installs taken as done."""
    make = shutil.which("make")
    require(make is not None, "make")
    assert make is not None
    cdk = tree / "stand-in-cdk"
    cdk.write_text(STAND_IN_CDK)
    cdk.chmod(0o755)
    for done in (".venv/.runtime", "node_modules/.installed"):
        (tree / done).parent.mkdir(parents=True, exist_ok=True)
        (tree / done).touch()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("CDK_", "MAKE", "MFLAGS"))
    }
    return subprocess.run(
        [make, "--no-print-directory", "-o", ".venv/.runtime", "-o", "node_modules/.installed", target,
         f"CDK={cdk}", "CDK_CONTEXT=-c regions=eu-west-1,us-east-1 -c stackName=Team"],
        cwd=tree, capture_output=True, text=True, timeout=60, check=False,
        env={**environment, "STAND_IN_STACKS": stacks},
    )  # fmt: skip


def test_synth_lists_the_templates_it_wrote_whatever_the_stacks_are_named(tmp_path: Path) -> None:
    """`make synth CDK_CONTEXT="-c regions=... -c stackName=Team"`: the stacks are Team-<region>, not
    EcrFleetAuth; synth names what it wrote and no template of an earlier synth."""
    tree = _fresh_tree(tmp_path)
    (tree / "cdk.out").mkdir()
    (tree / "cdk.out" / "EcrFleetAuth.template.json").write_text("{}")
    done = _make_with_stand_in_cdk(tree, "synth", "Team-eu-west-1 Team-us-east-1")
    assert done.returncode == 0, done.stderr
    wrote = [line for line in done.stdout.splitlines() if line.startswith("wrote ")]
    assert wrote == [
        "wrote cdk.out/Team-eu-west-1.template.json",
        "wrote cdk.out/Team-us-east-1.template.json",
    ]
    assert not (tree / "cdk.out" / "EcrFleetAuth.template.json").exists(), "an old template is not left"
    assert "-c regions=eu-west-1,us-east-1 -c stackName=Team" in (tree / "cdk-calls.log").read_text()
    nothing = _make_with_stand_in_cdk(tree, "synth", "")
    assert nothing.returncode != 0 and "cdk synth wrote no template into cdk.out/" in nothing.stderr


@pytest.mark.parametrize("target", ["synth", "deploy", "diff"])
def test_every_target_running_the_cdk_cli_turns_its_version_check_and_telemetry_off(
    tmp_path: Path, target: str
) -> None:
    """The CLI checks registry.npmjs.org for a newer version unless CDK_DISABLE_VERSION_CHECK is set in
    its environment (aws-cdk 2.1148's lib/cli/display-version.js, shouldDisplayVersionMessage: no
    cdk.json key turns it off), and sends telemetry unless CDK_DISABLE_CLI_TELEMETRY is "1" or "true"
    or cdk.json's context says "cli-telemetry": false (lib/cli/telemetry/collect-telemetry.js)."""
    tree = _fresh_tree(tmp_path)
    done = _make_with_stand_in_cdk(tree, target, "Team")
    assert done.returncode == 0, done.stderr
    assert (tree / "cdk-env.log").read_text().splitlines() == [
        "CDK_DISABLE_CLI_TELEMETRY=1",
        "CDK_DISABLE_VERSION_CHECK=1",
    ]
    assert "--no-notices" in (tree / "cdk-calls.log").read_text()
    context = json.loads((tree / "cdk.json").read_text())
    assert context["context"]["cli-telemetry"] is False and context["notices"] is False


def test_the_deploy_docs_say_the_version_check_is_off_only_by_the_environment() -> None:
    page = " ".join((PROJECT_ROOT / "docs" / "deploying.md").read_text().split())
    assert "export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1" in page
    assert "only the environment variable `CDK_DISABLE_VERSION_CHECK` turns it off" in page
    assert "version checks are off in `cdk.json`" not in page
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "version checks are off" not in makefile


def test_make_help_names_every_target_a_user_runs() -> None:
    """`make help` is the Makefile's index: every .PHONY target but the install steps the others call."""
    require(shutil.which("make"), "make (Debian package make) for `make help`")
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    assert phony is not None
    internal = {"help", "runtime-deps", "system-deps"}
    listed = subprocess.run(
        ["make", "-s", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    named = set(re.findall(r"^make (\S+)", listed.stdout, re.MULTILINE))
    assert set(phony.group(1).split()) - internal <= named, listed.stdout
