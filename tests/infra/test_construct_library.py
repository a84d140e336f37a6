"""The construct library as a platform team takes it: the wheel, installed into a CDK app of their own.

The wheel is built as ``make dist`` builds it; a scratch app in a temporary folder outside the
repository, with its own virtual environment, installs it (not editable, no path into the
repository on ``sys.path``) and adds ``EcrFleetAuth`` to a stack that already holds resources,
handing in its topic, key and instance role; a second one with other props (organization mode)
goes into another stack of the same app. It synthesizes with cdk-nag on, and mypy checks the app
against the wheel's types.

To keep it quick, the scratch environment gets the wheel's dependencies (aws-cdk-lib, constructs,
cdk-nag and what they require, as the wheel's metadata says) linked from this virtualenv instead
of downloaded: pip then installs the wheel with ``--no-index`` and finds every requirement met.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ecr_fleet_auth_cdk.bundled import AGENT, BUNDLED, PINS, RUNNER_ASSET
from localfleet.synthesized_stack import NODE_BIN
from tests.support.prerequisites import require
from tests.support.template import PROJECT_ROOT, Template, document_content, resources, runner_function

# What the build reads: the project's metadata, its two packages' folders and what infra/bundled.py names.
BUILD_INPUTS = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "README.md",
    "LICENSE",
    "NOTICE",
    "lambda_src",
    "infra",
)
NEVER_BUILT = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")
OWN_DISTRIBUTION = "ecr-fleet-auth"


def _shipped_files(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as make dist builds it (pip wheel), from a copy of what the build reads, so that no
    two builds ever share setuptools' build/ folder."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in {*BUILD_INPUTS, *BUNDLED.values()}:
        origin = PROJECT_ROOT / name
        target = source / name
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=NEVER_BUILT, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("*.whl")
    return found


def test_the_wheel_carries_the_constructs_the_runners_asset_and_the_agent(wheel: Path) -> None:
    """Each bundled source is copied in whole from the repository, nothing else: the runner's asset is
    lambda_src/ file for file (handler.py and the ecr_fleet_auth package), the agent its folder."""
    version = importlib.metadata.version(OWN_DISTRIBUTION)
    assert wheel.name == f"ecr_fleet_auth-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"ecr_fleet_auth-{version}.dist-info/METADATA").decode()
    for name, source in BUNDLED.items():
        origin = PROJECT_ROOT / source
        packaged = f"ecr_fleet_auth_cdk/{name}"
        if origin.is_dir():
            inside = {n.removeprefix(packaged + "/") for n in names if n.startswith(packaged + "/")}
            assert inside == _shipped_files(origin), name
        else:
            assert packaged in names, name
    assert {f"ecr_fleet_auth_cdk/{RUNNER_ASSET}/handler.py", f"ecr_fleet_auth_cdk/{PINS}"} <= names
    assert any(n.startswith(f"ecr_fleet_auth_cdk/{AGENT}/") for n in names)
    constructs = {n.removeprefix("ecr_fleet_auth_cdk/") for n in names if n.startswith("ecr_fleet_auth_cdk/")}
    assert {n for n in constructs if n.endswith(".py") and "/" not in n} == {
        p.name for p in (PROJECT_ROOT / "infra").glob("*.py")
    }
    assert "ecr_fleet_auth_cdk/py.typed" in names and "ecr_fleet_auth/py.typed" in names
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"ecr_fleet_auth", "ecr_fleet_auth_cdk", f"ecr_fleet_auth-{version}.dist-info"}
    assert "License-Expression: Apache-2.0" in metadata
    assert f"ecr_fleet_auth-{version}.dist-info/licenses/LICENSE" in names
    assert f"ecr_fleet_auth-{version}.dist-info/licenses/NOTICE" in names, "Apache-2.0 4(d)"


def _closure(requirements: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively (markers and extras honoured)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [(Requirement(line), "") for line in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        distribution = importlib.metadata.distribution(name)
        assert distribution.version in requirement.specifier, f"{requirement} but {distribution.version} here"
        if name in found:
            continue
        found[name] = distribution
        for extra_wanted in ("", *requirement.extras):
            pending += [(Requirement(line), extra_wanted) for line in distribution.requires or []]
    return found


def _link_into(site_packages: Path, distribution: importlib.metadata.Distribution) -> None:
    for file in distribution.files or []:
        if file.parts[0] == "..":  # console scripts, outside site-packages
            continue
        source, target = Path(str(distribution.locate_file(file))), site_packages / file
        if target.exists():  # a namespace package's __init__.py, listed by each of its distributions
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system: a link to the file will do
            target.symlink_to(source)


SCRATCH_APP = '''
"""A platform team's CDK app: a stack that already has things, and ecr-fleet-auth added to it."""
import json
import sys

