"""Progress for the SSM stderr stream, and keeping a secret out of what is shown."""

import datetime
import sys


def log(message):
    """Human-readable progress for the SSM stderr stream (never carries a token)."""
    stamp = datetime.datetime.utcnow().strftime("%H:%M:%S")
    sys.stderr.write("ecr-fleet-auth %s %s\n" % (stamp, message))
    sys.stderr.flush()


def redact(text, secret):
    text = text.strip()
    if secret:
        text = text.replace(secret, "<redacted>")
    return text[-500:]
