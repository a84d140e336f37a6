"""Every reason code the runner itself can give an instance (or a run), defined once.

The agent's codes are its own (``agent/outcomes.py``: the instance reports them);
these are the ones the runner assigns when the agent did not speak — not commanded,
not delivered, not readable. Code that reports a reason takes it from here, and a
test (``tests/test_troubleshooting.py``) finds these members, the agent's constants
and the shim's codes, and requires a next step for each in ``troubleshooting.py``
and in the troubleshooting page it renders (docs/operating/troubleshooting.md).
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Reason(StrEnum):
    # --- discovery: reported, never commanded
    INSTANCE_NOT_FOUND = "instance_not_found"
    NOT_TARGET_TAGGED = "not_target_tagged"
    INSTANCE_NOT_RUNNING = "instance_not_running"
    NOT_SSM_MANAGED = "not_ssm_managed"
    SSM_CONNECTION_LOST = "ssm_connection_lost"
    SSM_INACTIVE = "ssm_inactive"
    # A new instance (a run of instance events) still not Online in SSM when its readiness bound ended.
    NOT_ONLINE_IN_TIME = "not_online_in_time"
    UNSUPPORTED_PLATFORM = "unsupported_platform"
    # Another command of this document is still running there (another run's): left out.
    INSTANCE_BUSY = "instance_busy"
    DRY_RUN = "dry_run"
    # --- sending
    SEND_FAILED = "send_failed"
    # SendCommand's answer was lost and no command with this send's comment was ever listed.
    SEND_UNCONFIRMED = "send_unconfirmed"
    # SSM refused this id in SendCommand (InvalidInstanceId) although it looked running.
    INVALID_INSTANCE_ID = "invalid_instance_id"
    NOT_SENT_BEFORE_DEADLINE = "not_sent_before_deadline"
    NOT_DISPATCHED = "not_dispatched"
    # --- following the command
    RESULTS_UNAVAILABLE = "results_unavailable"
    NO_INVOCATION = "no_invocation"
    NOT_YET_DELIVERED = "not_yet_delivered"
    IN_PROGRESS = "in_progress"
    DELIVERY_DELAYED = "delivery_delayed"
    CANCELLING = "cancelling"
    # --- the command ended without ever reaching the instance: what the command's own StatusDetails say
    # Rate Exceeded: the account's limit of pending invocations; canceled before any instance.
    RATE_EXCEEDED = "rate_exceeded"
    # Access Denied for the whole command: its sender may not run the document on the targets.
    COMMAND_ACCESS_DENIED = "command_access_denied"
    # No Instances In Tag: SSM resolved the target tag to no managed node.
    NO_INSTANCES_IN_TAG = "no_instances_in_tag"
    # Incomplete, and this instance not among the targets SSM resolved.
    COMMAND_INCOMPLETE = "command_incomplete"
    # Cancelled before it reached this instance.
    COMMAND_CANCELLED = "command_cancelled"
    # --- Run Command's own verdict when the agent's result line is not the answer
    OUTPUT_UNPARSEABLE = "output_unparseable"
    COMMAND_FAILED = "command_failed"
    DELIVERY_TIMED_OUT = "delivery_timed_out"
    UNDELIVERABLE = "undeliverable"
    EXECUTION_TIMED_OUT = "execution_timed_out"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    STOPPED_BY_MAX_ERRORS = "stopped_by_max_errors"
    ACCESS_DENIED = "access_denied"
    UNKNOWN_SSM_STATUS = "unknown_ssm_status"
    # --- the run as a whole stopped before it could report per instance
    RUN_FAILED = "run_failed"
    # --- a user x registry in SSM Compliance (``compliance.py``), when the agent's state is the answer
    # The agent found no credential for the registry where this user's docker looks.
    NOT_LOGGED_IN = "not_logged_in"
    # The stored login's token has expired (its expires_at has passed): docker would send it and fail.
    LOGIN_EXPIRED = "login_expired"
    # --- an (account, region) the run could not reach (the report's ``targets``)
    # The StackSet's stack instance there is not CURRENT: the member role or document may be missing.
    MEMBER_STACK_NOT_READY = "member_stack_not_ready"
    # The pair's stack offers no agent document of this stack (neither the expected one nor an earlier one).
    MEMBER_DOCUMENT_MISSING = "member_document_missing"
    # Only an earlier version of the document is there, and its parameters refuse today's values.
    MEMBER_DOCUMENT_OUTDATED = "member_document_outdated"
    # STS refused to let the runner assume the member role there.
    ROLE_NOT_ASSUMABLE = "role_not_assumable"
    # EC2 or SSM in that region refused the member credentials (region not enabled, ...).
    REGION_UNREACHABLE = "region_unreachable"
    # An organization's state machine run: the child execution for this pair's batch ended without a report
    # (its invocation failed or timed out, or the run stopped before it): detail.execution, detail.error.
    CHILD_RUN_FAILED = "child_run_failed"
