"""The report of a run and its one JSON result line on stdout, within the runner's byte limit."""

import json

from .log import log
from .outcomes import CHANGED, FAILED, MODE_TIGHTENED, OK, UNCHANGED
from .params import ACTIONS
from .writing import SECRET_FILE_MODE

RESULT_SCHEMA = 1
RESULT_LINE_MAX_BYTES = 2000
MESSAGE_MAX_CHARS = 300
ELLIPSIS = "..."


def shortened(message, limit=MESSAGE_MAX_CHARS):
    """At most limit characters, cut at a word's end and marked, so no word reads as another."""
    if len(message) <= limit:
        return message
    kept = message[: limit - len(ELLIPSIS) + 1]
    cut = kept.rfind(" ")
    kept = kept[:cut] if cut > limit // 2 else kept[:-1]
    return kept.rstrip(" ;,:") + ELLIPSIS


class UserReport(object):
    def __init__(self, name):
        self.name = name
        self.registries = {}
        self.reason = None
        self.changed = False
        self.tightened = {}  # file name -> its mode before the agent made it owner-only
        self.in_place = False  # its config was written in place (held by its inode elsewhere)

    def as_dict(self):
        entry = {"user": self.name, "registries": self.registries}
        if self.reason:
            entry["reason"] = self.reason
        if self.changed:
            entry["changed"] = True
        if self.tightened:
            entry["mode_tightened"] = self.tightened
        if self.in_place:
            entry["in_place"] = True
        return entry


class Report(object):
    """Collects what happened; renders the single result line."""

    def __init__(self, action):
        self.action = action if action in ACTIONS else None
        self.host = None
        self.users = []
        self.problems = []
        self.notices = []  # (reason, message): worth reporting, not a failure
        self.changes = 0
        self.message_parts = []

    def user(self, name):
        report = UserReport(name)
        self.users.append(report)
        return report

    def problem(self, reason, message, user=None):
        log("%s: %s" % (reason, message))
        self.problems.append((reason, message))
        if user is not None and user.reason is None:
            user.reason = reason

    def tightened(self, user, name, mode):
        """A file holding credentials that group or others could read was made owner-only (0600)."""
        user.tightened[name] = "%04o" % mode
        user.changed = True
        self.changes += 1
        message = "%s: %s was %04o, now %04o (it holds credentials)" % (
            user.name,
            name,
            mode,
            SECRET_FILE_MODE,
        )
        log(message)
        self.notices.append((MODE_TIGHTENED, message))

    def outcome(self):
        if self.problems and self.action != "check":
            return FAILED
        return CHANGED if self.changes else UNCHANGED

    def result(self, outcome=None, reason=None, message=None):
        outcome = outcome or self.outcome()
        if reason is None:
            reason = (self.problems or self.notices or [(OK, "")])[0][0]
        if message is None:
            notes = [text for _, text in self.problems[:2]] + [text for _, text in self.notices[:1]]
            message = "; ".join(notes + self.message_parts)
        return {
            "schema": RESULT_SCHEMA,
            "action": self.action,
            "outcome": outcome,
            "reason": reason,
            "message": shortened(message),
            "host": self.host,
            "users": [user.as_dict() for user in self.users],
        }


def result_line(result, limit=RESULT_LINE_MAX_BYTES):
    """Compact JSON within the byte limit: users that do not fit are dropped and counted.

    Users with nothing to report go first, so the ones with a problem stay visible.
    """
    users = list(result.get("users") or [])
    line = compact(result)
    drop_order = [i for i in reversed(range(len(users))) if is_quiet(users[i])]
    drop_order += [i for i in reversed(range(len(users))) if not is_quiet(users[i])]
    dropped = set()
    while len(line.encode("utf-8")) > limit and len(dropped) < len(users):
        dropped.add(drop_order[len(dropped)])
        kept = [user for index, user in enumerate(users) if index not in dropped]
        line = compact(dict(result, users=kept, users_truncated=len(dropped)))
    if len(line.encode("utf-8")) > limit:
        trimmed = dict(
            result, users=[], users_truncated=len(users), host=None, message=result["message"][:80]
        )
        line = compact(trimmed)
    return line


def is_quiet(user):
    """A user entry without a problem: neither a user-level reason nor a per-registry error."""
    registries = user.get("registries") or {}
    return not user.get("reason") and not any("error" in state for state in registries.values())


def compact(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def plural(count, singular, plural_form):
    return "%d %s" % (count, singular if count == 1 else plural_form)
