"""OAuth token rows. Every query filters by tenant; saves are compare-and-set on `version`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.storage.tables import OAuthTokenRow


class OAuthTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, integration_id: str) -> OAuthTokenRow | None:
        result = await self.session.execute(
            select(OAuthTokenRow).where(
                OAuthTokenRow.tenant_id == tenant_id,
                OAuthTokenRow.integration_id == integration_id,
            )
        )
        return result.scalar_one_or_none()

    async def save_if_version(
        self,
        tenant_id: str,
        integration_id: str,
        expected_version: int,
        *,
        status: str,
        tokens: str,
    ) -> bool:
        """Write version `expected_version + 1` if the stored version is `expected_version`
        (0: only if no row exists yet). False when another writer got there first."""
        now = datetime.now(UTC)
        if expected_version == 0:
            statement = insert(OAuthTokenRow).values(
                integration_id=integration_id,
                tenant_id=tenant_id,
                version=1,
                status=status,
                tokens=tokens,
                updated_at=now,
            )
            try:
                async with self.session.begin_nested():
                    await self.session.execute(statement)
            except IntegrityError:
                return False
            return True
        result = await self.session.execute(
            update(OAuthTokenRow)
            .where(
                OAuthTokenRow.tenant_id == tenant_id,
                OAuthTokenRow.integration_id == integration_id,
                OAuthTokenRow.version == expected_version,
            )
            .values(version=expected_version + 1, status=status, tokens=tokens, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def delete(self, tenant_id: str, integration_id: str) -> None:
        await self.session.execute(
            delete(OAuthTokenRow).where(
                OAuthTokenRow.tenant_id == tenant_id,
                OAuthTokenRow.integration_id == integration_id,
            )
        )

    async def all(self) -> list[OAuthTokenRow]:
        """Every row across tenants (key rotation only)."""
        return list((await self.session.execute(select(OAuthTokenRow))).scalars().all())
