"""ECR authorization tokens, fetched with the agent's own AWS identity (the AWS CLI), one per region."""

import base64
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from .commands import run_command
from .log import log
from .outcomes import AWS_CLI_MISSING, INVALID_PARAMETER, NO_CREDENTIALS, TOKEN_FAILED, AgentError
from .params import DUALSTACK_PUBLIC_REGISTRY, PUBLIC_REGISTRIES, REGION_RE, unique
from .times import parse_time

PRIVATE_REGISTRY_REGION = re.compile(r"^[0-9]{12}\.dkr([.-])ecr(?:-fips)?\.(" + REGION_RE + r")\.")

# ECR Public issues its tokens from us-east-1 only.
PUBLIC_REGISTRY_REGION = "us-east-1"
IDENTITY_TIMEOUT = 20


class Token(object):
    """An ECR authorization token; its repr never shows the password."""

    def __init__(self, username, password, expires_at):
        self.username = username
        self.password = password
        self.expires_at = expires_at

    def __repr__(self):
        return "Token(%s, expires_at=%s)" % (self.username, self.expires_at)


def token_source(registry):
    """(service, region) whose token opens this registry: one token serves every registry of a region,
    its IPv4 and its dual-stack name alike (a token is for the account's registry, not a host name:
    the credential helper caches one per registry id for both, ecr-login/cache)."""
    if registry in PUBLIC_REGISTRIES:
        return ("ecr-public", PUBLIC_REGISTRY_REGION)
    match = PRIVATE_REGISTRY_REGION.match(registry)
    if not match:
        raise AgentError(INVALID_PARAMETER, "not an ECR registry: %s" % registry)
    return ("ecr", match.group(2))


def is_dualstack(registry):
    """A dual-stack registry name: an IPv6-only host reaches it, and only the dual-stack API endpoint."""
    if registry in PUBLIC_REGISTRIES:
        return registry == DUALSTACK_PUBLIC_REGISTRY
    match = PRIVATE_REGISTRY_REGION.match(registry)
    return bool(match) and match.group(1) == "-"


def is_fips(registry):
    """A FIPS registry name (dkr.ecr-fips, dkr-ecr-fips): its token comes from the FIPS API endpoint."""
    match = PRIVATE_REGISTRY_REGION.match(registry)
    return bool(match) and "-fips." in registry[: match.end()]


def token_sources(registries):
    """([source], {source: endpoint settings}): one call per region, through the dual-stack endpoint
    when any of that region's registries is named by its dual-stack name (that endpoint serves IPv4
    clients too, while the IPv4-only one has no IPv6 address), and the FIPS one when any is a FIPS
    name: the AWS CLI's own settings, which botocore's endpoint rules turn into the host
    (ecr-fips.<region>.amazonaws.com, ecr-fips.<region>.api.aws; China's api.ecr-fips....cn)."""
    sources = unique(token_source(registry) for registry in registries)
    endpoints = {}
    for registry in registries:
        flags = endpoints.setdefault(token_source(registry), {})
        if is_dualstack(registry):
            flags["AWS_USE_DUALSTACK_ENDPOINT"] = "true"
        if is_fips(registry):
            flags["AWS_USE_FIPS_ENDPOINT"] = "true"
    return sources, endpoints


CREDENTIAL_ERRORS = (
    "Unable to locate credentials",
    "NoCredentialsError",
    "AccessDenied",
    "UnrecognizedClient",
    "InvalidClientTokenId",
    "ExpiredToken",
    "not authorized",
    "SignatureDoesNotMatch",
)


class TokenError(AgentError):
    """A failed token call; its message names the AWS identity the call was made with, once known."""

    def __init__(self, reason, service, region, detail):
        self.service, self.region, self.detail = service, region, detail
        self.identity = None
        AgentError.__init__(self, reason, self.describe())

    def describe(self):
        who = " (%s)" % self.identity if self.identity else ""
        return "%s token for %s%s: %s" % (self.service, self.region, who, self.detail)

    def name_identity(self, identity):
        self.identity = identity
        self.message = self.describe()


