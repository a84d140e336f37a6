"""Benchmark of the on-instance agent (issue 3): `refresh` of 3 registries in 2 regions x 4 users.

Runs in the same throwaway instance the integration tests use (localfleet/harnesses/single_instance.py):
the document's script as SSM runs it, the real docker CLI and registry, the AWS CLI
against moto_server. Compared with the naive loop people write by hand,
`aws ecr get-login-password | docker login --password-stdin` per registry per user.
Then the same agent runs on a podman host (Debian's podman and skopeo, no docker CLI): the token is
checked by skopeo's login there, and each user's skopeo and root's podman probe the pull.

Token API calls are counted by a recording `aws` wrapper on the instance's PATH:
each `get-authorization-token` / `get-login-password` invocation makes exactly one
GetAuthorizationToken request.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from ecr_fleet_auth.shared import contract
from ecr_fleet_auth_cdk.document.script import run_command_lines
from localfleet.harnesses import single_instance as sb
from localfleet.hosts.overlay_sandbox import INSTANCE_VENV

REPO = Path(__file__).resolve().parents[1]

USERS = {"alice": True, "bob": True, "dave": True}  # plus root: 4 users
MANAGED = ["root", *USERS]
REGIONS = 2
REPEATS = 3
CALL_LOG = "/tmp/aws-calls.log"
TOKEN_SUBCOMMANDS = ("get-authorization-token", "get-login-password")
TWELVE_HOURS = 12 * 3600


def recording_aws_wrapper() -> str:
    # The venv's interpreter lives under /root (0700); the naive loop runs the CLI as each user,
    # so the wrapper runs the same awscli package with the system Python 3.11.
    venv = sb.VENV_BIN.parent
    on_host = next((venv / "lib").glob("python3*/site-packages"))
    site_packages = f"{INSTANCE_VENV}/{on_host.relative_to(venv)}"  # as the instance sees the venv
    return (
        "#!/bin/sh\n"
        f'echo "$*" >> {CALL_LOG}\n'
        f'PYTHONPATH={site_packages} exec /usr/bin/python3 -m awscli "$@"\n'
    )


# The clients of each kind of host measured (localfleet/hosts/container_clients.py).
HOSTS = {"docker": ("docker",), "podman": ("podman", "skopeo")}


def prepare(world: sb.World, clients: tuple[str, ...] = HOSTS["docker"]) -> None:
    world.sandbox.reset_root()
    world.set_registry_password(sb.moto_token(sb.ACCOUNT_A))
    world.prepare_instance(USERS, clients)
    world.sandbox.write("/usr/local/bin/aws", recording_aws_wrapper(), 0o755)
    world.sandbox.write(CALL_LOG, "", 0o666)


def token_calls(world: sb.World) -> int:
    """Token API calls since the last call of this function (the log is emptied)."""
    log = world.sandbox.path(CALL_LOG)
    calls = [line for line in log.read_text().splitlines() if any(sub in line for sub in TOKEN_SUBCOMMANDS)]
    log.write_text("")
    return len(calls)


def agent_parameters(action: str) -> dict[str, str]:
    return {
        "Action": action,
        "Registries": ",".join(sb.REGISTRIES),
        "Users": ",".join(MANAGED),
        "HelperVersion": contract.DEFAULT_HELPER_VERSION,
        "ReleaseBaseUrl": "https://helper-mirror.test",
        "KeepUserDockerLogin": "false",
    }


TOKEN_SEEN: list[bool] = []


def run_agent(world: sb.World, script: str, action: str) -> tuple[float, int, dict[str, object]]:
    run = world.run_document(script, agent_parameters(action))
    result = run.result
    if result["outcome"] == "failed":
        raise RuntimeError(f"agent failed: {run.stdout} {run.stderr}")
    token = sb.moto_token(sb.ACCOUNT_A)
    TOKEN_SEEN.append(token in run.stdout or token in run.stderr or token_in_argv_log(world, token))
    return run.seconds, token_calls(world), result


def token_in_argv_log(world: sb.World, token: str) -> bool:
    """Whether the token reached a command line the recording `aws` wrapper saw."""
    return token in world.sandbox.path(CALL_LOG).read_text()


def give_logins_a_real_lifetime(world: sb.World) -> None:
    """moto's tokens 'expired' in 2015; record the 12-hour lifetime real ECR tokens have."""
    path = world.sandbox.path("/var/lib/ecr-fleet-auth/logins.json")
    records = json.loads(path.read_text())
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + TWELVE_HOURS))
    for registries in records.values():
        for entry in registries.values():
            entry["expires_at"] = expires
    path.write_text(json.dumps(records))


def naive_loop_script() -> str:
    lines = ["set -e"]
    for user in MANAGED:
        home = "/root" if user == "root" else f"/home/{user}"
        for registry in sb.REGISTRIES:
            region = registry.split(".")[3]
            lines.append(
                f"setpriv --reuid={user} --regid={user} --init-groups env HOME={home} sh -c "
                f"'aws ecr get-login-password --region {region} | "
                f"docker login --username AWS --password-stdin {registry} >/dev/null 2>&1'"
            )
    return "\n".join(lines) + "\n"


def run_naive_loop(world: sb.World) -> tuple[float, int]:
    env = {"PATH": sb.INSTANCE_PATH, **world.instance_env()}
    started = time.monotonic()
    done = world.sandbox.run(["sh", "-c", naive_loop_script()], env=env)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"naive loop failed: {done.stderr.decode()}")
    return seconds, token_calls(world)


