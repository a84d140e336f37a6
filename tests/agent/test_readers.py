"""Readers other than users' clients (agent/readers.py): what the agent finds of them without a sandbox."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent import readers
from agent.result import Report


def test_a_hung_docker_daemon_costs_seconds_and_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon whose socket takes connections and never answers (dockerd stuck) makes `docker info`
    wait for ever (the CLI has no timeout of its own): the Swarm check gives up after
    DAEMON_TIMEOUT, says so in the result, and the action goes on (acceptance finding 11)."""
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\nexec sleep 60\n")
    docker.chmod(0o755)
    report = Report("check")
    host = SimpleNamespace(docker=str(docker), root_env=lambda: {"PATH": "/usr/bin:/bin"})
    run = SimpleNamespace(host=host, report=report)
    monkeypatch.setattr(readers, "NOMAD_CONFIG_DIR", str(tmp_path / "no-nomad"))
    started = time.monotonic()
    readers.report_unmanaged(run, [])
    took = time.monotonic() - started
    assert readers.DAEMON_TIMEOUT - 1 < took < readers.DAEMON_TIMEOUT + 3
    assert report.message_parts == [
        f"docker daemon: no answer in {readers.DAEMON_TIMEOUT} s, Swarm services not checked"
    ]
    assert report.problems == [] and report.notices == []
