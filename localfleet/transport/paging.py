"""``NextToken`` paging, as every simulated service pages a listing.

A token is opaque to clients: here the offset of the next page within one listing (``scope``: the
operation, or what is listed), so a token is refused by another listing. Each service says how it
refuses a token it did not give (``invalid``: SSM's ``InvalidNextToken``, EC2's
``InvalidParameterValue``, CloudFormation's ``ValidationError``, in their own words).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from .endpoint import ServiceError

T = TypeVar("T")


def page(
    items: Sequence[T], *, token: str | None, size: int, scope: str, invalid: ServiceError
) -> tuple[list[T], str | None]:
    """The page of ``items`` that ``token`` (none: the first) starts, and the token of the next."""
    start = offset(token, scope, invalid)
    end = start + size
    return list(items[start:end]), next_token(scope, end) if end < len(items) else None


def next_token(scope: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{scope}:{offset}".encode()).decode()


def offset(token: str | None, scope: str, invalid: ServiceError) -> int:
    """Where the page ``token`` names starts; ``invalid`` for a token this listing did not give."""
    if not token:
        return 0
    try:
        given_scope, given_offset = base64.urlsafe_b64decode(token.encode()).decode().rsplit(":", 1)
        if given_scope == scope:
            return int(given_offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ServiceError(invalid.code, invalid.message, invalid.status)  # a new one for each refusal