def probes_pass(world: sb.World, host: str = "docker") -> bool:
    """Each user's own client pulls (the probe image lives under the first registry name)."""
    clients = {"docker": ["docker"], "podman": ["skopeo"]}[host]
    checks = [(user, client) for user in MANAGED for client in clients]
    if host == "podman":
        checks.append(("root", "podman"))
    return all(
        world.probe(user, "/root" if user == "root" else f"/home/{user}", sb.REGISTRY_A, client).returncode
        == 0
        for user, client in checks
    )


def measure(world: sb.World, script: str) -> dict[str, list[float] | list[int] | bool]:
    figures: dict[str, list[float] | list[int] | bool] = {}

    def add(name: str, value: float | int) -> None:
        figures.setdefault(name, []).append(value)  # type: ignore[union-attr]

    for _ in range(REPEATS):
        for host, clients in HOSTS.items():
            prefix = "agent" if host == "docker" else host
            prepare(world, clients)
            seconds, calls, result = run_agent(world, script, "refresh")
            assert result["outcome"] == "changed", result
            add(f"{prefix}_refresh_s", seconds)
            add(f"{prefix}_refresh_calls", calls)
            figures[f"{prefix}_probes_pass"] = probes_pass(world, host)
            seconds, calls, result = run_agent(world, script, "refresh")
            assert result["outcome"] == "unchanged", result
            add(f"{prefix}_rerun_expired_s", seconds)
            add(f"{prefix}_rerun_expired_calls", calls)
            give_logins_a_real_lifetime(world)
            seconds, calls, result = run_agent(world, script, "refresh")
            assert result["outcome"] == "unchanged", result
            add(f"{prefix}_rerun_fresh_s", seconds)
            add(f"{prefix}_rerun_fresh_calls", calls)
            before = world.sandbox.changed_files()
            seconds, calls, _ = run_agent(world, script, "check")
            after = world.sandbox.changed_files()
            add(f"{prefix}_check_s", seconds)
            figures[f"{prefix}_check_identical"] = {k: after[k] for k in before} == before
        prepare(world)
        seconds, calls = run_naive_loop(world)
        add("naive_loop_s", seconds)
        add("naive_loop_calls", calls)
        figures["naive_probes_pass"] = probes_pass(world)
    return figures


def report(figures: dict[str, list[float] | list[int] | bool]) -> None:
    def median(name: str) -> float:
        values = figures[name]
        assert isinstance(values, list)
        return float(statistics.median(values))

    pairs = len(MANAGED) * len(sb.REGISTRIES)
    shape = f"{len(sb.REGISTRIES)} registries in {REGIONS} regions x {len(MANAGED)} users"
    print(f"agent benchmark: refresh of {shape}")
    print(f"  ({pairs} logins; median of {REPEATS} runs; sandboxed instance, real docker CLI/registry, moto)")
    rows = [
        ("agent refresh (first run)", "agent_refresh_s", "agent_refresh_calls"),
        ("agent refresh re-run, token expired*", "agent_rerun_expired_s", "agent_rerun_expired_calls"),
        ("agent refresh re-run, 12 h token", "agent_rerun_fresh_s", "agent_rerun_fresh_calls"),
        ("agent check", "agent_check_s", None),
        ("naive get-login-password | docker login", "naive_loop_s", "naive_loop_calls"),
        ("podman host: agent refresh (first run)", "podman_refresh_s", "podman_refresh_calls"),
        ("podman host: re-run, token expired*", "podman_rerun_expired_s", "podman_rerun_expired_calls"),
        ("podman host: re-run, 12 h token", "podman_rerun_fresh_s", "podman_rerun_fresh_calls"),
        ("podman host: agent check", "podman_check_s", None),
    ]
    print(f"  {'':44} {'wall s':>8} {'token calls':>12}")
    for label, seconds, calls in rows:
        calls_text = f"{median(calls):>12.0f}" if calls else f"{'-':>12}"
        print(f"  {label:44} {median(seconds):>8.2f} {calls_text}")
    print("  * moto's tokens carry an expiry in 2015, so the agent fetches and compares (no docker login).")
    agent_ok, naive_ok = figures["agent_probes_pass"], figures["naive_probes_pass"]
    print(f"  pull probes pass after agent: {agent_ok}, after naive loop: {naive_ok}")
    podman_ok = figures["podman_probes_pass"]
    print(f"  podman host pull probes (users' skopeo, root's podman) pass after agent: {podman_ok}")
    for host in ("agent", "podman"):
        one_per_region = median(f"{host}_refresh_calls") == REGIONS
        fast_unchanged = median(f"{host}_rerun_fresh_s") < 1.0
        identical = figures[f"{host}_check_identical"]
        label = "docker host" if host == "agent" else "podman host"
        print(
            f"  {label}: one token call per region: {'met' if one_per_region else 'MISSED'}, unchanged run "
            f"under 1 s: {'met' if fast_unchanged else 'MISSED'}, check byte-identical: {identical}"
        )
    print(f"  token in an agent's argv, stdout or stderr: {'yes (BUG)' if any(TOKEN_SEEN) else 'never'}")


def main() -> None:
    missing = [what for present, what in sb.prerequisites() if not present]
    if missing:
        print(f"agent benchmark skipped, missing: {', '.join(missing)}")
        return
    script = "\n".join(run_command_lines()) + "\n"
    workdir = Path(tempfile.mkdtemp(prefix="ecr-fleet-auth-bench-"))
    sandbox = sb.Sandbox(workdir)
    try:
        world = sb.start_world(sandbox, workdir)
        report(measure(world, script))
    finally:
        sandbox.close()
        sb.remove_tree(workdir)


if __name__ == "__main__":
    main()
