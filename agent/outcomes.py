"""What a run ends with, in the result line's words: outcomes, reason codes, registry states.

The runner reads these (lambda_src/ecr_fleet_auth/shared/contract.py holds the outcomes and states it
expects; a test keeps the two equal). AgentError carries a reason code with its message."""

# --- outcomes
CHANGED = "changed"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
FAILED = "failed"

# --- reason codes
OK = "ok"
INVALID_PARAMETER = "invalid_parameter"
NOT_ROOT = "not_root"
LOCKED = "locked"
DOCKER_MISSING = "docker_missing"
AWS_CLI_MISSING = "aws_cli_missing"
NO_CREDENTIALS = "no_credentials"
TOKEN_FAILED = "token_failed"  # noqa: S105 - a reason code, not a secret
LOGIN_FAILED = "login_failed"
HELPER_INSTALL_FAILED = "helper_install_failed"
HELPER_VERIFY_FAILED = "helper_verify_failed"
# The helper here predates a registry's name (its ecrPattern does not accept it) or KeepUserDockerLogin,
# and no newer one could be installed: those registries keep what they have (stores.MINIMUM_VERSIONS).
HELPER_TOO_OLD = "helper_too_old"
# Neither the package manager's mirrors nor ReleaseBaseUrl took a connection within seconds.
HELPER_SOURCE_UNREACHABLE = "helper_source_unreachable"
# A credential helper or store the user's docker config names for a registry is missing or cannot run.
HELPER_UNAVAILABLE = "helper_unavailable"
# Not a failure: a docker config (or its backup) holding credentials was made owner-only.
MODE_TIGHTENED = "mode_tightened"
CHECKSUM_MISMATCH = "checksum_mismatch"
UNSUPPORTED_OS = "unsupported_os"
CONFIG_CORRUPT = "config_corrupt"
CONFIG_UNSAFE = "config_unsafe"
CONFIG_UNWRITABLE = "config_unwritable"
# Larger than the agent reads (reading.MAX_CONFIG_BYTES); docker itself sets no limit.
CONFIG_TOO_LARGE = "config_too_large"
# A config or backup holding credentials that other users can read (`check` reports, the others fix).
SECRET_READABLE = "secret_readable"  # noqa: S105 - a reason code, not a secret
# Not a failure: a config held by its inode (a single-file bind mount elsewhere, a hard link) was
# written in place, so that its readers see the new one (writing.py's rule).
WRITTEN_IN_PLACE = "written_in_place"
# A single-file bind mount of a user's config still shows a copy that a rename (docker login, an older
# agent) replaced: no write reaches it; only restarting that reader or mounting the directory does.
READER_STALE = "reader_stale"
# Not failures: readers the agent does not manage, found with what to do (readers.py): Nomad's
# auth.config file that is no managed user's, this node's Swarm services (a manager).
READER_NOMAD = "reader_nomad"
READER_SWARM = "reader_swarm"
# A token left beside the helper (the file's auths, or the user's credential store) for a managed registry.
STALE_CREDENTIALS = "stale_credentials"
# The run stopped short of the document's execution timeout (main.TIMEOUT_ENV) so it could still report.
OUT_OF_TIME = "out_of_time"
# A client reads a token the agent does not keep fresh before the file (or helper) holding the fresh one.
TOKEN_SHADOWED = "token_shadowed"  # noqa: S105 - a reason code, not a secret
# A client reads a token the agent does not keep whose own expiry (ECR's token carries it) has passed.
TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a reason code, not a secret
# Not a failure: a user's DOCKER_CONFIG, REGISTRY_AUTH_FILE... is set by shell code the agent cannot evaluate.
ENVIRONMENT_UNKNOWN = "environment_unknown"
NO_SUCH_USER = "no_such_user"
NO_HOME = "no_home"
INTERNAL_ERROR = "internal_error"
# no_python is emitted by entrypoint.sh, agent_unpack_failed by the document's script: never by Python.

# --- per user x registry states
STATE_HELPER = "helper"
STATE_LOGGED_IN = "logged_in"
STATE_STALE_AUTH = "stale_auth"
STATE_NONE = "none"
STATE_HELPER_UNAVAILABLE = "helper_unavailable"
STATE_SHADOWED = "shadowed"


class AgentError(Exception):
    """A failure with a stable reason code."""

    def __init__(self, reason, message):
        Exception.__init__(self, message)
        self.reason = reason
        self.message = message
