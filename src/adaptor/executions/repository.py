"""Execution log reads: newest first, tenant-scoped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.storage.keyset import keyset_page
from adaptor.storage.tables import ExecutionLogRow


class ExecutionLogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest_first(
        self,
        tenant_id: str,
        integration_id: str,
        *,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[ExecutionLogRow]:
        query = select(ExecutionLogRow).where(
            ExecutionLogRow.tenant_id == tenant_id,
            ExecutionLogRow.integration_id == integration_id,
        )
        query = keyset_page(
            query,
            ExecutionLogRow.timestamp,
            ExecutionLogRow.log_id,
            before,
            limit,
            newest_first=True,
        )
        return (await self.session.execute(query)).scalars().all()
