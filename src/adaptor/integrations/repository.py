"""Integration rows. Every query filters by tenant: isolation lives here, not only in routes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.storage.keyset import keyset_page
from adaptor.storage.tables import IntegrationRow


class IntegrationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: IntegrationRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def exists_anywhere(self, integration_id: str) -> bool:
        result = await self.session.execute(
            select(IntegrationRow.integration_id).where(
                IntegrationRow.integration_id == integration_id
            )
        )
        return result.first() is not None

    async def get_anywhere(self, integration_id: str) -> IntegrationRow | None:
        """The row whatever its tenant: only for routes that identify the integration
        otherwise (an inbound webhook's signature)."""
        result = await self.session.execute(
            select(IntegrationRow).where(IntegrationRow.integration_id == integration_id)
        )
        return result.scalar_one_or_none()

    async def get(self, tenant_id: str, integration_id: str) -> IntegrationRow | None:
        result = await self.session.execute(
            select(IntegrationRow).where(
                IntegrationRow.tenant_id == tenant_id,
                IntegrationRow.integration_id == integration_id,
            )
        )
        return result.scalar_one_or_none()

    async def page(
        self,
        tenant_id: str,
        *,
        filters: dict[str, Any],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[IntegrationRow]:
        query = select(IntegrationRow).where(IntegrationRow.tenant_id == tenant_id)
        for column in ("type", "category", "enabled"):
            if filters.get(column) is not None:
                query = query.where(getattr(IntegrationRow, column) == filters[column])
        query = keyset_page(
            query, IntegrationRow.created_at, IntegrationRow.integration_id, after, limit
        )
        return (await self.session.execute(query)).scalars().all()

    async def update_if_version(
        self, tenant_id: str, integration_id: str, expected_version: int, values: dict[str, Any]
    ) -> bool:
        """Compare-and-set on the version, so two writers cannot both win."""
        result = await self.session.execute(
            update(IntegrationRow)
            .where(
                IntegrationRow.tenant_id == tenant_id,
                IntegrationRow.integration_id == integration_id,
                IntegrationRow.version == expected_version,
            )
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))

    async def delete_if_version(
        self, tenant_id: str, integration_id: str, expected_version: int
    ) -> bool:
        result = await self.session.execute(
            delete(IntegrationRow).where(
                IntegrationRow.tenant_id == tenant_id,
                IntegrationRow.integration_id == integration_id,
                IntegrationRow.version == expected_version,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def all_with_secrets(self) -> Sequence[IntegrationRow]:
        """Every row holding secrets, across tenants (key rotation only)."""
        result = await self.session.execute(
            select(IntegrationRow).where(IntegrationRow.secrets.is_not(None))
        )
        return result.scalars().all()

    async def secret_tokens(self) -> Sequence[str]:
        """Every stored secrets token, across tenants (the start-up encryption check)."""
        result = await self.session.execute(
            select(IntegrationRow.secrets).where(IntegrationRow.secrets.is_not(None))
        )
        return [token for token in result.scalars() if token]
