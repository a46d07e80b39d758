"""API key rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.storage.keyset import keyset_page
from adaptor.storage.tables import ApiKeyRow


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: ApiKeyRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def by_hash(self, key_hash: str) -> ApiKeyRow | None:
        result = await self.session.execute(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))
        return result.scalar_one_or_none()

    async def get(self, key_id: str) -> ApiKeyRow | None:
        return await self.session.get(ApiKeyRow, key_id)

    async def any_admin(self) -> bool:
        result = await self.session.execute(
            select(ApiKeyRow.key_id)
            .where(ApiKeyRow.role == "admin", ApiKeyRow.revoked_at.is_(None))
            .limit(1)
        )
        return result.first() is not None

    async def active_admins(self, *, name: str) -> list[ApiKeyRow]:
        result = await self.session.execute(
            select(ApiKeyRow).where(
                ApiKeyRow.role == "admin", ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None)
            )
        )
        return list(result.scalars())

    async def page(
        self, *, tenant_id: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[ApiKeyRow]:
        query = select(ApiKeyRow)
        if tenant_id is not None:
            query = query.where(ApiKeyRow.tenant_id == tenant_id)
        query = keyset_page(query, ApiKeyRow.created_at, ApiKeyRow.key_id, after, limit)
        return list((await self.session.execute(query)).scalars())

    async def revoke(self, key_id: str, when: datetime, *, rename: str | None = None) -> bool:
        values: dict[str, object] = {"revoked_at": when}
        if rename is not None:
            values["name"] = rename
        result = await self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))

    async def reinstate(self, key_id: str, name: str) -> None:
        await self.session.execute(
            update(ApiKeyRow).where(ApiKeyRow.key_id == key_id).values(revoked_at=None, name=name)
        )
