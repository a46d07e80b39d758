"""Webhook event rows. Storing is insert-once: the unique (integration, event id) constraint
decides, in the database, which of several concurrent deliveries of one event is kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.storage.keyset import keyset_page
from adaptor.storage.tables import WebhookEventRow


class WebhookEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_once(self, values: dict[str, Any]) -> bool:
        """Insert the event unless one with its (integration_id, event_id) exists; True when
        this call stored it. Atomic on both databases (`INSERT ... ON CONFLICT DO NOTHING`)."""
        insert = (
            sqlite_insert if self.session.get_bind().dialect.name == "sqlite" else postgresql_insert
        )
        statement = (
            insert(WebhookEventRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["integration_id", "event_id"])
            .returning(WebhookEventRow.id)
        )
        result = await self.session.execute(statement)
        return result.first() is not None

    async def newest_first(
        self,
        tenant_id: str,
        integration_id: str,
        *,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[WebhookEventRow]:
        query = select(WebhookEventRow).where(
            WebhookEventRow.tenant_id == tenant_id,
            WebhookEventRow.integration_id == integration_id,
        )
        query = keyset_page(
            query, WebhookEventRow.received_at, WebhookEventRow.id, before, limit, newest_first=True
        )
        return (await self.session.execute(query)).scalars().all()
