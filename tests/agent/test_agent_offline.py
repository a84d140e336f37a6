"""Issue 20, item 5: a host that cannot reach the package mirror or the release bucket fails within
seconds, with its own reason, run as SSM runs the document.

A private subnet with VPC endpoints only and no NAT drops the packets to a public mirror: a
connection neither succeeds nor is refused, it hangs until the client's timeout (apt's is 120 s a
connection by default, apt.conf(5) Acquire::http::Timeout; the agent's download allowed 120 s). The
sandbox has such an address: a loopback listener whose accept queue is full
(localfleet/hosts/servers/black_hole.py), where Linux drops every further SYN. The package managers
are the recording stand-ins (tests/agent/stubs/package-manager.sh); their sources name that address.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import SERVERS
from tests.agent.on_instance import (
    b64,
    can_pull,
    configs,
    install_package_managers,
    package_manager_calls,
    parameters,
    without_helper,
    write_config,
)

pytestmark = pytest.mark.integration

R = sb.REGISTRY_A
RELEASE_HOST = "ecr-helper-releases.test"
# Enough to tell "within seconds" from "at the sources' own timeouts" (minutes) on a busy machine.
FAST = 60


def black_hole(world: sb.World) -> int:
    """A port on the instance's loopback where connections hang; the mirrors' names point there."""
    port = world.sandbox.free_ports(1)[0]
    ready = Path(world.sandbox.workdir) / f"black-hole-{port}.ready"
    world.sandbox.start_server([sys.executable, str(SERVERS / "black_hole.py"), str(port), str(ready)])
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline, "the black hole did not start"
        time.sleep(0.05)
    hosts = world.sandbox.path("/etc/hosts")
    hosts.write_text(hosts.read_text() + f"127.0.0.1 deb.debian.org {RELEASE_HOST}\n")
    return port


def offline_host(world: sb.World) -> tuple[int, dict[str, str]]:
    """Debian 12 without the helper, alice logged in with a working token, every source a black hole;
    the agent's environment without the sandbox's proxy (no NAT, no proxy)."""
    port = black_hole(world)
    without_helper(world)
    install_package_managers(world, mirror=f"http://deb.debian.org:{port}")
    write_config(
        world, "alice", json.dumps({"auths": {R: {"auth": b64(f"AWS:{sb.moto_token(sb.ACCOUNT_A)}")}}})
    )
    env = {name: value for name, value in world.instance_env().items() if name != "HTTPS_PROXY"}
    return port, env


def fails_offline(instance: sb.World, agent_script: str, env: dict[str, str], release: str) -> sb.AgentRun:
    """The helper action for alice with ``env`` and the release source ``release``: it must fail with its own
    reason within seconds, having started no package manager and left alice's files as they were."""
    before = configs(instance, ("alice",))
    run = instance.run_document(
        agent_script, parameters("helper", users="alice", ReleaseBaseUrl=release), env=env
    )
    assert (run.result["outcome"], run.result["reason"]) == ("failed", "helper_source_unreachable"), (
        run.stderr
    )
    assert run.seconds < FAST, f"took {run.seconds:.0f} s"
    assert package_manager_calls(instance) == [], "no package manager started"
    assert configs(instance, ("alice",)) == before
    return run


def test_helper_without_a_route_to_any_source_fails_in_seconds_and_changes_nothing(
    instance: sb.World, agent_script: str
) -> None:
    """The issue's case: apt's mirror and the release bucket both unreachable. The agent probes
    each with one short TCP connection, all at once, and gives up on both: its own reason, the
    sources it tried, the next step (releaseBaseUrl); no package manager was started."""
    port, env = offline_host(instance)

    run = fails_offline(instance, agent_script, env, f"https://{RELEASE_HOST}:{port}")

    message = str(run.result["message"])
    assert f"deb.debian.org:{port}" in message and f"{RELEASE_HOST}:{port}" in message
    assert "releaseBaseUrl" in message
    assert can_pull(instance, ("alice",)) == {"alice": True}


def test_a_proxy_that_cannot_be_reached_is_what_the_release_probe_tries(
    instance: sb.World, agent_script: str
) -> None:
    """Another of the kind: the release download goes through HTTPS_PROXY (urllib's getproxies), and
    that proxy is what hangs. The probe goes where the download would (the proxy), so it fails as
    fast; the release host itself is never tried directly."""
    port, env = offline_host(instance)
    env["HTTPS_PROXY"] = f"http://{RELEASE_HOST}:{port}"

    run = fails_offline(instance, agent_script, env, "https://reachable-only-by-proxy.test")

    assert f"{RELEASE_HOST}:{port}" in str(run.result["message"])
    assert "reachable-only-by-proxy.test" not in str(run.result["message"])


TARPIT = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(50); held = []\n"
    "while True:\n    held.append(s.accept()[0])\n"
)


def test_a_proxy_that_takes_connections_and_never_answers_fails_in_seconds(
    instance: sb.World, agent_script: str
) -> None:
    """Another of the kind (acceptance finding 10): an egress proxy that accepts every connection and
    never answers (overloaded, broken). A TCP probe would pass, and apt and the download would each
    wait for their own timeouts (minutes in all). The probe asks for an answer (an HTTP HEAD through
    a proxy, a TLS handshake to an https source), so both sources fail within seconds and no package
    manager is started."""
    _, env = offline_host(instance)
    port = instance.sandbox.free_ports(1)[0]
    instance.sandbox.start_server([sys.executable, "-c", TARPIT, str(port)])
    time.sleep(1)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        env[name] = f"http://127.0.0.1:{port}"

    run = fails_offline(instance, agent_script, env, "https://reachable-only-by-proxy.test")

    assert f"127.0.0.1:{port}" in str(run.result["message"])
    assert can_pull(instance, ("alice",)) == {"alice": True}
