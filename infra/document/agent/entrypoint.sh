#!/bin/sh
# Placeholder until the agent lands: finds a Python 3 and runs the agent.
set -u
agent=${ECR_FLEET_AUTH_AGENT_PY:-$(dirname -- "$0")/ecr_fleet_auth_agent.py}
for candidate in python3 /usr/libexec/platform-python; do
  if command -v "$candidate" >/dev/null 2>&1; then
    exec "$candidate" "$agent"
  fi
done
printf '%s\n' '{"schema": 1, "action": null, "outcome": "failed", "reason": "no_python", "message": "no Python 3 found"}'
exit 1
