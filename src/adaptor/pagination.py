"""Opaque list cursors: the sort key of the last item returned, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson

from adaptor.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(when: datetime, ident: str) -> str:
    raw = orjson.dumps([when.isoformat(), ident])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, ident = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(when), str(ident)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ValidationFailed.of(
            [(("query", "cursor"), "is not a cursor returned by this list")]
        ) from None