def fetch_token(host, source, endpoint=None):
    """One GetAuthorizationToken with the instance's own credentials; the token arrives on a pipe.

    endpoint: AWS_USE_DUALSTACK_ENDPOINT / AWS_USE_FIPS_ENDPOINT for this call, with which the AWS CLI
    and SDKs choose the dual-stack (ecr.<region>.api.aws) or FIPS endpoint (AWS SDKs and Tools
    reference guide, "Dual-stack and FIPS endpoints")."""
    service, region = source
    argv = [host.aws, service, "get-authorization-token", "--region", region, "--output", "json"]
    env = host.root_env()
    env.update(endpoint or {})
    try:
        completed = run_command(argv, env)
    except subprocess.TimeoutExpired:
        raise TokenError(TOKEN_FAILED, service, region, "timed out") from None
    except OSError as error:
        raise AgentError(AWS_CLI_MISSING, "cannot run the AWS CLI: %s" % error) from None
    errors = completed.stderr.decode("utf-8", "replace").strip()
    if completed.returncode != 0:
        reason = NO_CREDENTIALS if any(marker in errors for marker in CREDENTIAL_ERRORS) else TOKEN_FAILED
        raise TokenError(reason, service, region, errors[-200:])
    return parse_token(completed.stdout, service, region)


def parse_token(stdout, service, region):
    try:
        data = json.loads(stdout.decode("utf-8"))["authorizationData"]
        if isinstance(data, list):  # private ECR returns a list, ECR Public a single object
            data = data[0]
        decoded = base64.b64decode(data["authorizationToken"]).decode("utf-8")
        username, password = decoded.split(":", 1)
    except (ValueError, KeyError, IndexError, TypeError):
        raise TokenError(TOKEN_FAILED, service, region, "unexpected response") from None
    return Token(username, password, parse_time(data.get("expiresAt")))


def fetch_tokens(host, sources, endpoints=None):
    """{source: Token or AgentError}; regions are fetched in parallel, one call each (through the
    endpoint `endpoints` names for it)."""
    results = {}
    if not sources:
        return results

    def attempt(source):
        try:
            return fetch_token(host, source, (endpoints or {}).get(source))
        except AgentError as error:
            return error

    with ThreadPoolExecutor(max_workers=min(8, len(sources))) as pool:
        for source, outcome in zip(sources, list(pool.map(attempt, sources))):  # noqa: B905 - no strict= before 3.10
            results[source] = outcome
            if isinstance(outcome, AgentError):
                log("token %s/%s failed: %s" % (source[0], source[1], outcome.message))
            else:
                log("token %s/%s obtained" % source)
    failures = [outcome for outcome in results.values() if isinstance(outcome, TokenError)]
    if failures:  # off the success path: only a failed token call pays for the identity lookup
        arn, error = caller_identity(host, failures[0].region)
        for failure in failures:
            failure.name_identity("as %s" % arn if arn else "no AWS identity: %s" % error)
    return results


def caller_identity(host, region):
    """(ARN, None) of the identity the agent's AWS calls use, or (None, why not).

    Under Default Host Management Configuration Run Command hands the agent the DHMC role, not the
    instance profile (amazon-ssm-agent #610), so this can differ from what users' own pulls use.
    """
    if not host.aws:
        return None, "AWS CLI not found"
    # Short timeouts, one attempt: many private subnets reach ECR but have no STS endpoint, and the
    # report must not wait minutes for an answer it can do without. Regional STS, as VPC endpoints are.
    argv = [host.aws, "sts", "get-caller-identity", "--region", region, "--output", "json"]
    argv += ["--cli-connect-timeout", "5", "--cli-read-timeout", "10"]
    env = host.root_env()
    env.update(AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard", AWS_STS_REGIONAL_ENDPOINTS="regional")
    try:
        completed = run_command(argv, env, timeout=IDENTITY_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        return None, str(error)[-120:]
    if completed.returncode != 0:
        return None, completed.stderr.decode("utf-8", "replace").strip()[-120:]
    try:
        arn = json.loads(completed.stdout.decode("utf-8"))["Arn"]
    except (ValueError, KeyError, TypeError):
        return None, "unexpected sts response"
    return (arn, None) if isinstance(arn, str) else (None, "unexpected sts response")


def token_expiry(password):
    """When an ECR token expires, read from the token itself (None when it is not one): the password
    of GetAuthorizationToken's AWS:<password> is base64 of JSON whose "expiration" is epoch seconds
    (amazon-ecr-credential-helper and the AWS CLI hand it on unchanged)."""
    try:
        data = json.loads(base64.b64decode(password + "=" * (-len(password) % 4)).decode("utf-8"))
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return parse_time(data.get("expiration")) if isinstance(data, dict) else None
