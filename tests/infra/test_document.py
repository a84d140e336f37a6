"""The SSM document in the synthesized template: parameters, patterns, the shell step."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import tokenize
import zipfile
from pathlib import Path

import pytest

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth_cdk.document import script
from ecr_fleet_auth_cdk.document.construct import MAX_CONTENT_BYTES
from tests.support.prerequisites import require
from tests.support.template import Template, document_content, only

VALID_REGISTRIES = [
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
    "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
    "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
    "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
    "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
    "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
    "public.ecr.aws",
    "123456789012.dkr-ecr.eu-west-1.on.aws",
    "123456789012.dkr-ecr-fips.us-east-2.on.aws",
    "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
    "ecr-public.aws.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com,public.ecr.aws",
    ",".join(f"1234567890{n:02d}.dkr.ecr.eu-west-1.amazonaws.com" for n in range(contract.MAX_REGISTRIES)),
]
INVALID_REGISTRIES = [
    "",
    "example.com",
    "docker.io",
    "12345678901.dkr.ecr.eu-west-1.amazonaws.com",  # 11 digits
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com",
    "123456789012.dkr.ecr.eu-west-1.evil.com",
    "123456789012.dkr-ecr.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr.eu-west-1.on.aws",
    "ecr-public.aws.com.evil.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com;reboot",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com$(reboot)",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com`id`",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com\n",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com\nreboot",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com, public.ecr.aws",
    "public.ecr.aws,",
    "public.ecr.aws' ; reboot ; '",
    "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    ",".join(
        f"1234567890{n:02d}.dkr.ecr.eu-west-1.amazonaws.com" for n in range(contract.MAX_REGISTRIES + 1)
    ),
]
VALID = {
    # "auto,jenkins" passes the pattern; contract.check_users refuses it before any command.
    "Users": ["auto", "auto,jenkins", "root", "ec2-user", "ubuntu,jenkins", "svc.build", "_ci", "Admin"],
    "HelperVersion": ["0.12.0", "0.9.0", "0.10.12"],
    "ReleaseBaseUrl": [
        contract.DEFAULT_RELEASE_BASE_URL,
        "https://mirror.example.internal/ecr-helper",
        "https://127.0.0.1:8443/releases/",
    ],
}
INVALID = {
    "Users": ["", "-rf", "root;id", "a b", "root\n", "$(id)", "root,", "x" * 33],
    "HelperVersion": ["", "latest", "v0.9.0", "0.9", "latest;id", "0.9.0\n", "../0.9.0"],
    "ReleaseBaseUrl": [
        "http://mirror.example.com",
        "https://mirror.example.com/a b",
        "https://user:pw@mirror.example.com",
        "https://mirror.example.com/?x=1",
        "https://mirror.example.com/$(id)",
        "https://mirror.example.com\n",
        "https://mirror.example.com/';id;'",
        "file:///etc/passwd",
    ],
}


VALID_VALUES = {
    "Registries": "public.ecr.aws",
    "Users": "root",
    "HelperVersion": "0.9.0",
    "ReleaseBaseUrl": "https://mirror.example.com/path",
}


def _parameters(template: Template) -> dict[str, dict[str, str]]:
    parameters: dict[str, dict[str, str]] = document_content(template)["parameters"]
    return parameters


def _accepts(spec: dict[str, object], value: str) -> bool:
    """Evaluate a parameter spec from the template as SSM does."""
    if "allowedValues" in spec:
        allowed = spec["allowedValues"]
        assert isinstance(allowed, list)
        return value in allowed
    pattern = spec["allowedPattern"]
    assert isinstance(pattern, str)
    return re.fullmatch(pattern, value) is not None


def test_document_shape(synthesized_template: Template) -> None:
    resource = only(synthesized_template, "AWS::SSM::Document")["Properties"]
    assert resource["DocumentType"] == "Command"
    assert "Name" not in resource, "a fixed name makes content updates fail"
    content = resource["Content"]
    assert content["schemaVersion"] == "2.2"
    (step,) = content["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    assert step["precondition"] == {"StringEquals": ["platformType", "Linux"]}
    assert step["inputs"]["timeoutSeconds"] == 600
    assert len(json.dumps(content).encode()) <= MAX_CONTENT_BYTES


def test_every_parameter_is_constrained_and_env_interpolated(synthesized_template: Template) -> None:
    parameters = _parameters(synthesized_template)
    assert list(parameters) == [
        "Action",
        "Registries",
        "Users",
        "HelperVersion",
        "ReleaseBaseUrl",
        "KeepUserDockerLogin",
    ]
    for name, spec in parameters.items():
        assert spec["type"] == "String", name
        assert spec["interpolationType"] == "ENV_VAR", name
        assert ("allowedValues" in spec) != ("allowedPattern" in spec), name
        if "allowedPattern" in spec:
            assert spec["allowedPattern"].startswith("^") and spec["allowedPattern"].endswith("$"), name
        if "default" in spec:
            assert _accepts(spec, spec["default"]), f"{name}'s default is not accepted by its own pattern"
    assert parameters["Action"]["allowedValues"] == ["refresh", "helper", "check"]
    assert "default" not in parameters["Registries"], "the runner must always say which registries"


def test_patterns_come_from_the_shared_contract(synthesized_template: Template) -> None:
    parameters = _parameters(synthesized_template)
    for parameter in contract.DOCUMENT_PARAMETERS:
        spec = parameters[parameter.name]
        assert spec.get("allowedPattern") == parameter.allowed_pattern
        assert spec.get("allowedValues", None) == (
            list(parameter.allowed_values) if parameter.allowed_values else None
        )


@pytest.mark.parametrize("value", VALID_REGISTRIES)
def test_registries_accepted(synthesized_template: Template, value: str) -> None:
    assert _accepts(_parameters(synthesized_template)["Registries"], value)


@pytest.mark.parametrize("value", INVALID_REGISTRIES)
def test_registries_rejected(synthesized_template: Template, value: str) -> None:
    assert not _accepts(_parameters(synthesized_template)["Registries"], value)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in VALID.items() for v in vs])
def test_other_parameters_accepted(synthesized_template: Template, name: str, value: str) -> None:
    assert _accepts(_parameters(synthesized_template)[name], value)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in INVALID.items() for v in vs])
def test_other_parameters_rejected(synthesized_template: Template, name: str, value: str) -> None:
    assert not _accepts(_parameters(synthesized_template)[name], value)


def test_no_pattern_admits_a_shell_metacharacter() -> None:
    """The {{ }} fallback splices values into single quotes: no pattern may admit these."""
    for parameter in contract.DOCUMENT_PARAMETERS:
        if parameter.allowed_pattern is None:
            continue
        valid = VALID_VALUES[parameter.name]
        assert parameter.accepts(valid)
        for character in "'\"`$;&|<>(){}\\ \t\n\r*?![]#":
            for probe in (valid + character, valid + character + "x", character + valid):
                assert not parameter.accepts(probe), f"{parameter.name} accepts {probe!r}"


def test_shell_step_ships_the_agent_files(synthesized_template: Template) -> None:
    lines = document_content(synthesized_template)["mainSteps"][0]["inputs"]["runCommand"]
    assert lines[0] == "#!/bin/sh"
    start = next(i for i, line in enumerate(lines) if line.startswith("base64 -d <<'")) + 1
    end = lines.index("ECR_FLEET_AUTH_AGENT_EOF", start)
    assert script.unpack_agent(lines[start:end]) == script.shipped_agent()
    text = "\n".join(lines)
    shim = script.ENTRYPOINT_SH.read_text().splitlines()
    entrypoint_body = "\n".join(line for line in shim if not line.lstrip().startswith("#"))
    assert text.endswith(entrypoint_body), "the shim, without its shebang and comment lines"
    placeholders = set(re.findall(r"\{\{.*?\}\}", text))
    assert placeholders == {f"{{{{ {p.name} }}}}" for p in contract.DOCUMENT_PARAMETERS}
    for name in (p.name for p in contract.DOCUMENT_PARAMETERS):
        assert f"[ -n \"${{SSM_{name}+x}}\" ] || SSM_{name}='{{{{ {name} }}}}'" in lines


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def test_the_shipped_agent_is_the_same_code_without_comments_and_docstrings() -> None:
    """Module by module: the file the document carries holds every module of agent/, and nothing else."""
    sources = {path.name: path.read_bytes() for path in script.AGENT_PACKAGE.glob("*.py")}
    shipped_modules = script.shipped_modules(script.shipped_agent())
    assert sorted(shipped_modules) == sorted(
        [script.MAIN_MODULE] + [f"agent/{name}" for name in sources if name != script.MAIN_MODULE]
    )
    assert len(sources) > 10
    for name, shipped in shipped_modules.items():
        source = sources[name.rsplit("/", 1)[-1]]
        assert ast.dump(_without_docstrings(ast.parse(shipped))) == ast.dump(
            _without_docstrings(ast.parse(source))
        ), name
        comments = [
            token
            for token in tokenize.generate_tokens(io.StringIO(shipped.decode()).readline)
            if token.type == tokenize.COMMENT
        ]
        assert comments == [], name
        assert ast.get_docstring(ast.parse(shipped)) is None, name
    assert sum(map(len, shipped_modules.values())) < sum(map(len, sources.values())) * 0.9


def test_the_shipped_modules_keep_their_line_numbers() -> None:
    """A traceback on an instance (internal_error prints one to stderr) names the repository's lines."""
    shipped_modules = script.shipped_modules(script.shipped_agent())
    for path in script.AGENT_PACKAGE.glob("*.py"):
        name = script.MAIN_MODULE if path.name == script.MAIN_MODULE else f"agent/{path.name}"
        source_lines = path.read_text().splitlines()
        shipped_lines = shipped_modules[name].decode().splitlines()
        assert len(shipped_lines) == len(source_lines), name
        for source_line, shipped_line in zip(source_lines, shipped_lines, strict=True):
            if shipped_line.strip() and shipped_line.strip() != "pass":
                assert shipped_line.strip() in source_line, (name, shipped_line)


