#!/usr/bin/python3
"""Stand-in for docker-credential-pass: a credential store that speaks docker's helper protocol.

The real helper keeps secrets in `pass` (gpg), which cannot run here; this one keeps them in a
file only its user can read (~/.docker-credential-pass-standin/store.json, 0600 in a 0700
directory). The protocol is docker-credential-helpers' (credentials/credentials.go Serve,
client/client.go): the action is the argument; `get` and `erase` read the server URL on stdin,
`store` reads {"ServerURL","Username","Secret"}, `list` prints {server: username}; a missing
entry is "credentials not found in native keychain" on stdout with exit status 1.

Every call is appended to calls.log beside the store as "<action> <server>": never a secret.
Touching `fail` in that directory makes every call fail.
"""

import json
import os
import sys

NOT_FOUND = "credentials not found in native keychain"
FOLDER = os.path.join(os.path.expanduser("~"), ".docker-credential-pass-standin")
STORE = os.path.join(FOLDER, "store.json")


def load():
    try:
        with open(STORE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def save(entries):
    temp = STORE + ".tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(entries, handle)
    os.replace(temp, STORE)


def record(action, server):
    with open(os.path.join(FOLDER, "calls.log"), "a", encoding="utf-8") as handle:
        handle.write(f"{action} {server}\n")


def main():
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    os.makedirs(FOLDER, mode=0o700, exist_ok=True)
    payload = sys.stdin.read()
    entries = load()
    if action == "store":
        credentials = json.loads(payload)
        server = credentials["ServerURL"]
    else:
        server = payload.strip()
    record(action, server)
    if os.path.exists(os.path.join(FOLDER, "fail")):
        sys.stdout.write("the password store is locked\n")
        return 1
    if action == "store":
        entries[server] = {"Username": credentials["Username"], "Secret": credentials["Secret"]}
        save(entries)
    elif action == "get":
        if server not in entries:
            sys.stdout.write(NOT_FOUND + "\n")
            return 1
        entry = entries[server]
        json.dump({"ServerURL": server, "Username": entry["Username"], "Secret": entry["Secret"]}, sys.stdout)
    elif action == "erase":  # like `pass rm -rf`: erasing what is not there is no error
        entries.pop(server, None)
        save(entries)
    elif action == "list":
        json.dump({key: value["Username"] for key, value in entries.items()}, sys.stdout)
    else:
        sys.stdout.write(f"unknown action {action!r}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
