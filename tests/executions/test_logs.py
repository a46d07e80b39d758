"""The execution log writer: batches, back-pressure, retries, and nothing lost at shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from adaptor.executions.logs import ExecutionLogWriter, LogRecord, _statement_sizes
from adaptor.executions.repository import ExecutionLogRepository
from adaptor.storage.database import Database
from adaptor.storage.tables import ExecutionLogRow
from tests.conftest import Backend, make_settings


@pytest.fixture
async def database(tmp_path: Path, backend: Backend) -> AsyncIterator[Database]:
    db = Database(make_settings(tmp_path, backend).database_url)
    await db.migrate()
    yield db
    await db.close()


def entry(tenant: str, integration: str, offset_ms: int = 0, **fields: object) -> LogRecord:
    values: dict[str, object] = {
        "log_id": str(uuid.uuid4()),
        "tenant_id": tenant,
        "integration_id": integration,
        "endpoint_name": "list_customers",
        "request_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC) + timedelta(milliseconds=offset_ms),
        "duration_ms": 12,
        "success": True,
        "status_code": 200,
        "request_size_bytes": 10,
        "response_size_bytes": 2048,
        "error_code": None,
        "error_message": None,
        "retry_count": 0,
        "cached": False,
    }
    values.update(fields)
    return LogRecord(**values)  # type: ignore[arg-type]


async def count(database: Database, integration: str) -> int:
    async with database.session() as session:
        result = await session.execute(
            select(func.count())
            .select_from(ExecutionLogRow)
            .where(ExecutionLogRow.integration_id == integration)
        )
        return int(result.scalar_one())


async def test_close_writes_everything_queued(database: Database) -> None:
    integration = str(uuid.uuid4())
    writer = ExecutionLogWriter(database, batch_size=50, flush_interval_s=10)
    writer.start()
    for i in range(230):
        await writer.record(entry("t1", integration, i))
    await writer.close()
    assert await count(database, integration) == 230


async def test_full_queue_makes_record_wait_instead_of_dropping(database: Database) -> None:
    integration = str(uuid.uuid4())
    writer = ExecutionLogWriter(database, capacity=5, batch_size=5, flush_interval_s=0)
    writer.start()
    await asyncio.gather(*(writer.record(entry("t1", integration, i)) for i in range(40)))
    await writer.close()
    assert await count(database, integration) == 40


async def test_failed_write_is_retried_not_discarded(database: Database) -> None:
    integration = str(uuid.uuid4())
    writer = ExecutionLogWriter(database, batch_size=10, flush_interval_s=0)
    real_write = writer._write
    failures = {"left": 2}

    async def flaky(batch: list[LogRecord]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database blip")
        await real_write(batch)

    writer._write = flaky  # type: ignore[method-assign]
    writer.start()
    for i in range(7):
        await writer.record(entry("t1", integration, i))
    await writer.close()
    assert writer.failed_attempts == 2
    assert await count(database, integration) == 7


async def test_a_lost_database_connection_costs_a_retry_not_a_log(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL holds the writer's COPY connection between batches")
    integration = str(uuid.uuid4())
    writer = ExecutionLogWriter(database, batch_size=10, flush_interval_s=0)
    writer.start()
    await writer.record(entry("t1", integration, 0))
    await writer.flush()
    held = writer._copy_connection
    assert held is not None
    pid = (await held.get_raw_connection()).driver_connection.get_server_pid()
    # The server drops the writer's connection between two batches.
    async with database.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    for i in range(1, 6):
        await writer.record(entry("t1", integration, i))
    await writer.close()
    assert writer.failed_attempts >= 1
    assert await count(database, integration) == 6


async def test_logs_read_back_newest_first_for_their_tenant(database: Database) -> None:
    integration = str(uuid.uuid4())
    writer = ExecutionLogWriter(database, flush_interval_s=0)
    writer.start()
    for i in range(3):
        await writer.record(entry("t1", integration, i * 10, duration_ms=i))
    await writer.record(entry("t2", integration, 50))
    await writer.close()
    async with database.session() as session:
        rows = await ExecutionLogRepository(session).newest_first(
            "t1", integration, before=None, limit=10
        )
    assert [row.duration_ms for row in rows] == [2, 1, 0]


async def test_written_rows_read_back_as_the_orm_writes_them(database: Database) -> None:
    """The writer's rows (COPY, or one executemany on SQLite) and the ORM's are stored alike:
    same values, aware UTC timestamps, and the same order by time."""
    integration = str(uuid.uuid4())
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    writer = ExecutionLogWriter(database, flush_interval_s=0)
    writer.start()
    written = entry(
        "t1",
        integration,
        timestamp=moment,
        success=False,
        error_code="timeout",
        error_message="slow",
        cached=True,
    )
    await writer.record(written)
    await writer.close()
    orm = entry("t1", integration, timestamp=moment + timedelta(microseconds=1))
    async with database.session() as session:
        session.add(ExecutionLogRow(**orm._asdict()))
        await session.commit()
    async with database.session() as session:
        rows = await ExecutionLogRepository(session).newest_first(
            "t1", integration, before=None, limit=10
        )
    assert rows[0].log_id == orm.log_id
    stored = rows[1]
    assert stored.timestamp == moment
    assert stored.timestamp.utcoffset() == timedelta(0)
    # The writer stamps the id as it writes (time-ordered in commit order, for the relay).
    assert stored.log_id != written.log_id
    assert {column: getattr(stored, column) for column in written._fields} == {
        **written._asdict(),
        "log_id": stored.log_id,
    }


def test_the_stored_record_has_exactly_the_fields_the_api_returns() -> None:
    from adaptor.domain import ExecutionLog

    assert LogRecord._fields == tuple(ExecutionLog.model_fields)


async def test_a_large_batch_is_written_whole(database: Database) -> None:
    """More rows than one INSERT statement carries on SQLite, in one batch."""
    integration = str(uuid.uuid4())
    writer = ExecutionLogWriter(database, batch_size=2000, flush_interval_s=10)
    for i in range(1234):
        await writer.record(entry("t1", integration, i))
    writer.start()
    await writer.close()
    assert writer.written == 1234
    assert await count(database, integration) == 1234


@given(rows=st.integers(min_value=0, max_value=5000))
def test_sqlite_batches_use_a_few_statement_shapes_only(rows: int) -> None:
    """The driver caches every distinct statement it prepares (a 256-row INSERT is large), so
    batches of any length are cut into the same few sizes."""
    sizes = _statement_sizes(rows)
    assert sum(sizes) == rows
    assert set(sizes) <= {256, 32, 4, 1}
    assert sizes == sorted(sizes, reverse=True)
