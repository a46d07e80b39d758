"""Marketplace storage: published template versions, installs, ratings, usage.

Usage queries start from the item's installs (`ix_marketplace_installs_item`) and reach the
execution log through its `(tenant_id, integration_id, timestamp)` index, one range per
install, so they never scan the log table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Integer, Select, and_, case, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.storage.tables import (
    ExecutionLogRow,
    MarketplaceInstallRow,
    MarketplaceItemRow,
    MarketplaceRatingRow,
)


@dataclass(frozen=True, slots=True)
class Usage:
    executions: int
    successes: int

    @property
    def success_rate(self) -> float | None:
        return round(self.successes / self.executions, 4) if self.executions else None


def _logs_of(item_id: str, since: datetime) -> tuple[ColumnElement[bool], ...]:
    """The execution logs of the item's installs since `since`."""
    return (
        MarketplaceInstallRow.item_id == item_id,
        ExecutionLogRow.tenant_id == MarketplaceInstallRow.tenant_id,
        ExecutionLogRow.integration_id == MarketplaceInstallRow.integration_id,
        ExecutionLogRow.timestamp >= since,
    )


def usage_query(item_id: str, since: datetime) -> Select[int, int]:
    """(executions, successes) of the item's installs since `since`."""
    successes = func.coalesce(func.sum(case((ExecutionLogRow.success, 1), else_=0)), 0)
    return select(func.count(), successes).where(*_logs_of(item_id, since))


class MarketplaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # published versions --------------------------------------------------------------------

    async def latest_versions(self) -> Sequence[MarketplaceItemRow]:
        """The newest published version of every item."""
        newest = (
            select(MarketplaceItemRow.item_id, func.max(MarketplaceItemRow.version).label("v"))
            .group_by(MarketplaceItemRow.item_id)
            .subquery()
        )
        query = select(MarketplaceItemRow).join(
            newest,
            and_(
                MarketplaceItemRow.item_id == newest.c.item_id,
                MarketplaceItemRow.version == newest.c.v,
            ),
        )
        return (await self.session.execute(query)).scalars().all()

    async def version(self, item_id: str, version: int) -> MarketplaceItemRow | None:
        return await self.session.get(MarketplaceItemRow, (item_id, version))

    async def add_version(self, row: MarketplaceItemRow) -> None:
        self.session.add(row)
        await self.session.flush()

    # installs ------------------------------------------------------------------------------

    async def add_install(self, row: MarketplaceInstallRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def installs_of_tenant(
        self, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> Sequence[MarketplaceInstallRow]:
        query = select(MarketplaceInstallRow).where(MarketplaceInstallRow.tenant_id == tenant_id)
        if after is not None:
            when, install_id = after
            query = query.where(
                (MarketplaceInstallRow.created_at > when)
                | (
                    (MarketplaceInstallRow.created_at == when)
                    & (MarketplaceInstallRow.install_id > install_id)
                )
            )
        query = query.order_by(
            MarketplaceInstallRow.created_at, MarketplaceInstallRow.install_id
        ).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def install_for(
        self, tenant_id: str, integration_id: str
    ) -> MarketplaceInstallRow | None:
        query = select(MarketplaceInstallRow).where(
            MarketplaceInstallRow.tenant_id == tenant_id,
            MarketplaceInstallRow.integration_id == integration_id,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def install_counts(self) -> dict[str, int]:
        query = select(MarketplaceInstallRow.item_id, func.count()).group_by(
            MarketplaceInstallRow.item_id
        )
        rows = (await self.session.execute(query)).all()
        return {str(item_id): int(count) for item_id, count in rows}

    # ratings -------------------------------------------------------------------------------

    async def rate(self, item_id: str, tenant_id: str, rating: int, now: datetime) -> None:
        """Set the tenant's rating of the item, replacing an earlier one."""
        await self.session.execute(
            delete(MarketplaceRatingRow).where(
                MarketplaceRatingRow.item_id == item_id,
                MarketplaceRatingRow.tenant_id == tenant_id,
            )
        )
        self.session.add(
            MarketplaceRatingRow(
                item_id=item_id, tenant_id=tenant_id, rating=rating, updated_at=now
            )
        )
        await self.session.flush()

    async def ratings(self) -> dict[str, tuple[float, int]]:
        """(average, count) per rated item."""
        query = select(
            MarketplaceRatingRow.item_id,
            func.avg(MarketplaceRatingRow.rating),
            func.count(),
        ).group_by(MarketplaceRatingRow.item_id)
        return {
            item_id: (round(float(average), 2), count)
            for item_id, average, count in (await self.session.execute(query)).all()
        }

    # usage ---------------------------------------------------------------------------------

    async def installs_count(self, item_id: str) -> int:
        query = select(func.count()).where(MarketplaceInstallRow.item_id == item_id)
        return int((await self.session.execute(query)).scalar_one())

    async def active_installs(self, item_id: str, since: datetime) -> int:
        """Installs of the item with at least one execution since `since`."""
        executed = exists().where(
            ExecutionLogRow.tenant_id == MarketplaceInstallRow.tenant_id,
            ExecutionLogRow.integration_id == MarketplaceInstallRow.integration_id,
            ExecutionLogRow.timestamp >= since,
        )
        query = select(func.count()).where(MarketplaceInstallRow.item_id == item_id, executed)
        return int((await self.session.execute(query)).scalar_one())

    async def usage(self, item_id: str, since: datetime) -> Usage:
        executions, successes = (await self.session.execute(usage_query(item_id, since))).one()
        return Usage(int(executions), int(successes))

    async def median_latency_ms(self, item_id: str, since: datetime, executions: int) -> int | None:
        """The p50 of execution durations since `since` (the middle row by duration)."""
        if executions == 0:
            return None
        query = (
            select(ExecutionLogRow.duration_ms.cast(Integer))
            .where(*_logs_of(item_id, since))
            .order_by(ExecutionLogRow.duration_ms)
            .offset((executions - 1) // 2)
            .limit(1)
        )
        value = (await self.session.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)

    async def executions_since(self, since: datetime) -> dict[str, int]:
        """Executions per item since `since` (for popularity)."""
        query = (
            select(MarketplaceInstallRow.item_id, func.count())
            .where(
                ExecutionLogRow.tenant_id == MarketplaceInstallRow.tenant_id,
                ExecutionLogRow.integration_id == MarketplaceInstallRow.integration_id,
                ExecutionLogRow.timestamp >= since,
            )
            .group_by(MarketplaceInstallRow.item_id)
        )
        rows = (await self.session.execute(query)).all()
        return {str(item_id): int(count) for item_id, count in rows}
