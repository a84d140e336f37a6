"""The agent's record of logins (agent/records.py): when a login is fresh enough to keep."""

from __future__ import annotations

import datetime

from agent.docker_model import auth_digest
from agent.records import REFRESH_MARGIN, is_fresh
from tests.agent.user_files import b64


def test_freshness_uses_the_margin() -> None:
    """A token with 10 hours or less left is renewed: tokens last 12 hours, so a re-run within 2 hours
    of a good run is unchanged, and runs less than 10 hours apart always renew before expiry."""
    digest = auth_digest(b64("AWS:token"))
    now = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC)
    record = {"auth_sha256": digest, "expires_at": "2026-11-27T22:00:01Z"}
    assert datetime.timedelta(hours=10) == REFRESH_MARGIN
    assert is_fresh(record, digest, now)
    assert not is_fresh(dict(record, expires_at="2026-11-27T22:00:00Z"), digest, now)
    assert not is_fresh(dict(record, expires_at="2026-11-27T18:00:30Z"), digest, now)
    assert not is_fresh(record, auth_digest(b64("AWS:other")), now)
    assert not is_fresh(None, digest, now)
    assert not is_fresh(record, None, now)
