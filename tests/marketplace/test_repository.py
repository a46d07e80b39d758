"""Usage analytics read the execution log through its index, never by scanning it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from adaptor.marketplace.repository import usage_query
from adaptor.services import Services


@pytest.mark.parametrize("backend", ["real"], indirect=True)
async def test_the_usage_query_reaches_execution_logs_by_index(services: Services) -> None:
    since = datetime.now(UTC) - timedelta(days=30)
    statement = usage_query("stripe", since).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    async with services.database.session() as session:
        # With sequential scans priced out, the plan shows whether an index can serve the
        # query at all (on a near-empty table the planner would scan either way).
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        rows = (await session.execute(text(f"EXPLAIN {statement}"))).scalars().all()
    plan = "\n".join(rows)
    assert "Seq Scan on execution_logs" not in plan, plan
    assert "ix_execution_logs_integration_time" in plan, plan
    assert "ix_marketplace_installs_item" in plan, plan