import aws_cdk as cdk
from aws_cdk import Validations, aws_iam, aws_kms, aws_sns, aws_ssm
from cdk_nag import AwsSolutionsChecks

import ecr_fleet_auth
import ecr_fleet_auth_cdk
from ecr_fleet_auth_cdk import EcrFleetAuth

app = cdk.App(outdir=sys.argv[1])
platform = cdk.Stack(app, "Platform", env=cdk.Environment(account="111122223333", region="eu-west-1"))
aws_ssm.StringParameter(platform, "PlatformVersion", string_value="2026.12")
alerts_key = aws_kms.Key(platform, "AlertsKey", enable_key_rotation=True)
alerts = aws_sns.Topic(platform, "Alerts", master_key=alerts_key, enforce_ssl=True)
web_instances = aws_iam.Role(
    platform, "WebInstances", assumed_by=aws_iam.ServicePrincipal("ec2.amazonaws.com")
)

EcrFleetAuth(
    platform,
    "FleetAuth",
    topic=alerts,
    topic_key=alerts_key,
    instance_roles=[web_instances],
    tags={"team": "platform"},
    target_tag_values=["yes"],
)

builds = cdk.Stack(app, "Builds", env=cdk.Environment(account="111122223333", region="eu-west-1"))
EcrFleetAuth(
    builds,
    "BuildFleet",
    organizational_unit_ids=["ou-abcd-12345678"],
    member_regions=["eu-west-1", "us-east-1"],
    new_instances=False,
    action="helper",
    permissions_boundary=aws_iam.ManagedPolicy.from_managed_policy_name(
        builds, "Boundary", "platform-boundary"
    ),
)

Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
print(json.dumps({
    "modules": {module.__name__: module.__file__ for module in (ecr_fleet_auth, ecr_fleet_auth_cdk)},
    "version": ecr_fleet_auth_cdk.__version__,
    "sys_path": sys.path,
}))
'''

# Props of the wrong type and a misspelt one: mypy must refuse both, as it would in the team's CI.
MISTYPED_APP = """
import aws_cdk as cdk
from ecr_fleet_auth_cdk import EcrFleetAuth

stack = cdk.Stack(cdk.App(), "Platform")
EcrFleetAuth(stack, "FleetAuth", target_tag_values=3, action="repair", shedule_expression="rate(1 hour)")
"""

MYPY_CONFIG = """
[mypy]
strict = True
[mypy-aws_cdk.*,constructs.*,jsii.*,cdk_nag.*]
follow_imports = skip
ignore_missing_imports = True
"""


@pytest.fixture(scope="module")
def scratch_app(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The wheel installed into a fresh virtualenv outside the repository, and the team's app
    synthesized there; its outcome, templates and validation report."""
    require((NODE_BIN / "node").exists() or shutil.which("node") is not None, "Node.js (npm ci)")
    root = tmp_path_factory.mktemp("platform-app")
    assert not root.resolve().is_relative_to(PROJECT_ROOT)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    requirements = re.findall(r"^Requires-Dist: (.+)$", metadata, flags=re.MULTILINE)
    for distribution in _closure(requirements).values():
        _link_into(site_packages, distribution)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    installed = subprocess.run(
        [*pip, "install", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300, check=False
    )
    assert installed.returncode == 0, installed.stderr
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    app_dir = root / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(textwrap.dedent(SCRATCH_APP))
    (app_dir / "mistyped.py").write_text(textwrap.dedent(MISTYPED_APP))
    (app_dir / "mypy.ini").write_text(MYPY_CONFIG)
    env = {
        "PATH": os.pathsep.join([str(NODE_BIN), os.environ.get("PATH", "")]),
        "HOME": str(root),
        "PYTHONNOUSERSITE": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }
    out = root / "cdk.out"
    synth = subprocess.run(
        [python, "app.py", str(out)],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in out.glob("*.template.json")
    }
    report_file = out / "validation-report.json"
    return {
        "synth": synth,
        "templates": templates,
        "report": json.loads(report_file.read_text()) if report_file.exists() else None,
        "app_dir": app_dir,
        "python": python,
        "env": env,
    }


def test_the_team_app_synthesizes_with_the_installed_wheel_alone(scratch_app: dict[str, Any]) -> None:
    synth = scratch_app["synth"]
    assert synth.returncode == 0, synth.stderr
    info = json.loads(synth.stdout.splitlines()[-1])
    assert info["version"] == importlib.metadata.version(OWN_DISTRIBUTION)
    for module, file in info["modules"].items():
        assert Path(file).is_relative_to(scratch_app["python"].parent.parent), (module, file)
    for entry in info["sys_path"]:
        assert not Path(entry or ".").resolve().is_relative_to(PROJECT_ROOT), entry
    assert "end-of-life" not in synth.stderr


def test_cdk_nag_finds_nothing_in_the_team_app(scratch_app: dict[str, Any]) -> None:
    report = scratch_app["report"]
    assert report is not None, scratch_app["synth"].stderr
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_the_construct_uses_what_the_team_stack_has(scratch_app: dict[str, Any]) -> None:
    platform = scratch_app["templates"]["Platform"]
    (topic_id,) = resources(platform, "AWS::SNS::Topic")
    assert topic_id.startswith("Alerts"), "the team's topic, none of the construct's"
    (key_id, key) = next(iter(resources(platform, "AWS::KMS::Key").items()))
    assert key_id.startswith("AlertsKey")
    assert "cloudwatch.amazonaws.com" in json.dumps(key["Properties"]["KeyPolicy"]), "alarms may publish"
    variables = runner_function(platform)["Properties"]["Environment"]["Variables"]
    assert variables["TOPIC_ARN"] == {"Ref": topic_id}
    assert variables["STACK_NAME"] == "Platform-FleetAuth"
    (policy,) = resources(platform, "AWS::IAM::ManagedPolicy").values()
    (role_id,) = [k for k in resources(platform, "AWS::IAM::Role") if k.startswith("WebInstances")]
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    assert "PlatformVersion" in "".join(resources(platform, "AWS::SSM::Parameter"))


def test_the_second_construct_with_other_props_synthesizes_too(scratch_app: dict[str, Any]) -> None:
    builds = scratch_app["templates"]["Builds"]
    (stack_set,) = resources(builds, "AWS::CloudFormation::StackSet").values()
    assert stack_set["Properties"]["StackSetName"] == "Builds-BuildFleet-Members"
    assert resources(builds, "AWS::SQS::Queue") == {}, "new_instances=False"
    variables = runner_function(builds)["Properties"]["Environment"]["Variables"]
    assert variables["ACTION"] == "helper"
    for logical_id, role in resources(builds, "AWS::IAM::Role").items():
        assert "policy/platform-boundary" in json.dumps(role["Properties"]["PermissionsBoundary"]), logical_id


def test_the_wheel_deploys_the_same_runner_code_and_document_as_the_repository(
    scratch_app: dict[str, Any], synthesized_template: Template
) -> None:
    """The asset in the wheel is lambda_src/ byte for byte (the same content hash), and the agent it
    packs is the same agent (the same document)."""
    platform = scratch_app["templates"]["Platform"]
    assert (
        runner_function(platform)["Properties"]["Code"]["S3Key"]
        == (runner_function(synthesized_template)["Properties"]["Code"]["S3Key"])
    )
    assert document_content(platform) == document_content(synthesized_template)


def test_mypy_checks_the_props_against_the_wheels_types(scratch_app: dict[str, Any]) -> None:
    """The wheel is typed (py.typed): a team's mypy accepts the app and refuses wrong props."""
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    require(mypy is not None, "mypy in the virtualenv")
    assert mypy is not None

    def check(file: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [mypy, "--config-file", "mypy.ini", "--python-executable", str(scratch_app["python"]),
             "--cache-dir", str(scratch_app["app_dir"] / ".mypy_cache"), file],
            cwd=scratch_app["app_dir"], capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    good = check("app.py")
    assert good.returncode == 0, good.stdout
    bad = check("mistyped.py")
    assert bad.returncode == 1, bad.stdout
    assert '"target_tag_values"' in bad.stdout and '"int"' in bad.stdout
    assert '"action"' in bad.stdout and "repair" in bad.stdout
    assert 'Unexpected keyword argument "shedule_expression"' in bad.stdout
