"""The document's parameters, re-validated: the agent trusts nothing it did not check itself.

The patterns are copies of lambda_src/ecr_fleet_auth/shared/contract.py's (the agent imports only the
standard library); tests/agent/test_params.py keeps them deciding alike."""

import re

from .outcomes import INVALID_PARAMETER, AgentError

ACTIONS = ("refresh", "helper", "check")
AUTO_USERS = "auto"
BOOLEAN_VALUES = ("false", "true")
PARTITION_DOMAINS = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "c2s.ic.gov",
    "sc2s.sgov.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
    "amazonaws.eu",
)
REGION_RE = r"[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2}"
DUALSTACK_DOMAINS = ("on.aws", "on.amazonwebservices.com.cn")
PUBLIC_REGISTRY = "public.ecr.aws"
DUALSTACK_PUBLIC_REGISTRY = "ecr-public.aws.com"
PUBLIC_REGISTRIES = (PUBLIC_REGISTRY, DUALSTACK_PUBLIC_REGISTRY)
IPV4_REGISTRY_RE = (
    r"[0-9]{12}\.dkr\.ecr(?:-fips)?\."
    + REGION_RE
    + r"\.(?:"
    + "|".join(re.escape(domain) for domain in PARTITION_DOMAINS)
    + ")"
)
DUALSTACK_REGISTRY_RE = (
    r"[0-9]{12}\.dkr-ecr(?:-fips)?\."
    + REGION_RE
    + r"\.(?:"
    + "|".join(re.escape(domain) for domain in DUALSTACK_DOMAINS)
    + ")"
)
PRIVATE_REGISTRY_RE = r"(?:" + IPV4_REGISTRY_RE + "|" + DUALSTACK_REGISTRY_RE + ")"
REGISTRY_RE = (
    r"(?:" + "|".join(re.escape(name) for name in PUBLIC_REGISTRIES) + "|" + PRIVATE_REGISTRY_RE + ")"
)
MAX_REGISTRIES = 20
USER_NAME_RE = r"[A-Za-z_][A-Za-z0-9._-]{0,31}"
MAX_USERS = 50
HELPER_SEMVER_RE = r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}"


def _list_of(item, most):
    return "%s(?:,%s){0,%d}" % (item, item, most - 1)


REGISTRIES_PATTERN = "^" + _list_of(REGISTRY_RE, MAX_REGISTRIES) + "$"
USERS_PATTERN = "^(?:" + AUTO_USERS + "|" + _list_of(USER_NAME_RE, MAX_USERS) + ")$"
HELPER_VERSION_PATTERN = "^" + HELPER_SEMVER_RE + "$"
RELEASE_BASE_URL_PATTERN = (
    r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~-]+)*/?$"
)


class Params(object):
    def __init__(self, action, registries, users, helper_version, release_base_url):
        self.action = action
        self.registries = registries
        self.users = users
        self.helper_version = helper_version
        self.release_base_url = release_base_url
        self.keep_user_docker_login = False  # KeepUserDockerLogin


def fullmatch(pattern, value):
    return re.fullmatch(pattern, value) is not None


def read_params(environ):
    """Re-validate the document parameters: the agent trusts nothing it did not check itself."""
    action = environ.get("SSM_Action", "")
    if action not in ACTIONS:
        raise AgentError(INVALID_PARAMETER, "Action must be one of %s" % ", ".join(ACTIONS))
    checks = (
        ("Registries", REGISTRIES_PATTERN),
        ("Users", USERS_PATTERN),
        ("HelperVersion", HELPER_VERSION_PATTERN),
        ("ReleaseBaseUrl", RELEASE_BASE_URL_PATTERN),
    )
    values = {}
    for name, pattern in checks:
        value = environ.get("SSM_" + name, "")
        if not fullmatch(pattern, value):
            raise AgentError(INVALID_PARAMETER, "parameter %s is missing or malformed" % name)
        values[name] = value
    keep = environ.get("SSM_KeepUserDockerLogin", "")
    if keep not in BOOLEAN_VALUES:
        raise AgentError(INVALID_PARAMETER, "parameter KeepUserDockerLogin is missing or malformed")
    registries = unique(values["Registries"].split(","))
    users = AUTO_USERS if values["Users"] == AUTO_USERS else unique(values["Users"].split(","))
    params = Params(action, registries, users, values["HelperVersion"], values["ReleaseBaseUrl"])
    params.keep_user_docker_login = keep == "true"
    return params


def unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
