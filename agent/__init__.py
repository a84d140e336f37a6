"""ecr-fleet-auth on-instance agent: keeps docker on this instance logged in to ECR.

Run as root by the SSM document, through entrypoint.sh; the document carries this package packed
into one file (a zip application, see infra/document/script.py). Parameters arrive as
$SSM_Action, $SSM_Registries, $SSM_Users, $SSM_HelperVersion, $SSM_ReleaseBaseUrl and
$SSM_KeepUserDockerLogin.
Actions:
  refresh  one ECR token per region (the instance's own role), verified as `docker login` does,
           then stored where each user's docker keeps it, for every registry x user;
  helper   install amazon-ecr-credential-helper if missing (or too old for a registry), prove
           it per user and registry, then point each user's docker config at it (credHelpers)
           and drop stored auths;
  check    read-only report.
stdout carries exactly one compact JSON result line; logs go to stderr.

Standard library only. Runs on Python 3.6+ (RHEL 8's platform-python; Amazon Linux 2 has 3.7);
the lint gate (vermin) holds it to what 3.6 accepts.
Safety: a user's docker config is read by root only through O_NOFOLLOW opens and
ownership checks, and every change to it (the agent's edits, the backup) is made by a process
running with that user's privileges, so nothing the user controls can make root write anywhere else.

Modules, each with one job:
  main              the entry: parameters, lock, action, result line
  params            the document's parameters and their patterns
  host              host facts: tools, versions, OS, architecture
  users             the accounts to manage
  as_user           acting as a user: privileges and environment
  go_json           Go's encoding/json, as Go programs read their config files
  docker_model      docker's reading of config.json, by docker version
  config_file       a user's config.json as written, and the agent's edits to it
  reading           reading a user's config as root, safely
  writing           writing a user's files as the user: atomic (in place where held by inode), backed up
  mounts            who holds a user's file by its inode: bind mounts in every mount namespace
  readers           readers other than users' docker: kubelet managed, Nomad and Swarm reported
  stores            credential helpers used as stores
  registry_states   each user x registry pair's state
  records           the agent's own record of logins' expiry
  tokens            ECR tokens and the agent's AWS identity
  docker_login      verifying a token as docker login does
  helper_install    installing amazon-ecr-credential-helper; versions per registry kind
  system_env        /etc/environment's AWS_ECR_IGNORE_CREDS_STORAGE (KeepUserDockerLogin)
  run_context       what an action works with
  action_refresh, action_helper, action_check   the actions
  result            the report and its result line
  outcomes          outcomes, reason codes, registry states
  lock, deadline, commands, times, log          one run at a time, the time budget, tools, clocks, stderr
"""
