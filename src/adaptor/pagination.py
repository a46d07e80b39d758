"""Opaque list cursors: the sort key of the last item returned.

A cursor is `<microseconds since the epoch>.<hex of the id>`. Every string of that form is a
position in the list's order, so `CURSOR_PATTERN` (declared on every `cursor` parameter) says
exactly what is accepted: a cursor that matches it returns the items after that position, and
anything else is a 422 naming `query.cursor`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adaptor.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

CURSOR_PATTERN = r"^[0-9]{1,18}\.(?:[0-9a-f]{2}){0,512}$"
CURSOR_DESCRIPTION = "Opaque: the `next_cursor` of the previous page."

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def encode_cursor(when: datetime, ident: str) -> str:
    micros = (when - _EPOCH) // timedelta(microseconds=1)
    return f"{max(micros, 0)}.{ident.encode().hex()}"


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None or cursor == "":
        return None
    micros, dot, ident = cursor.partition(".")
    try:
        if not dot or not micros.isdigit() or len(micros) > 18:
            raise ValueError(cursor)
        raw = bytes.fromhex(ident)
    except ValueError:
        raise ValidationFailed.of(
            [(("query", "cursor"), "is not a cursor returned by this list")]
        ) from None
    try:
        when = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        when = _LATEST
    return when, raw.decode("utf-8", "replace")
