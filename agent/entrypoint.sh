#!/bin/sh
# ecr-fleet-auth: finds a Python 3 and runs the on-instance agent.
# SSM runs this as root with `sh -c`, which is dash on Debian/Ubuntu and bash on
# Amazon Linux: POSIX sh only. The agent path comes from $ECR_FLEET_AUTH_AGENT_PY
# (the document's prelude writes the agent, one zip file, beside the script), else beside this file.
set -u

agent=${ECR_FLEET_AUTH_AGENT_PY:-$(dirname -- "$0")/ecr_fleet_auth_agent.pyz}

# python3 first; RHEL 8 keeps its system Python (3.6) out of PATH; then versioned names.
# The agent needs 3.6+ (the lint gate, vermin, holds it to what 3.6 accepts).
find_python() {
  for candidate in python3 /usr/libexec/platform-python \
    python3.13 python3.12 python3.11 python3.10 python3.9 python3.8 python3.7 python3.6; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 6))' >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if python=$(find_python); then
  # -I: isolated mode, so nothing in the environment or the working directory is imported.
  exec "$python" -I "$agent"
fi

# The one result line the contract promises, even without Python; action is echoed only if it is a known one.
case "${SSM_Action:-}" in
  refresh | helper | check) action="\"$SSM_Action\"" ;;
  *) action=null ;;
esac
echo "ecr-fleet-auth: no Python 3.6+ found (python3, /usr/libexec/platform-python)" >&2
printf '{"schema":1,"action":%s,"outcome":"failed","reason":"no_python","message":"no Python 3.6+ found","host":null,"users":[]}\n' "$action"
exit 1
