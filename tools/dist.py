"""`make dist`, after the wheel: what people who do not use CDK take (CloudFormation, Terraform, ...).

    .venv/bin/python -m tools.dist dist

Writes, from the repository app with cdk.json's context:

* ``cloudformation/<stack>.template.json``: each stack's template for plain CloudFormation. Where
  CDK would publish a file asset to its bootstrap bucket, the template reads it from the bucket
  its parameter ``AssetsBucket`` names, under ``ecr-fleet-auth/``: no ``cdk bootstrap``, no CDK.
* ``cloudformation/assets/``: those files as CloudFormation reads them (directories zipped), laid
  out by key, so ``aws s3 sync dist/cloudformation/assets s3://<bucket>/`` puts each where the
  template looks.
* ``cloudformation/README.md``: the parameters of each template and the commands that deploy it;
  ``cloudformation/.cfnlintrc.yaml``: the project's cfn-lint settings, each rule left out explained.
* ``ssm-document/ecr-fleet-auth-agent.json``: the agent's SSM Command document on its own (the
  content the stack deploys), for ``aws ssm create-document``.

Settings are those of cdk.json at the time, with ``-c key=value`` overriding them as for ``cdk
synth`` (``make dist CDK_CONTEXT="-c ..."``). They are baked into the templates, and so are the
names: each template's resources are named after the stack name it was built for, so it is
deployed once per account and region, under that stack name; a second copy in the same place
needs its own ``-c stackName=...`` build. A bad setting is reported as ``make synth`` reports it,
before anything in the folder is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecr_fleet_auth.shared.settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent
ASSETS_BUCKET_PARAMETER = "AssetsBucket"
ASSETS_PREFIX = "ecr-fleet-auth/"
DOCUMENT_FILE = "ecr-fleet-auth-agent.json"
# The project's cfn-lint settings, shipped beside the templates (cfn-lint reads them from the
# directory it runs in).
CFN_LINT_CONFIG = ".cfnlintrc.yaml"
# S3 bucket names (S3 User Guide, "General purpose bucket naming rules"): 3-63 of a-z 0-9 . -
BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# A fixed time in every zip entry, so the same files zip to the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SynthesizedStack:
    id: str  # its template is <id>.template.json
    name: str
    region: str | None  # None: the region you deploy to
    template: dict[str, Any]
    assets: dict[str, Any]  # its asset manifest


def context_with(overrides: Sequence[str]) -> dict[str, Any]:
    """cdk.json's context with each ``key=value`` of ``overrides`` in place of its key: a string, as
    the CDK CLI passes ``-c key=value`` to the app (the settings table reads both forms)."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    for override in overrides:
        key, equals, value = override.partition("=")
        if not equals or not key:
            raise SettingsError(f"-c {override}: expected -c key=value")
        context[key] = value
    return context


def synthesize(outdir: Path, context: Mapping[str, Any]) -> list[SynthesizedStack]:
    """Each stack of the app, synthesized into ``outdir`` with the assets' bucket a template
    parameter. cdk-nag checks them as in every synth."""
    import aws_cdk as cdk  # noqa: PLC0415 - starts jsii: only when synthesizing

    from app import build_app  # noqa: PLC0415

    synthesizer = cdk.DefaultStackSynthesizer(
        file_assets_bucket_name="${" + ASSETS_BUCKET_PARAMETER + "}",
        bucket_prefix=ASSETS_PREFIX,
        generate_bootstrap_version_rule=False,
    )
    app = cdk.App(outdir=str(outdir), context=dict(context), default_stack_synthesizer=synthesizer)
    stacks = build_app(app)
    for stack in stacks:
        cdk.CfnParameter(
            stack,
            ASSETS_BUCKET_PARAMETER,
            type="String",
            allowed_pattern=BUCKET_NAME_PATTERN,
            description=f"The S3 bucket holding the template's assets (under {ASSETS_PREFIX}), in its region",
        )
    assembly = app.synth()
    return [
        SynthesizedStack(
            id=stack.artifact_id,
            name=stack.stack_name,
            region=None if cdk.Token.is_unresolved(stack.region) else stack.region,
            template=assembly.get_stack_artifact(stack.artifact_id).template,
            assets=json.loads((outdir / f"{stack.artifact_id}.assets.json").read_text(encoding="utf-8")),
        )
        for stack in stacks
    ]


def write_zip(directory: Path, target: Path) -> None:
    """``directory``'s files in a zip, the same bytes for the same files (sorted, one timestamp)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            entry = zipfile.ZipInfo(path.relative_to(directory).as_posix(), ZIP_TIME)
            executable = path.stat().st_mode & stat.S_IXUSR
            entry.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())


def write_assets(
    manifest: dict[str, Any], staged: Path, assets: Path, templates: Collection[str]
) -> list[str]:
    """Each file asset of a stack under ``assets/<its key>`` (not the stacks' templates, which CDK
    publishes as assets too); the keys written. With one synthesizer for the app's stacks, each
    stack's manifest lists every stack's assets, each with a destination per account and region; the
    key is the content's hash, so every destination names the same file, written once."""
    keys = set()
    for asset in manifest.get("files", {}).values():
        if asset["source"]["path"] in templates:
            continue
        source = staged / asset["source"]["path"]
        for key in sorted({destination["objectKey"] for destination in asset["destinations"].values()}):
            target = assets / key
            if target.exists():  # another stack's (or destination's) copy of the same content
                keys.add(key)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if asset["source"].get("packaging") == "zip" and source.is_dir():
                write_zip(source, target)
            else:
                shutil.copyfile(source, target)
            keys.add(key)
    if manifest.get("dockerImages"):
        raise ValueError("a docker image asset cannot be shipped as a file")
    return sorted(keys)


