"""`make dist` for people without CDK: the stack's template for plain CloudFormation, its assets, and
the SSM document on its own (tools/dist.py)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_fleet_auth.shared.settings import SettingsError
from ecr_fleet_auth_cdk.runner_function import LAMBDA_SOURCE
from tests.support.lint import cfn_lint_findings
from tests.support.prerequisites import require
from tests.support.template import Template, document_content, runner_function
from tools import dist as dist_tool


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    dist_tool.build(folder)
    return folder


@pytest.fixture(scope="module")
def dist_template(dist: Path) -> Template:
    template: Template = json.loads((dist / "cloudformation" / "EcrFleetAuth.template.json").read_text())
    return template


def _asset_locations(node: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every {S3Bucket, S3Key} pair in a template."""
    if isinstance(node, dict):
        if "S3Bucket" in node and "S3Key" in node:
            found.append(node)
        for value in node.values():
            _asset_locations(value, found)
    elif isinstance(node, list):
        for value in node:
            _asset_locations(value, found)
    return found


def test_the_template_reads_its_assets_from_the_bucket_its_parameter_names(dist_template: Template) -> None:
    """No CDK bootstrap: no bootstrap bucket, version parameter or rule, only the bucket given."""
    text = json.dumps(dist_template)
    assert "cdk-hnb659fds" not in text
    assert "BootstrapVersion" not in text and "Rules" not in dist_template
    parameter = dist_template["Parameters"][dist_tool.ASSETS_BUCKET_PARAMETER]
    assert parameter["Type"] == "String" and "Default" not in parameter
    locations = _asset_locations(dist_template["Resources"], [])
    assert len(locations) == 2, "the runner's code and the custom resource provider's"
    for location in locations:
        assert location["S3Bucket"] == {"Fn::Sub": "${AssetsBucket}"}
        assert location["S3Key"].startswith(dist_tool.ASSETS_PREFIX)


def test_it_is_the_apps_stack_but_for_where_assets_come_from(
    dist_template: Template, synthesized_template: Template
) -> None:
    def without_asset_locations(template: Template) -> Template:
        template = copy.deepcopy(template)
        for location in _asset_locations(template["Resources"], []):
            location["S3Bucket"] = "<bucket>"
            location["S3Key"] = location["S3Key"].removeprefix(dist_tool.ASSETS_PREFIX)
        for resource in template["Resources"].values():
            resource.pop("Metadata", None)
        template["Parameters"].pop("BootstrapVersion", None)
        template["Parameters"].pop(dist_tool.ASSETS_BUCKET_PARAMETER, None)
        template.pop("Rules", None)
        return template

    assert without_asset_locations(dist_template) == without_asset_locations(synthesized_template)


def test_every_asset_is_there_under_its_key_and_nothing_else(dist: Path, dist_template: Template) -> None:
    assets = dist / "cloudformation" / "assets"
    keys = {location["S3Key"] for location in _asset_locations(dist_template["Resources"], [])}
    assert {p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.is_file()} == keys


