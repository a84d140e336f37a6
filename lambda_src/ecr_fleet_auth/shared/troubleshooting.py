"""What to do about each reason code: the e-mail's next steps and the troubleshooting page.

Keys are the reason codes the agent prints and the runner assigns; tests/test_troubleshooting.py
keeps this table, the agent's codes and the runner's codes in step, and tests/test_docs.py checks
that the troubleshooting page (docs/operating/troubleshooting.md, rendered from this table when
the site is built) lists every reason.
"""

from __future__ import annotations

from typing import Final

NEXT_STEPS: Final[dict[str, str]] = {
    # --- from the agent on the instance
    "ok": "Nothing to do.",
    "invalid_parameter": "Run the stack's document, not a copy: a parameter failed the agent's own check.",
    "not_root": "Run Command runs the agent as root; check that the document was not run through sudo rules.",
    "locked": "Another run is still working on this instance; the next run will retry.",
    "docker_missing": "No container client at all (docker, podman, skopeo, buildah, nerdctl): install the one the instance pulls with, or remove the target tag from it.",
    "aws_cli_missing": "Install the AWS CLI (v2 or v1) for refresh, or use the helper action.",
    "no_credentials": "Attach an instance role with the stack's InstancePolicyArn policy.",
    "token_failed": "The instance role may not call ecr:GetAuthorizationToken: attach InstancePolicyArn.",
    "login_failed": "The registry refused the token when the host's own client logged in with it (docker, nerdctl, skopeo, podman or buildah login, storing nothing): check the registry host and the role's access to it.",
    "helper_install_failed": "Install amazon-ecr-credential-helper by hand, or set releaseBaseUrl to a reachable mirror.",
    "helper_verify_failed": "The credential helper runs but could not get a token as this user (the message has its error): check the instance role and its network as the user's own docker sees them (the agent runs it with the user's environment, not the agent's AWS credentials).",
    "helper_unavailable": "The credential helper the user's docker config names for the registry (credHelpers, credsStore) is not on the user's PATH, cannot be run by the user, fails or does not answer: run the helper action for ecr-login, else install docker-credential-<name> or remove it from the config. If the message says Permission denied, the binary is there but the user may not execute it: fix its mode (the agent does not change it).",
    "mode_tightened": "Nothing to do: a docker config (or its backup) holding credentials was readable by other users; the agent made it readable by its owner only.",
    "written_in_place": "Nothing to do: the user's docker config is mounted on its own elsewhere (a container's single-file bind mount, the message names the process and mount point) or hard-linked, so it was updated in place, keeping its inode, after the usual backup: every reader sees the new credentials.",
    "reader_stale": "A single-file bind mount of the user's docker config (the message names the process and mount point) still shows a copy that an earlier rename replaced (docker login does that; so did agents before in-place writes): nothing written now reaches it. Restart that container or process; better, mount the directory (~/.docker) and set DOCKER_CONFIG inside it, which no write can leave behind.",
    "helper_too_old": "The credential helper here is older than a managed registry's name needs (the message names the registry, the version it needs and the one found; from the helper's changelog: FIPS 0.2.0, public.ecr.aws 0.5.0, C2S 0.8.0, ISO regions 0.9.0, dual-stack names 0.10.0, the EU sovereign cloud 0.11.0, ecr-public.aws.com 0.12.0; KeepUserDockerLogin 0.9.0: an older one answers 'credentials not found' and pulls are anonymous), and no newer one could be installed: those registries keep the credentials they had and stay on refresh. Make the release reachable (releaseBaseUrl, helperVersion at least that version) or install a newer helper, then run helper again.",
    "helper_source_unreachable": "Neither the package manager's mirrors nor releaseBaseUrl took a connection within seconds (the message lists the host:port pairs tried): a private subnet without NAT or proxy. Set releaseBaseUrl to a mirror the instance reaches, such as an S3 bucket in its region behind the S3 gateway endpoint holding <version>/linux-<arch>/docker-credential-ecr-login and its .sha256, or bake the helper into the image. Nothing was changed.",
    "reader_nomad": "Nomad's docker driver reads the file named in the message (auth { config = ... } in /etc/nomad.d), which is no managed user's docker config, so the agent does not renew its tokens. Point auth.config at a managed user's config (root's ~/.docker/config.json), or use auth.helper = \"ecr-login\" with HOME (or AWS_ECR_CACHE_DIR) set in Nomad's unit: it runs the helper without HOME.",
    "reader_swarm": "This node is a Swarm manager: services created or updated with --with-registry-auth keep the credentials they were given then, and the agent cannot renew those (moby #36126). After a refresh, run `docker service update --with-registry-auth <service>` for each service pulling from a managed registry, or give the nodes their own logins.",
    "checksum_mismatch": "The downloaded helper did not match its .sha256: check the mirror at releaseBaseUrl.",
    "unsupported_os": "This OS is not supported by the agent; manage it by hand or remove the target tag.",
    "config_corrupt": "A client cannot load one of the user's credential files (the message names the file, the client and why: not JSON, nested deeper than Go's 10,000 levels, a wrong type, an auth that is not base64 of user:password; for podman, skopeo and buildah also an empty file, data after the JSON, or a file the user cannot reach). It was left untouched (an empty one is mended by refresh: there is nothing in it to lose): fix it, then re-run.",
    "config_unsafe": "The docker config is a symlink or owned by someone else: fix ownership, then re-run.",
    "config_unwritable": "The user's docker config directory is read-only or full: make it writable, then re-run.",
    "config_too_large": "The user's docker config is larger than the agent reads (4 MiB); docker has no such limit. It was left untouched: shrink it (what in it is that large?), or manage this user by hand.",
    "secret_readable": "A docker config (or its backup) holding credentials can be read by other users; check only reports it. Run refresh or helper, which make it owner-only (0600), or chmod 600 it.",
    "stale_credentials": "A token from before the helper is still stored for a helper-managed registry (in the config's auths, or in the user's credential store when its erase failed): docker no longer needs it, but it is a secret until it expires. Re-run the helper action; if the store's erase keeps failing, unlock or fix that store (docker-credential-<name> erase).",
    "out_of_time": "The agent stopped short of the document's execution timeout so it could still report: what was left failed at once (see the message and the users' reasons). Find the slow part (a credential helper or store that hangs, a package manager, the network), or raise executionTimeoutSeconds.",
    "token_expired": "A client reads an ECR token the agent does not keep (the message names the client and the file: an old docker or podman login, a copied config), and the token's own expiry has passed, so its pulls fail. Run refresh (it writes the fresh token where that client reads first) or helper; or remove that entry (docker logout, podman logout).",
    "token_shadowed": "A client reads a token the agent does not keep (the message names the client and the file, often $XDG_RUNTIME_DIR/containers/auth.json from an old podman login) before the file or helper holding the one it keeps fresh: its pulls fail once that token expires. Run refresh (it writes where each client reads first) or helper; or remove that entry (podman logout).",
    "environment_unknown": "Nothing to do for the run: a user's DOCKER_CONFIG or REGISTRY_AUTH_FILE is set by shell code the agent does not evaluate (the message names the file and line), so it manages the files it can tell. Set it as a plain `export NAME=value` (or in /etc/environment, environment.d) if that user's clients read another file.",
    "no_such_user": "A configured user does not exist on this instance: fix `users` or the event's users.",
    "no_home": "docker could keep no config for this user: the home directory is missing, or the user may not create ~/.docker in it (a service account whose home belongs to root). With users=auto such accounts are listed with this reason and are not a failure; give the account a home it owns, or leave it out.",
    "no_python": "Install python3 on the instance (the agent needs Python 3.6 or newer).",
    "agent_unpack_failed": "The agent could not be unpacked (the message says why): the instance lacks base64 (coreutils), or its Python lacks the lzma module every distribution's python3 has (a Python built from source without liblzma): install coreutils, or the distribution's python3.",
    "internal_error": "An agent bug: see the Run Command output log group and open an issue.",
    # --- from the runner
    "not_target_tagged": "The instance lacks the target tag: tag it to manage it (events cannot widen the set).",
    "instance_not_found": "No such instance in this account and region: check the instance id.",
    "instance_not_running": "The instance is stopped, stopping or terminated (detail.state): start it, or remove its tag if it is gone.",
    "not_ssm_managed": "The SSM agent is not registered: attach AmazonSSMManagedInstanceCore and check its network.",
    "ssm_connection_lost": "The SSM agent stopped reporting: check the instance is up and can reach SSM.",
    "ssm_inactive": "The managed instance is inactive (terminated or deregistered): remove its tag.",
    "not_online_in_time": "A new instance did not come online in SSM within newInstanceReadinessSeconds of its event (detail.since, detail.waited_seconds): check its SSM agent, its instance role (AmazonSSMManagedInstanceCore) and its network to SSM. The next scheduled run tries again.",
    "unsupported_platform": "The document runs on Linux only.",
    "instance_busy": "Another run's command (detail.command_id) is still working on this instance; it was left out so runs never overlap. Nothing to do unless it stays busy: then see that command in Run Command history.",
    "dry_run": "A dry run sends nothing: invoke without dry_run to run the agent here.",
    "delivery_timed_out": "The command never reached the instance: check the SSM agent, or raise deliveryTimeoutSeconds.",
    "execution_timed_out": "The agent ran past executionTimeoutSeconds: see its output log, or raise the timeout.",
    "stopped_by_max_errors": "Run Command stopped sending after maxErrors failures: fix those first.",
    "output_unparseable": "The agent printed no result line: see the Run Command output log group.",
    "send_failed": "SendCommand failed for this batch (detail.error): see the runner's log. After a 5xx or a timeout the command may still have started: search Run Command history for the run id.",
    "send_unconfirmed": "SendCommand's answer was lost (detail.error) and its command never showed up in Run Command history while the run looked; it was not sent again, so it may or may not have run: search Run Command history for the run id. The next run handles the instance either way.",
    "invalid_instance_id": "SSM refused this instance id (InvalidInstanceId): it is shutting down or terminated, its SSM agent is not registered, or the runner may not command it. Check the instance in EC2 and Fleet Manager.",
    "not_dispatched": "A runner bug: the instance was planned but never sent to. See the runner's log and open an issue.",
    "not_sent_before_deadline": "The run ended before this instance's batch was sent (the batches before it on its lane took the whole wait, or a send whose answer was lost held the lane): the next run sends it; if it keeps happening, raise maxConcurrency or waitSeconds, or narrow runs.",
    "results_unavailable": "The run's results could not be read: see Run Command history for the command.",
    "access_denied": "The runner's role was denied: check that the stack is up to date.",
    "no_invocation": "Run Command never targeted this instance, though EC2 still says it is running: for a tag run, SSM did not see the target tag on it when it resolved the targets (tag just added, or the managed node re-registered). The next run picks it up; if not, check its tags in Fleet Manager.",
    "rate_exceeded": "Run Command canceled the command before it ran on any instance (Rate Exceeded): the invocations still pending in this account and region, every command's, plus this command's targets exceeded the account's limit of pending invocations (detail.command_id). Nothing ran here. A new instance's event is put back and sent again on each look of its chain (newInstanceReadinessSeconds); it is reported only once the chain ends; otherwise the next run sends again. If it keeps happening, see which commands keep invocations pending in Run Command history, or narrow runs (instance_ids, account_ids, regions).",
    "command_access_denied": "Run Command refused the whole command (Access Denied, detail.command_id) before it reached any instance: the role that sent it (the runner's, or memberRoleName in a member account) may not run this document on the instances the target tag selects. Check that role's ssm:SendCommand on the document and on instances carrying the target tag (ssm:resourceTag), and that no SCP or permissions boundary denies it; redeploy the stack (or let the StackSet update the member stack) if it is out of date.",
    "no_instances_in_tag": "Run Command found no managed node carrying the target tag when it resolved the command's targets (No Instances In Tag), though EC2 listed this instance tagged: the tag was removed meanwhile, or SSM's copy of the instance's tags is behind EC2's (the tag was just added, or the managed node re-registered). The next run picks it up; if not, check the instance's tags in Fleet Manager.",
    "command_incomplete": "The command ended Incomplete (it ran, and some of its invocations did not succeed) without an invocation for this instance: SSM did not count it among the targets it resolved. See the command in Run Command history (detail.command_id) for the instances it did reach; the next run picks this one up; if not, check its tags in Fleet Manager.",
    "command_cancelled": "The command was cancelled in Run Command (by someone, or a tool) before it reached this instance (detail.command_id): run again when ready.",
    "delivery_delayed": "SSM could not reach the instance yet and keeps retrying until the delivery timeout: check that it is up and its SSM agent is online.",
    "undeliverable": "SSM could not deliver the command (the instance was stopped, terminated or lost its agent while the command waited): check the instance and its SSM agent.",
    "cancelled": "The command was cancelled in Run Command before the agent finished: run again when ready.",
    "cancelling": "The command was being cancelled when the run returned: see Run Command history for the outcome.",
    "command_failed": "The command failed on the instance: see the Run Command output log group.",
    "timed_out": "The command timed out: see the Run Command output log group.",
    "in_progress": "Still running when the run returned: see Run Command history for the outcome.",
    "not_yet_delivered": "Not yet delivered when the run returned: the instance may be busy or offline.",
    "unknown_ssm_status": "Run Command returned a status this version does not know: see its history.",
    # --- for an (account, region) the run could not reach (the report's targets)
    "member_stack_not_ready": "The StackSet has no stack in this account and region to run on (detail.status, detail.detailed_status, detail.status_reason): its creation has not run yet, failed or was stopped, or the account was suspended before it could be created (SKIPPED_SUSPENDED_ACCOUNT). See the StackSet's operations in the CloudFormation console, fix what failed and update the stack set; the pair is covered once a stack stands there (a stack instance that is OUTDATED or INOPERABLE but whose stack stands, SKIPPED_SUSPENDED_ACCOUNT too, is run with what that stack offers). New instances' events there are reported with this reason and consumed: the next scheduled run covers them.",
    "member_document_missing": "The member stack in this account and region offers no agent document of this stack (detail.document: the one the runner expects; detail.status, detail.detailed_status: its stack instance, when not CURRENT): the StackSet has not created one there yet, it was deleted, or every version there lacks a parameter the runner sends. See the StackSet's operations and the documents named like detail.document in that account and region (SSM, Documents, Owned by me); the pair is covered once its stack has a document.",
    "member_document_outdated": "The member stack in this account and region is mid-update (or its update failed) and still offers only an earlier version of the agent document (detail.outdated_document), whose parameter detail.parameter refuses the value the runner sends (detail.problem: its allowedPattern or allowedValues predate it, e.g. registries' dual-stack names): nothing was sent, as SendCommand would refuse it. Let the StackSet operation finish, or fix what failed and retry the stack instance (update the stack set); the pair is covered once the document named detail.document is there.",
    "role_not_assumable": "The runner could not assume the member role in this account (detail.error; detail.status, detail.detailed_status, detail.status_reason: its stack instance, when not CURRENT): the StackSet has not deployed it there yet, its last update failed, the account is suspended, or its trust no longer names the runner's role. Check the stack instance and the role memberRoleName in that account; new instances' events there are reported with this reason, and the next scheduled run covers them.",
    "region_unreachable": "EC2 or SSM in this region refused the member role's credentials (detail.error): the region is not enabled for the account (opt-in regions), or the credentials are not valid there. Enable the region for the account, or remove it from memberRegions.",
    "child_run_failed": "The organization's state machine ran this pair in a child execution (detail.batch, detail.execution) that ended without a report: its runner invocation failed or timed out (detail.error), or the run stopped before the batch was run. See that execution in the Step Functions console and the runner's log; commands it sent before it stopped are in Run Command history (search for the run id). The next run covers the pair.",
    # --- for a user x registry in SSM Compliance (the agent's state says why the user cannot pull)
    "not_logged_in": "This user's docker holds no credential for the registry (state none): run refresh to log it in, or helper to point it at the credential helper. If a refresh left it so, the run's own reason says why.",
    "login_expired": "This user's stored login has expired (detail expires_at): it is renewed only by a refresh, so run refresh (check the schedule reaches the instance at least every 12 hours), or switch to the helper action, which needs no renewal.",
    # --- for the run as a whole
    "run_failed": "The run stopped before it could report per instance (error.code, error.message): see the runner's log. Nothing was sent unless command_ids lists commands; the next scheduled run tries again.",
}

DEFAULT_NEXT_STEP: Final = "See the Run Command output log group for this instance's full output."


def next_step(reason: str | None) -> str:
    return NEXT_STEPS.get(reason or "", DEFAULT_NEXT_STEP)