def test_the_shipped_agent_is_a_zip_application_with_fixed_metadata() -> None:
    """Sorted entries, the zip epoch as every date, one mode: the bytes depend on the modules alone.
    __main__.py is deflated (zipimport reads it), the payload stored (it is xz-compressed already)."""
    with zipfile.ZipFile(io.BytesIO(script.shipped_agent())) as archive:
        entries = archive.infolist()
    assert [entry.filename for entry in entries] == [script.MAIN_MODULE, script.PAYLOAD]
    assert {(entry.date_time, entry.external_attr >> 16) for entry in entries} == {
        ((1980, 1, 1, 0, 0, 0), 0o644)
    }
    assert [entry.compress_type for entry in entries] == [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]
    assert script.shipped_agent() == script.shipped_agent()


def test_the_script_names_the_sources_by_what_sha256sum_prints() -> None:
    """The digest in the script's comment is what anyone gets from the repository's agent/ folder."""
    sha256sum = shutil.which("sha256sum")
    require(sha256sum is not None, "sha256sum (Debian package coreutils)")
    listing = subprocess.run(
        ["/bin/sh", "-c", "LC_ALL=C sha256sum *.py | sha256sum"],
        cwd=script.AGENT_PACKAGE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert f"sha256sum = {listing})" in "\n".join(script.run_command_lines())


# The Linux step's share of SSM's 64 KB: 52 KB, leaving 12 KB for a second (Windows) step with an agent
# of its own. It was 32 KB until issue 10's fixes (docker's loader by version, an iterative JSON parser
# for Go's nesting depth, helpers judged as each user runs them, a time budget) took the agent past it,
# then 36 KB until issue 19's (every container client and the files it reads: podman, skopeo, buildah,
# nerdctl, the user's environment per session, dual-stack names) took it past that, even packed
# tighter (xz instead of gzip, no zip inside the payload, long base64 lines, the shim's comments left
# in the repository), then 44 KB until issue 20's (a replacement proven before a credential is removed,
# helper version floors per registry kind, callers' PATH, in-place writes for bind-mounted files,
# kubelet/Nomad/Swarm readers, offline fast installs) took it past that; 52 KB (13/16) until the
# acceptance fixes of issues 19 and 20 (podman's runtime directory without a session, empty and
# missing files mended, files other users read keeping their mode, token expiry read from the token,
# FIPS endpoints, sourced shell files and `case`, symlinks in the home, per-session reports; the
# helper proven with each session's AWS settings and proxies and on every caller's PATH,
# bind-mounted readers kept on auths, kubelet installed or with its own root or working directory,
# Nomad's JSON and running agents' configs, answering probes, a divert that never leaves /usr/bin
# without a helper) took it past that. 14/16 leaves 8 KB for a Windows step: enough for a thin one
# (its agent would share the payload's format), not for a second full agent; the next growth must
# shrink the agent instead.
LINUX_STEP_BUDGET = MAX_CONTENT_BYTES * 14 // 16


def test_document_leaves_room_under_the_64_kb_limit(synthesized_template: Template) -> None:
    size = len(json.dumps(document_content(synthesized_template)).encode())
    assert size < LINUX_STEP_BUDGET, f"{size} bytes: a second (Windows) step would not fit"


def test_packing_is_deterministic() -> None:
    assert script.run_command_lines() == script.run_command_lines()


def test_script_refuses_an_agent_with_a_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In any module of the package: SSM would substitute it in the one file the document carries."""
    package = tmp_path / "agent"
    shutil.copytree(script.AGENT_PACKAGE, package)
    (package / "params.py").write_text((package / "params.py").read_text() + "\nprint('{{ Action }}')\n")
    monkeypatch.setattr(script, "AGENT_PACKAGE", package)
    with pytest.raises(ValueError, match=r"agent module agent/params\.py must not contain"):
        script.run_command_lines()


def test_assembled_script_passes_shellcheck(agent_script: str, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    require(shellcheck is not None, "shellcheck (Debian package shellcheck)")
    assert shellcheck is not None
    path = tmp_path / "_script.sh"
    path.write_text(agent_script)
    done = subprocess.run([shellcheck, "-s", "sh", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_unpack_failure_still_prints_one_result_line(agent_script: str, tmp_path: Path) -> None:
    """Without base64 on PATH the script reports agent_unpack_failed in the contract's shape (without
    Python's lzma module, the agent's __main__.py does: tests/agent/test_shipped_agent.py)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "dirname", "cat"):
        source = Path("/usr/bin", tool) if Path("/usr/bin", tool).exists() else Path("/bin", tool)
        os.symlink(source, bin_dir / tool)
    path = tmp_path / "_script.sh"
    path.write_text(agent_script)
    path.chmod(0o700)
    done = subprocess.run(
        ["/bin/sh", "-c", str(path)], env={"PATH": str(bin_dir)}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["outcome"] == "failed"
    assert result["reason"] == "agent_unpack_failed"