def test_the_runners_zip_is_the_lambda_source_file_for_file(dist: Path, dist_template: Template) -> None:
    key = runner_function(dist_template)["Properties"]["Code"]["S3Key"]
    with zipfile.ZipFile(dist / "cloudformation" / "assets" / key) as archive:
        zipped = {info.filename: archive.read(info) for info in archive.infolist()}
        times = {info.date_time for info in archive.infolist()}
    sources = {
        path.relative_to(LAMBDA_SOURCE).as_posix(): path.read_bytes()
        for path in LAMBDA_SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert zipped == sources
    assert times == {dist_tool.ZIP_TIME}, "the same files zip to the same bytes"


def test_cfn_lint_finds_no_error_in_the_template(dist: Path) -> None:
    unexpected = cfn_lint_findings(dist / "cloudformation" / "EcrFleetAuth.template.json")
    assert unexpected == [], json.dumps(unexpected, indent=1)


def test_the_document_on_its_own_is_the_stacks(dist: Path, synthesized_template: Template) -> None:
    document = json.loads((dist / "ssm-document" / dist_tool.DOCUMENT_FILE).read_text())
    assert document == document_content(synthesized_template)
    assert document["schemaVersion"] == "2.2"


def test_the_readme_says_how_to_deploy_with_each_parameter(dist: Path, dist_template: Template) -> None:
    readme = (dist / "cloudformation" / "README.md").read_text()
    assert "aws s3 sync assets s3://<bucket>/" in readme
    assert "--parameter-overrides AssetsBucket=<bucket>" in readme
    for name in dist_template["Parameters"]:
        assert f"| `{name}` |" in readme
    assert f"file://../ssm-document/{dist_tool.DOCUMENT_FILE}" in readme


REGIONS = ("eu-west-1", "us-east-1")
OVERRIDES = (f"regions={','.join(REGIONS)}", "stackName=Team", "targetTagKey=team-x")


@pytest.fixture(scope="module")
def regional_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make dist CDK_CONTEXT="-c regions=eu-west-1,us-east-1 -c stackName=Team -c targetTagKey=team-x"`
    into a dist/ that already holds a wheel and the template of an earlier build."""
    folder = tmp_path_factory.mktemp("regional-dist")
    (folder / "ecr_fleet_auth-0-py3-none-any.whl").write_bytes(b"a wheel")
    (folder / "cloudformation").mkdir()
    (folder / "cloudformation" / "EcrFleetAuth.template.json").write_text("{}")
    dist_tool.build(folder, OVERRIDES)
    return folder


def _templates(folder: Path) -> dict[str, Template]:
    return {p.name: json.loads(p.read_text()) for p in (folder / "cloudformation").glob("*.template.json")}


def test_every_stack_gets_its_template_whatever_the_number_of_regions(regional_dist: Path) -> None:
    """One stack per region (app.py): one template each, with cdk.json's settings as -c overrides
    them, its assets under their keys (one file per content, whatever the stacks and regions), no
    template of an earlier build left, nothing else of dist/ touched."""
    templates = _templates(regional_dist)
    assert set(templates) == {f"Team-{region}.template.json" for region in REGIONS}
    assets = regional_dist / "cloudformation" / "assets"
    keys = {
        location["S3Key"] for t in templates.values() for location in _asset_locations(t["Resources"], [])
    }
    assert {p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.is_file()} == keys
    for template in templates.values():
        assert "ssm:resourceTag/team-x" in json.dumps(template), "-c targetTagKey=team-x is in the template"
        assert "ssm:resourceTag/ecr-fleet-auth" not in json.dumps(template)
    assert (regional_dist / "ecr_fleet_auth-0-py3-none-any.whl").read_bytes() == b"a wheel"
    assert json.loads((regional_dist / "ssm-document" / dist_tool.DOCUMENT_FILE).read_text())["schemaVersion"]


def test_the_readme_deploys_each_region_under_the_name_baked_in(regional_dist: Path) -> None:
    readme = (regional_dist / "cloudformation" / "README.md").read_text()
    for region in REGIONS:
        assert f"aws cloudformation deploy --stack-name Team --region {region}" in readme
        assert f"--template-file Team-{region}.template.json" in readme
    flat = " ".join(readme.split())
    assert "The settings are baked into each template, and so are the names" in flat
    assert 'make dist CDK_CONTEXT="-c stackName=<another name>"' in flat


def test_a_bad_setting_is_reported_as_synth_reports_it_and_dist_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make dist CDK_CONTEXT="-c scheduleExpression=..."`: the settings' message, no traceback, and
    the earlier build still there (nothing is removed before the settings are read)."""
    (tmp_path / "cloudformation").mkdir()
    (tmp_path / "cloudformation" / "EcrFleetAuth.template.json").write_text("{}")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    status = dist_tool.main(
        [str(tmp_path), "-c", "scheduleExpression=every 6 hours", "-c", "waitSeconds=9999"]
    )
    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith("invalid ecr-fleet-auth configuration:\n"), error
    assert "scheduleExpression='every 6 hours': not accepted" in error and "waitSeconds=" in error
    assert "Traceback" not in error
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(SettingsError, match=r"-c regions: expected -c key=value"):
        dist_tool.context_with(["regions"])


def _cfn_lint_rules(templates: list[Path], *options: str, cwd: Path) -> tuple[int, set[str]]:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    require(cfn_lint is not None, "cfn-lint in the virtualenv")
    assert cfn_lint is not None
    done = subprocess.run(
        [cfn_lint, *options, "--format", "json", *map(str, templates)],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return done.returncode, {finding["Rule"]["Id"] for finding in json.loads(done.stdout or "[]")}


def test_cfn_lint_passes_on_every_template_where_dist_puts_them(regional_dist: Path) -> None:
    """As a user runs it: `cd dist/cloudformation && cfn-lint *.template.json` exits 0, with the
    settings shipped beside the templates; and those settings leave out only what cfn-lint finds
    without them (W3005, explained in the file), so they hide nothing else."""
    folder = regional_dist / "cloudformation"
    templates = sorted(folder.glob("*.template.json"))
    assert (folder / dist_tool.CFN_LINT_CONFIG).read_text() == (
        dist_tool.ROOT / ".cfnlintrc.yaml"
    ).read_text()
    assert _cfn_lint_rules(templates, cwd=folder) == (0, set())
    ignored = set(yaml.safe_load((folder / dist_tool.CFN_LINT_CONFIG).read_text())["ignore_checks"])
    _, found_without = _cfn_lint_rules(templates, "--config-file", os.devnull, cwd=folder.parent)
    assert ignored == found_without == {"W3005"}
