"""Execution logs written off the request path, in batches, without ever dropping one.

Executions put their log on a bounded in-process queue and go on; a background task drains it in
batches (COPY of plain tuples on PostgreSQL, multi-row INSERTs on SQLite). When the queue is
full, `record` waits for room instead of discarding. A failed write is retried with backoff,
and `close` drains everything that is queued, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from datetime import UTC, datetime
from typing import Any, NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from adaptor.ids import sequential_ids
from adaptor.storage.database import Database

log = structlog.get_logger("adaptor.executions.logs")


class LogRecord(NamedTuple):
    """One execution log as it is stored (the `execution_logs` columns, in order).

    A plain tuple: it is built on every execution, and goes to COPY as it is. The writer
    stamps `log_id` afresh as it writes the row (see `ExecutionLogWriter._write`).
    """

    log_id: str
    tenant_id: str
    integration_id: str
    endpoint_name: str
    request_id: str
    timestamp: datetime
    duration_ms: int
    success: bool
    status_code: int | None
    error_code: str | None
    error_message: str | None
    request_size_bytes: int
    response_size_bytes: int
    retry_count: int
    cached: bool

    def stored(self) -> LogRecord:
        """The record with the column limits applied and an aware timestamp."""
        timestamp = self.timestamp if self.timestamp.tzinfo else self.timestamp.replace(tzinfo=UTC)
        request_id = self.request_id[:64]
        message = self.error_message[:2000] if self.error_message else None
        if (
            timestamp is self.timestamp
            and request_id is self.request_id
            and message is self.error_message
        ):
            return self
        return self._replace(timestamp=timestamp, request_id=request_id, error_message=message)


COLUMNS = LogRecord._fields


class ExecutionLogWriter:
    """Owns the queue and the task that drains it."""

    def __init__(
        self,
        database: Database,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.database = database
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self._queue: asyncio.Queue[LogRecord] = asyncio.Queue(maxsize=capacity)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._copy_connection: AsyncConnection | None = None
        self.written = 0
        self.failed_attempts = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="execution-log-writer")

    async def record(self, entry: LogRecord) -> None:
        """Queue a log; waits only when the queue is full (back-pressure, never loss)."""
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            await self._queue.put(entry)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        await self._queue.join()

    async def close(self) -> None:
        """Write everything queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            self.start()
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._copy_connection is not None:
            connection, self._copy_connection = self._copy_connection, None
            await connection.close()

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            if not self._closing and self._queue.qsize() < self.batch_size:
                # Gather a batch, but stop waiting at once when shutdown begins.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_until_done(batch)
            for _ in batch:
                self._queue.task_done()

    async def _write_until_done(self, batch: list[LogRecord]) -> None:
        delay = 0.05
        while True:
            try:
                await self._write(batch)
                self.written += len(batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed_attempts += 1
                log.warning(
                    "executions.log_write_failed",
                    batch=len(batch),
                    error_type=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    async def _write(self, batch: list[LogRecord]) -> None:
        # Ids stamped now, in queue order: they increase with the order rows commit, which
        # is what the event relay reads them in (see adaptor.events.relay).
        next_id = sequential_ids.next
        if not self.database.is_sqlite:
            # COPY takes plain tuples: the stored record with its id in front, built in one
            # step (a NamedTuple `_replace` per row costs twice as much as the COPY itself).
            rows = [(next_id(), *entry.stored()[1:]) for entry in batch]
            await self._copy(rows)
            return
        # Multi-row INSERTs on the driver: SQLAlchemy's per-row parameter processing would
        # run on the event loop's thread, and one statement per row would hand the GIL back
        # and forth with the driver's thread for every row.
        values = [value for entry in batch for value in _sqlite_row(entry.stored(), next_id())]
        width = len(COLUMNS)
        async with self.database.engine.begin() as conn:
            raw = await conn.get_raw_connection()
            sqlite: Any = raw.driver_connection
            start = 0
            for size in _statement_sizes(len(batch)):
                await sqlite.execute(
                    _sqlite_insert(size), values[start * width : (start + size) * width]
                )
                start += size

    async def _copy(self, rows: list[tuple[Any, ...]]) -> None:
        """COPY `rows` on the writer's own connection, held from batch to batch: a pool
        checkout per batch costs a liveness ping and a reset round trip, more than the COPY.
        A connection that fails is discarded; the retry opens a new one."""
        connection = self._copy_connection
        if connection is None:
            connection = self._copy_connection = await self.database.engine.connect()
        try:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.copy_records_to_table("execution_logs", records=rows, columns=COLUMNS)
        except BaseException:
            self._copy_connection = None
            with contextlib.suppress(Exception):
                await connection.invalidate()
                await connection.close()
            raise


_SQLITE_STATEMENT_ROWS = (256, 32, 4, 1)
"""Rows per INSERT statement. The driver keeps every prepared statement it has seen, and one
for 256 rows is large, so a batch is cut into these few sizes only (at most 3,840 parameters
each, well under SQLite's limit of 32,766) rather than one statement of its own length."""


def _statement_sizes(rows: int) -> list[int]:
    """`rows` as a sum of `_SQLITE_STATEMENT_ROWS`, largest first."""
    sizes: list[int] = []
    for size in _SQLITE_STATEMENT_ROWS:
        count, rows = divmod(rows, size)
        sizes += [size] * count
    return sizes


@functools.lru_cache(maxsize=len(_SQLITE_STATEMENT_ROWS))
def _sqlite_insert(rows: int) -> str:
    """`INSERT INTO execution_logs (...) VALUES (?, ...), ...` for `rows` rows."""
    row = f"({', '.join('?' * len(COLUMNS))})"
    return f"INSERT INTO execution_logs ({', '.join(COLUMNS)}) VALUES {', '.join([row] * rows)}"


_TIMESTAMP = COLUMNS.index("timestamp")


def _sqlite_row(entry: LogRecord, log_id: str) -> list[Any]:
    """The record as SQLAlchemy stores it in SQLite, with `log_id`: the timestamp as naive
    UTC text."""
    row: list[Any] = list(entry)
    row[0] = log_id
    moment = entry.timestamp.astimezone(UTC).replace(tzinfo=None)
    row[_TIMESTAMP] = moment.isoformat(" ", "microseconds")
    return row
