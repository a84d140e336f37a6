"""Root's own record of each login's expiry, keyed by a fingerprint (never the token).

`check` reports the expiry; `refresh` skips a login that has long enough left."""

import datetime
import json
import os
import stat

from .log import log
from .times import format_time, parse_time
from .writing import replace_file_at

STATE_DIR = "/var/lib/ecr-fleet-auth"
LOGINS_FILE = "logins.json"

# A login with less than this left is renewed (tokens last 12 hours): a re-run within 2 hours of a good
# run changes nothing, and runs that reach the instance less than 10 hours apart renew every token in time.
REFRESH_MARGIN = datetime.timedelta(hours=10)


def load_records(state_dir):
    path = os.path.join(state_dir, LOGINS_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_records(state_dir, records):
    """Root's own record of expiries, keyed by a fingerprint of the stored login (never the token)."""
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        info = os.lstat(state_dir)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
            log("state dir %s is not a root-owned directory; expiry not recorded" % state_dir)
            return
        dir_fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            replace_file_at(dir_fd, LOGINS_FILE, (json.dumps(records, sort_keys=True) + "\n").encode(), 0o600)
        finally:
            os.close(dir_fd)
    except OSError as error:
        log("could not record login expiries: %s" % error)


def record_for(records, account, registry):
    entry = records.get(account.name, {}).get(registry)
    return entry if isinstance(entry, dict) else None


def record_expiry(record, digest):
    """The expiry recorded for this very login (same fingerprint), else None."""
    if not record or not digest or record.get("auth_sha256") != digest:
        return None
    return parse_time(record.get("expires_at"))


def remember_login(records, account, registry, digest, expires_at):
    entry = {"auth_sha256": digest}
    if expires_at is not None:
        entry["expires_at"] = format_time(expires_at)
    records.setdefault(account.name, {})[registry] = entry


def is_fresh(record, digest, now):
    expires_at = record_expiry(record, digest)
    return expires_at is not None and expires_at - now > REFRESH_MARGIN
