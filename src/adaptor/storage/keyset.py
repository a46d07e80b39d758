"""Keyset pages: a list ordered by (timestamp, id) read from just after the last item shown.

Every list route pages this way (`adaptor.pagination` turns the position into a cursor), so a
page costs one index range scan however deep it is, and rows added meanwhile never shift it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

Query = TypeVar("Query", bound=Select[Any])


def keyset_page(
    query: Query,
    when: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    position: tuple[datetime, str] | None,
    limit: int,
    *,
    newest_first: bool = False,
) -> Query:
    """`query` ordered by (`when`, `ident`), ascending or with `newest_first` descending, from
    just after `position` (the previous page's last item; None: from the start), `limit` rows."""
    if position is not None:
        moment, last = position
        if newest_first:
            query = query.where((when < moment) | ((when == moment) & (ident < last)))
        else:
            query = query.where((when > moment) | ((when == moment) & (ident > last)))
    if newest_first:
        return query.order_by(when.desc(), ident.desc()).limit(limit)
    return query.order_by(when, ident).limit(limit)