def document_content(template: dict[str, Any]) -> dict[str, Any]:
    (document,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SSM::Document"]
    content: dict[str, Any] = document["Properties"]["Content"]
    return content


def readme(stacks: list[SynthesizedStack]) -> str:
    lines = [
        "# ecr-fleet-auth for CloudFormation",
        "",
        "Generated by `make dist` from the repository's CDK app with its `cdk.json` settings (and the",
        "`-c key=value` given in `CDK_CONTEXT`). The settings are baked into each template, and so are",
        "the names: the resources are named after the stack name the template was built for, so deploy",
        "each template once per account and region, under the stack name below. A second copy in the",
        "same account and region would take the same names: build it separately with",
        '`make dist CDK_CONTEXT="-c stackName=<another name>"`.',
        "",
        "1. Upload the assets to a bucket in the region you deploy to (the keys are the paths under",
        "   `assets/`):",
        "",
        "       aws s3 sync assets s3://<bucket>/",
        "",
        "2. Deploy each template, naming that bucket:",
        "",
    ]
    for stack in stacks:
        region = f" --region {stack.region}" if stack.region else ""
        lines += [
            f"       aws cloudformation deploy --stack-name {stack.name}{region} \\",
            f"         --template-file {stack.id}.template.json --capabilities CAPABILITY_IAM \\",
            f"         --parameter-overrides {ASSETS_BUCKET_PARAMETER}=<bucket>",
            "",
        ]
    lines += [
        "cfn-lint passes on the templates with the project's settings, `.cfnlintrc.yaml` beside them",
        "(`cd` here and run `cfn-lint *.template.json`): they leave out W3005 only, the `DependsOn`",
        "aws-cdk-lib's Lambda functions keep on their roles beside the `Fn::GetAtt`, harmless.",
        "",
        "## Parameters",
        "",
    ]
    for stack in stacks:
        lines += [f"`{stack.id}.template.json`:", "", "| parameter | default | meaning |", "|---|---|---|"]
        for name, parameter in stack.template.get("Parameters", {}).items():
            default = f"`{parameter['Default']}`" if "Default" in parameter else "(required)"
            meaning = parameter.get("Description", f"type {parameter['Type']}")
            lines.append(f"| `{name}` | {default} | {meaning} |")
        lines.append("")
    lines += [
        "## The SSM document alone",
        "",
        f"`../ssm-document/{DOCUMENT_FILE}` is the agent's Command document as the stack deploys it:",
        "",
        "    aws ssm create-document --name ecr-fleet-auth-agent --document-type Command \\",
        f"      --document-format JSON --content file://../ssm-document/{DOCUMENT_FILE}",
        "",
    ]
    return "\n".join(lines)


def build(dist: Path, overrides: Sequence[str] = ()) -> list[SynthesizedStack]:
    """Synthesizes first (a bad setting raises ``SettingsError`` with nothing in ``dist`` touched),
    writes everything into a folder beside it, then puts it in place of ``dist``'s own folders."""
    context = context_with(overrides)
    dist.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="ecr-fleet-auth-dist-") as outdir,
        tempfile.TemporaryDirectory(prefix=".dist-", dir=dist) as staging,
    ):
        stacks = synthesize(Path(outdir), context)
        cloudformation, documents = Path(staging) / "cloudformation", Path(staging) / "ssm-document"
        for folder in (cloudformation, documents):
            folder.mkdir()
        templates = {f"{stack.id}.template.json" for stack in stacks}
        for stack in stacks:
            write_assets(stack.assets, Path(outdir), cloudformation / "assets", templates)
            (cloudformation / f"{stack.id}.template.json").write_text(
                json.dumps(stack.template, indent=1) + "\n"
            )
        (cloudformation / "README.md").write_text(readme(stacks))
        shutil.copyfile(ROOT / CFN_LINT_CONFIG, cloudformation / CFN_LINT_CONFIG)
        # Every stack deploys the same document (the settings are the app's, the same in each region).
        (documents / DOCUMENT_FILE).write_text(
            json.dumps(document_content(stacks[0].template), indent=1) + "\n"
        )
        for folder in (cloudformation, documents):
            shutil.rmtree(dist / folder.name, ignore_errors=True)
            folder.rename(dist / folder.name)
    return stacks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder to write into (make dist: dist)")
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE",
        help="a setting in place of cdk.json's, as for cdk synth (make dist CDK_CONTEXT=...)",
    )  # fmt: skip
    arguments = parser.parse_args(argv)
    dist = arguments.dist
    os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "1")
    try:
        stacks = build(dist, arguments.context)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 1
    for folder in ("cloudformation", "ssm-document"):
        for path in sorted(p for p in (dist / folder).rglob("*") if p.is_file() and "assets" not in p.parts):
            print(f"wrote {path}")
    print(f"wrote {dist / 'cloudformation' / 'assets'}/ ({ASSETS_PREFIX}<hash>.zip ...)")
    for stack in stacks:
        where = f"in {stack.region}" if stack.region else "in the region you deploy to"
        print(
            f"{stack.id}.template.json: settings and names baked in; deploy it once per account {where}, "
            f'as stack {stack.name} (a second copy there: make dist CDK_CONTEXT="-c stackName=<other>")'
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
