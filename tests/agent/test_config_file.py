"""A user's config.json as written and the agent's edits to it (agent/config_file.py): what the agent does
not edit is kept byte for byte, and docker reads the result as the agent meant (checked with the real
docker CLI where this machine has one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.config_file import DockerAuthFile
from agent.docker_model import DockerModel
from tests.agent.real_docker import RealDocker, real_docker_in
from tests.agent.user_files import REGISTRY, b64

AUTH = b64("user:pw")


@pytest.fixture(scope="module")
def real_docker(tmp_path_factory: pytest.TempPathFactory) -> RealDocker:
    return real_docker_in(tmp_path_factory.mktemp("docker-config"))


def edited(config: bytes, edit: Any) -> tuple[bytes, Any]:
    auth_file = DockerAuthFile(DockerModel((28, 2)), config, 0o600)
    edit(auth_file)
    content = auth_file.render()
    _, view = DockerModel((28, 2)).load(content)
    return content, view


def test_a_login_replaces_only_its_entry_and_keeps_unknown_content() -> None:
    config = (
        b'{"stackOrchestrator": "swarm", "auths": {"ghcr.io": {"auth": "%s"}, "%s": {"auth": "%s", '
        b'"email": "x@y"}}, "myTool": {"n": 1.50, "big": 1e999}, "psFormat": "caf\\u00e9"}'
        % (AUTH.encode(), REGISTRY.encode(), b64("AWS:old").encode())
    )
    content, view = edited(config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    data = json.loads(content)
    assert list(data) == ["stackOrchestrator", "auths", "myTool", "psFormat"], "order and unknown keys kept"
    assert data["auths"] == {"ghcr.io": {"auth": AUTH}, REGISTRY: {"auth": b64("AWS:new")}}
    assert b'"n": 1.50' in content and b'"big": 1e999' in content, "numbers keep their text"
    assert data["psFormat"] == "café"
    assert (view.file_credential(REGISTRY).username, view.file_credential(REGISTRY).password) == (
        "AWS",
        "new",
    )


def test_edits_follow_docker_through_case_variants_and_repeats() -> None:
    """Go decodes `Auths` and a repeated `auths` into the one map; the edit lands where docker reads it."""
    config = b'{"Auths": {"ghcr.io": {"auth": "%s"}}, "auths": {"%s": {"auth": "%s"}}}' % (
        AUTH.encode(),
        REGISTRY.encode(),
        b64("AWS:old").encode(),
    )
    content, view = edited(config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    assert view.file_credential(REGISTRY).password == "new"
    assert view.file_credential("ghcr.io").password == "pw"
    assert content.count(b"AWS:") == 0 and b64("AWS:old").encode() not in content


def test_a_null_map_hides_what_came_before_and_the_edit_keeps_it_hidden_and_kept() -> None:
    config = b'{"auths": {"ghcr.io": {"auth": "%s"}}, "auths": null}' % AUTH.encode()
    _, before = DockerModel((28, 2)).load(config)
    assert before.auths == {}, "a later null resets the map in Go"
    content, view = edited(config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    assert list(view.auths) == [REGISTRY]
    assert b'"auths": {"ghcr.io": {"auth": "%s"}},\n\t"auths": null,\n\t"auths": {' % AUTH.encode() in content


def test_an_edit_loses_nothing_docker_would_not_read(real_docker: RealDocker) -> None:
    """What the agent does not edit is copied byte for byte: nested values (any depth), numbers,
    escapes, bytes that are not UTF-8 inside strings, the data after the first JSON value (Go's
    json.Decoder never reads it), and map fields a later null hides. docker reads the result as meant."""
    deep_value = b"[" * 3000 + b"]" * 3000
    config = (
        b'{"auths": {"ghcr.io": {"auth": "%s", "x": %s}}, "myTool": {"s": "caf\\u00e9 \xff", "n": 1.50},\n'
        b'  "auths": {"%s": {"auth": "%s"}}} \n{"second": "document"} trailing\n'
        % (AUTH.encode(), deep_value, REGISTRY.encode(), b64("AWS:old").encode())
    )
    assert real_docker.loads(config)
    content, view = edited(config, lambda f: f.set_login(REGISTRY, "AWS", "new"))
    for kept in (
        b'"ghcr.io": {"auth": "%s", "x": %s}' % (AUTH.encode(), deep_value),
        b'{"s": "caf\\u00e9 \xff", "n": 1.50}',
        b' \n{"second": "document"} trailing\n',
    ):
        assert kept in content
    assert content.endswith(b'} \n{"second": "document"} trailing\n')
    assert b64("AWS:old").encode() not in content, "the registry's own old entry is replaced"
    assert (view.file_credential(REGISTRY).password, view.file_credential("ghcr.io").password) == (
        "new",
        "pw",
    )
    assert real_docker.loads(content)
    assert real_docker.username_for(content, REGISTRY) == "AWS"


def test_use_helper_sets_credhelpers_and_drops_every_key_docker_reads_as_the_registry() -> None:
    config = json.dumps(
        {
            "auths": {
                REGISTRY: {"auth": b64("AWS:x")},
                f"https://{REGISTRY}/v1/": {"auth": b64("AWS:y")},
                f"{REGISTRY}:5000": {"auth": b64("AWS:z")},
                "ghcr.io": {"auth": AUTH},
            },
            "credHelpers": {"gcr.io": "gcloud"},
            "psFormat": "table",
        }
    ).encode()
    content, _ = edited(config, lambda f: f.use_helper(REGISTRY))
    assert json.loads(content) == {
        "auths": {f"{REGISTRY}:5000": {"auth": b64("AWS:z")}, "ghcr.io": {"auth": AUTH}},
        "credHelpers": {"gcr.io": "gcloud", REGISTRY: "ecr-login"},
        "psFormat": "table",
    }
    again = DockerAuthFile(DockerModel((28, 2)), content, 0o600)
    again.use_helper(REGISTRY)
    assert not again.changed, "idempotent"


def test_a_store_login_leaves_docker_s_empty_marker_once() -> None:
    """native_store.go Store: the secret goes to the helper, the file keeps `{}` for the host;
    file_store.go Store skips the save when that entry is already there."""
    content, _ = edited(b'{"credsStore": "pass"}', lambda f: f.mark_in_store(REGISTRY))
    assert json.loads(content) == {"credsStore": "pass", "auths": {REGISTRY: {}}}
    again = DockerAuthFile(DockerModel((28, 2)), content, 0o600)
    again.mark_in_store(REGISTRY)
    assert not again.changed
    stale = json.dumps({"credsStore": "pass", "auths": {REGISTRY: {"auth": b64("AWS:old")}}}).encode()
    content, _ = edited(stale, lambda f: f.mark_in_store(REGISTRY))
    assert json.loads(content)["auths"] == {REGISTRY: {}}, "docker replaces the whole entry"
