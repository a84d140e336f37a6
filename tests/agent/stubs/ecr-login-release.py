#!/usr/bin/python3
"""Stand-in for a docker-credential-ecr-login release newer than Debian's 0.6.0: the pinned 0.12.0,
which cannot be had here (no route to the release bucket or to the Go module proxy). Served by the
test mirror as the release binary; behaves as 0.12.0's code does where the tests look:

- `-v` prints what cli/docker-credential-ecr-login/main.go prints:
  "amazon-ecr-credential-helper\\nVersion:    0.12.0\\nGit commit: ...\\n".
- `get` reads the server on stdin and accepts exactly the names 0.12.0's ecr-login/api/client.go
  pattern accepts (ExtractRegistry trims a scheme and path); any other name: "credentials not found
  in native keychain", exit 1 (ecr.go Get). For an accepted name it answers with the token of the
  name's account, which the real 0.6.0 binary (copied beside it by the test, REAL) fetches for the
  same account in the region the sandbox's ECR serves: a token is the account's, not the host
  name's (AmazonECR registry_auth.html).
- `store` and `erase` answer "not implemented", exit 1, unless AWS_ECR_IGNORE_CREDS_STORAGE is
  exactly "true" (ecr.go Add and Delete, 0.9.0+): then they store nothing and exit 0.
"""

import json
import os
import re
import subprocess
import sys

VERSION = "0.12.0"
REAL = "/opt/ecr-fleet-auth-test/docker-credential-ecr-login-0.6.0"
SERVED_REGION = "eu-west-1"
PRIVATE = re.compile(
    r"^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)"
    r"|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$"
)
PUBLIC = ("public.ecr.aws", "ecr-public.aws.com")
NOT_FOUND = "credentials not found in native keychain"


def host_of(server):
    server = server.strip()
    if "://" not in server:
        server = "https://" + server
    return server.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]


def get():
    server = sys.stdin.read()
    host = host_of(server)
    match = PRIVATE.match(host)
    if host in PUBLIC:
        ask = "public.ecr.aws"
    elif match:
        ask = f"{match.group(1)}.dkr.ecr.{SERVED_REGION}.amazonaws.com"
    else:
        print(NOT_FOUND)
        return 1
    done = subprocess.run([REAL, "get"], input=ask.encode(), stdout=subprocess.PIPE, check=False)
    if done.returncode:
        sys.stdout.write(done.stdout.decode())
        return done.returncode
    answer = json.loads(done.stdout.decode())
    answer["ServerURL"] = server.strip()
    print(json.dumps(answer))
    return 0


def main():
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "-v":
        print(f"amazon-ecr-credential-helper\nVersion:    {VERSION}\nGit commit: stand-in")
        return 0
    if action == "get":
        return get()
    if action in ("store", "erase"):
        sys.stdin.read()
        if os.environ.get("AWS_ECR_IGNORE_CREDS_STORAGE") == "true":
            return 0
        print("not implemented")
        return 1
    if action == "list":
        print("{}")
        return 0
    print("usage: docker-credential-ecr-login <store|get|erase|list|version>")
    return 1


sys.exit(main())
