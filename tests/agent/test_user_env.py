"""The user's environment (agent/user_env.py): what a static reading of the files that set it decides.

Profile scripts are judged by the real shell: each case is sourced by `sh` (dash, what /etc/profile
sources /etc/profile.d with on Debian) as the user would source it at login, and whatever value the
agent decides must be the one the shell gets; where the agent cannot decide, it must say so
(an unknowable assignment), never guess. /etc/environment follows linux-pam's pam_env.c _parse_env_file,
environment.d(5) its own rules.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent import user_env
from agent.user_env import Environment, ShellFile, environment_d_file, pam_env_file, user_environments
from agent.users import Account

CI = Account("ci", 1500, 1500, "/home/ci")

PROFILES = {
    "plain export": "export DOCKER_CONFIG=/srv/ci/.docker\n",
    "quoted": 'export DOCKER_CONFIG="/srv/ci/.docker"\n',
    "single quoted": "export REGISTRY_AUTH_FILE='/srv/auth.json'\n",
    "assign then export": "DOCKER_CONFIG=/srv/ci/.docker\nexport DOCKER_CONFIG\n",
    "assign; export": "DOCKER_CONFIG=/srv/x; export DOCKER_CONFIG\n",
    "home": 'export DOCKER_CONFIG="$HOME/.docker-ci"\n',
    "braced home": "export DOCKER_CONFIG=${HOME}/.docker-ci\n",
    "tilde": "export DOCKER_CONFIG=~/.docker-ci\n",
    "for this user": 'if [ "$USER" = ci ]; then\n  export DOCKER_CONFIG=/srv/ci/.docker\nfi\n',
    "for another user": 'if [ "$USER" = other ]; then\n  export DOCKER_CONFIG=/srv/other\nfi\n',
    "else branch": (
        'if [ "$(id -un)" != ci ]; then\n  export DOCKER_CONFIG=/a\nelse\n  export DOCKER_CONFIG=/b\nfi\n'
    ),
    "and-list": '[ "$LOGNAME" = "ci" ] && export DOCKER_CONFIG=/srv/ci/.docker\n',
    "by uid": 'if [ "$(id -u)" -eq 1500 ]; then export DOCKER_CONFIG=/srv/1500; fi\n',
    "then on its own line": 'if [ "$USER" = ci ]\nthen\n  export DOCKER_CONFIG=/srv/ci/.docker\nfi\n',
    "not exported": "DOCKER_CONFIG=/srv/not-exported\n",
    "other variables": "export PATH=$PATH:/opt/bin\nexport EDITOR=vi\n",
    "a later value wins": "export DOCKER_CONFIG=/first\nexport DOCKER_CONFIG=/second\n",
    "refers to another": (
        "export XDG_CONFIG_HOME=/srv/cfg\nexport REGISTRY_AUTH_FILE=$XDG_CONFIG_HOME/auth.json\n"
    ),
    # what the agent cannot know
    "computed": "export DOCKER_CONFIG=$(cat /etc/ci-docker-dir)\n",
    "unknown variable": "export DOCKER_CONFIG=$CI_ROOT/.docker\n",
    "other condition": "if [ -d /srv/ci ]; then\n  export DOCKER_CONFIG=/srv/ci/.docker\nfi\n",
    "in a case": 'case "$USER" in\n  ci) export DOCKER_CONFIG=/srv/ci/.docker ;;\nesac\n',
}


def shell_sees(script: str, tmp_path: Path, account: Account = CI) -> dict[str, str]:
    """What dash exports after sourcing the script as this user (id answers for the user: a stand-in
    on PATH, since the test runs as root)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "id").write_text(
        f'#!/bin/sh\ncase "$1" in -un) echo {account.name} ;; -u) echo {account.uid} ;; esac\n'
    )
    (bin_dir / "id").chmod(0o755)
    (tmp_path / "script.sh").write_text(script)
    (tmp_path / "ci-docker-dir").write_text("/from/a/file")
    env = {
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
    }
    done = subprocess.run(  # `env`, a child: what the shell exports, as a client it starts sees it
        ["sh", "-c", f". {tmp_path}/script.sh; env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return {name: value for name, value in values.items() if name in user_env.MODELLED}


def agent_reads(script: str) -> tuple[dict[str, str], list[str]]:
    values = {"HOME": CI.home, "USER": CI.name, "LOGNAME": CI.name}
    unknown: list[tuple[str, str]] = []
    ShellFile("/etc/profile.d/ci.sh", CI, values, unknown).read(script)
    decided = {name: value for name, value in values.items() if name in user_env.MODELLED}
    return decided, [variable for variable, _ in unknown]


@pytest.mark.parametrize("name", list(PROFILES))
def test_a_profile_script_is_read_as_the_shell_runs_it_or_reported_unknowable(
    name: str, tmp_path: Path
) -> None:
    script = PROFILES[name]
    decided, unknown = agent_reads(script)
    seen = shell_sees(script.replace("/etc/ci-docker-dir", f"{tmp_path}/ci-docker-dir"), tmp_path)
    if unknown:
        assert name in ("computed", "unknown variable", "other condition", "in a case"), unknown
        for variable in set(decided) - set(unknown):
            assert decided[variable] == seen.get(variable)
    else:
        assert decided == seen


def test_etc_environment_is_read_as_pam_env_reads_it() -> None:
    """pam_env.c _parse_env_file: leading blanks and `export ` skipped, `#` ends the value, quotes
    around the value dropped, no expansion."""
    values: dict[str, str] = {}
    pam_env_file(
        '# comment\nDOCKER_CONFIG=/srv/d # trailing\n  export REGISTRY_AUTH_FILE="/srv/auth.json"\n'
        "XDG_CONFIG_HOME=$HOME/cfg\nbad-name=x\n",
        values,
    )
    assert values == {
        "DOCKER_CONFIG": "/srv/d",
        "REGISTRY_AUTH_FILE": "/srv/auth.json",
        "XDG_CONFIG_HOME": "$HOME/cfg",
    }


def test_environment_d_expands_as_systemd_does() -> None:
    """environment.d(5): ${VAR} and $VAR from what is set so far, ${VAR:-default}, ${VAR:+alternate};
    an unset variable expands to nothing."""
    values = {"HOME": "/home/ci"}
    environment_d_file(
        "REGISTRY_AUTH_FILE=${HOME}/auth.json\nXDG_CONFIG_HOME=${NOPE:-/srv/cfg}\n"
        "DOCKER_CONFIG=$XDG_CONFIG_HOME/docker\nTMPDIR=${HOME:+/var/tmp}\n# comment\n",
        values,
    )
    assert values == {
        "HOME": "/home/ci",
        "REGISTRY_AUTH_FILE": "/home/ci/auth.json",
        "XDG_CONFIG_HOME": "/srv/cfg",
        "DOCKER_CONFIG": "/srv/cfg/docker",
        "TMPDIR": "/var/tmp",
    }


def test_sessions_that_differ_are_each_modelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login shell reads /etc/environment and the profiles; user units (the user has one) environment.d;
    cron and services (root's) /etc/environment alone, without XDG_RUNTIME_DIR (pam_systemd sets it for
    sessions, whether or not one is open now); `sudo -iu` and `su -` (pam_systemd opens no session for
    them) read the same profiles without XDG_RUNTIME_DIR, which podman then picks itself (pkg/util
    GetRuntimeDir)."""
    etc = tmp_path / "etc"
    (etc / "profile.d").mkdir(parents=True)
    (etc / "environment.d").mkdir()
    (etc / "environment").write_text("REGISTRY_AUTH_FILE=/srv/shared.json\n")
    (etc / "profile.d" / "ci.sh").write_text('[ "$USER" = ci ] && export DOCKER_CONFIG=/srv/ci/.docker\n')
    (etc / "environment.d" / "50-auth.conf").write_text("REGISTRY_AUTH_FILE=${HOME}/units-auth.json\n")
    runtime = tmp_path / "run-user"  # /run/user: <uid> in it only while the user has a session
    monkeypatch.setattr(user_env, "ETC_ENVIRONMENT", str(etc / "environment"))
    monkeypatch.setattr(user_env, "PROFILE_DIR", str(etc / "profile.d"))
    monkeypatch.setattr(user_env, "ENVIRONMENT_D", (str(etc / "environment.d"),))
    monkeypatch.setattr(user_env, "RUNTIME_DIR", str(runtime) + "/%d")
    (tmp_path / "home" / ".config" / "systemd" / "user").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "systemd" / "user" / "app.service").write_text("[Service]\n")
    account = Account("ci", os.geteuid(), os.getegid(), str(tmp_path / "home"))
    environments, unknown = user_environments(account)
    session = str(runtime / str(os.geteuid()))
    assert [(env.kind, env.values) for env in environments] == [
        (
            "login",
            {
                "DOCKER_CONFIG": "/srv/ci/.docker",
                "REGISTRY_AUTH_FILE": "/srv/shared.json",
                "XDG_RUNTIME_DIR": session,
            },
        ),
        ("su", {"DOCKER_CONFIG": "/srv/ci/.docker", "REGISTRY_AUTH_FILE": "/srv/shared.json"}),
        ("units", {"REGISTRY_AUTH_FILE": f"{tmp_path}/home/units-auth.json", "XDG_RUNTIME_DIR": session}),
        ("services", {"REGISTRY_AUTH_FILE": "/srv/shared.json"}),
    ]
    assert unknown == []
    assert isinstance(environments[0], Environment)


def test_a_profile_owned_by_someone_else_is_not_read(tmp_path: Path) -> None:
    """Root reads users' files without following a symlink and only when root or the user owns them."""
    script = tmp_path / "profile"
    script.write_text("export DOCKER_CONFIG=/x\n")
    os.chown(script, 65534, 65534)
    assert user_env.read_source(str(script), owner_uid=1500) is None
    assert user_env.read_source(str(script), owner_uid=65534) == "export DOCKER_CONFIG=/x\n"
    link = tmp_path / "link"
    link.symlink_to(script)
    assert user_env.read_source(str(link), owner_uid=65534) is None


def test_sourced_files_and_case_on_the_user_are_read_and_the_rest_reported(tmp_path: Path) -> None:
    """bash reads `. file` and `source file` in place (bash(1) SHELL BUILTIN COMMANDS: "Read and execute
    commands from filename in the current shell environment"), so `. "$HOME/.env"` in ~/.bashrc sets
    what .env exports; a `case "$USER" in pattern|pattern) ... ;; esac` runs the first branch whose glob
    matches (bash(1) Compound Commands). Each user gets their own branch; a sourced path the agent
    cannot compute is reported (environment_unknown) instead of silently ignored. The whole kind: both
    spellings, quoted and bare paths, a `*)` default, a branch spread over lines."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text("export DOCKER_CONFIG=$HOME/dk\n")
    text = (
        '. "$HOME/.env"\n'
        'case "$USER" in\n'
        "  ci|dev) export REGISTRY_AUTH_FILE=/srv/ci.json ;;\n"
        "  *)\n"
        "    export XDG_CONFIG_HOME=/srv/other\n"
        "    ;;\n"
        "esac\n"
        "source $(pwd)/more.sh\n"
        '. "$SOMEWHERE/other.sh"\n'
    )
    seen = {}
    for name in ("ci", "bob"):
        account = Account(name, os.geteuid(), os.getegid(), str(home))
        values = {"HOME": str(home), "USER": name}
        unknown: list[tuple[str, str]] = []
        ShellFile(str(home / ".bashrc"), account, values, unknown).read(text)
        seen[name] = (values, unknown)
    dk = f"{home}/dk"
    assert seen["ci"][0] == {
        "HOME": str(home),
        "USER": "ci",
        "DOCKER_CONFIG": dk,
        "REGISTRY_AUTH_FILE": "/srv/ci.json",
    }
    assert seen["bob"][0] == {
        "HOME": str(home),
        "USER": "bob",
        "DOCKER_CONFIG": dk,
        "XDG_CONFIG_HOME": "/srv/other",
    }
    assert [where for _, where in seen["ci"][1]] == [f"{home}/.bashrc:8", f"{home}/.bashrc:9"]
