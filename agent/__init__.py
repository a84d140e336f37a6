"""ecr-fleet-auth on-instance agent: keeps every container client on this instance logged in to ECR.

Run as root by the SSM document, through entrypoint.sh; the document carries this package packed
into one file (a zip application, see infra/document/script.py). Parameters arrive as
$SSM_Action, $SSM_Registries, $SSM_Users, $SSM_HelperVersion, $SSM_ReleaseBaseUrl and
$SSM_KeepUserDockerLogin.
Actions:
  refresh  one ECR token per region (the instance's own role), verified as the host's client logs in,
           then stored where each client of each user reads first, for every registry x user;
  helper   install amazon-ecr-credential-helper if missing (or too old for a registry), prove it
           per user and registry, then name it (credHelpers) in every file a client reads the
           registry from and drop stored auths;
  check    read-only report.
stdout carries exactly one compact JSON result line; logs go to stderr.

Standard library only. Runs on Python 3.6+ (RHEL 8's platform-python; Amazon Linux 2 has 3.7);
the lint gate (vermin) holds it to what 3.6 accepts.
Safety: a user's credential files are read by root only through O_NOFOLLOW opens and
ownership checks, and every change to it (the agent's edits, the backup) is made by a process
running with that user's privileges, so nothing the user controls can make root write anywhere else.

Modules, each with one job:
  main              the entry: parameters, lock, action, result line
  params            the document's parameters and their patterns
  host              host facts: tools, versions, OS, architecture
  host_clients      which container clients the host has (docker, nerdctl, podman, skopeo, buildah)
  users             the accounts to manage
  user_env          a user's environment in each kind of session
  read_order, orders, docker_client, nerdctl_client, containers_client   who reads which file
  containers_model  containers/image's reading of a credential file
  credential_files  a user's files as the host's clients read them; where refresh writes
  as_user           acting as a user: privileges and environment
  go_json           Go's encoding/json, as Go programs read their config files
  docker_model      docker's reading of config.json, by docker version
  config_file       a credential file as written, and the agent's edits to it
  reading           reading a user's config as root, safely
  writing           writing a user's files as the user: atomic (in place where held by inode), backed up
  mounts            who holds a user's file by its inode: bind mounts in every mount namespace
  readers           readers other than users' clients: kubelet managed, Nomad and Swarm reported
  stores            credential helpers used as stores; the helper version each registry name needs
  registry_states   each user x registry pair's state
  records           the agent's own record of logins' expiry
  tokens            ECR tokens and the agent's AWS identity
  docker_login      verifying a token as the host's client logs in
  helper_install    installing amazon-ecr-credential-helper, or the pinned release over a too old one
  system_env        /etc/environment's AWS_ECR_IGNORE_CREDS_STORAGE (KeepUserDockerLogin)
  actions           the actions and what they work with
  result            the report and its result line
  outcomes          outcomes, reason codes, registry states
  lock, deadline, commands, times, log          one run at a time, the time budget, tools, clocks, stderr
"""
