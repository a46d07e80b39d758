"""The relay: publishes execution logs and outbox rows as CloudEvents, resuming where it stopped.

One replica publishes at a time: the holder of a lease in the shared store (Redis, or this
process's memory without it), renewed on every cycle and taken over by another replica once it
expires (`lease_ttl_s` after its holder died). The holder reads, in id order, the execution log
rows and outbox rows after its two positions, publishes them as one ordered batch, and only
then moves the positions forward (a row in `event_relay_positions` per source, moved only
forward, so a holder that lost its lease unawares cannot move them back). A crash between the
publish and the move publishes that batch again: at-least-once, deduplicated by `id`.

Both sources use time-ordered ids stamped when the row is written, and the relay reads only ids
older than `settle_s`, so a transaction that commits a moment after a later one is never passed
over. A sink that is down delays events and never executions: rows wait in the database, the
relay retries with backoff and `/health/ready` says `events: degraded`. What is older than the
retention period is not published any more, and outbox rows past it are pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.events.outbox import EXECUTION_COMPLETED
from adaptor.events.sinks import Event, EventSink
from adaptor.ids import time_ordered_floor
from adaptor.observability.metrics import Metrics
from adaptor.storage.database import Database
from adaptor.storage.kv import KeyValueStore, StoreError
from adaptor.storage.tables import ExecutionLogRow, OutboxRow, RelayPositionRow

log = structlog.get_logger("adaptor.events.relay")

EXECUTIONS = "executions"
OUTBOX = "outbox"

_LOG_COLUMNS = list(ExecutionLogRow.__table__.c)
_OUTBOX_COLUMNS = list(OutboxRow.__table__.c)
_LOG_NAMES = [column.name for column in _LOG_COLUMNS]


class EventRelay:
    """Owns the lease, the publishing loop and the pruning of published outbox rows."""

    def __init__(
        self,
        database: Database,
        lease_store: KeyValueStore,
        sink: EventSink,
        metrics: Metrics,
        *,
        source: str,
        lease_key: str = "adaptor:events:relay",
        lease_ttl_s: float = 10.0,
        batch_size: int = 500,
        interval_s: float = 0.5,
        settle_s: float = 2.0,
        retention_s: float = 7 * 86_400.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.database = database
        self.lease_store = lease_store
        self.sink = sink
        self.metrics = metrics
        self.source = source
        self.lease_key = lease_key
        self.lease_ttl_s = lease_ttl_s
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.settle_s = settle_s
        self.retention_s = retention_s
        self.max_backoff_s = max_backoff_s
        self.leader = False
        self.sink_ok = True
        self.published = 0
        self._token = secrets.token_hex(16).encode()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._connected = False
        self._last_prune = 0.0
        self._last_count = 0.0

    @property
    def state(self) -> str:
        """`ok`, or `degraded` while the sink refuses events (they wait in the database)."""
        return "ok" if self.sink_ok else "degraded"

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="event-relay")

    async def close(self, *, drain: bool = True) -> None:
        """Stop; with `drain`, first publish what was written until now (waiting `settle_s`
        so every committed row is readable), then give up the lease for the next replica."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            if drain and self.sink_ok and await self._hold_lease():
                await asyncio.sleep(self.settle_s)
                deadline = time.monotonic() + max(5.0, self.settle_s * 2)
                while await self.publish_once(settled_at=time.time()) and (
                    time.monotonic() < deadline
                ):
                    pass
        except Exception as exc:
            log.warning("events.drain_failed", error_type=type(exc).__name__)
        finally:
            await self._release_lease()
            await self.sink.close()

    async def _run(self) -> None:
        backoff = self.interval_s
        while not self._stop.is_set():
            busy = False
            try:
                if await self._hold_lease():
                    busy = await self.publish_once() >= self.batch_size
                    await self._maintain()
                backoff = self.interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.sink_ok = False
                self.metrics.event_publish_failures.inc()
                log.warning(
                    "events.publish_failed",
                    sink=self.sink.description,
                    error_type=type(exc).__name__,
                    error=str(exc)[:200],
                    retry_in_s=backoff,
                )
                backoff = min(backoff * 2, self.max_backoff_s)
                await self._pause(backoff)
                continue
            if not busy:
                await self._pause(self.interval_s)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # lease ---------------------------------------------------------------------------------

    async def _hold_lease(self) -> bool:
        """Take the lease, or renew it when this relay holds it; False while another does."""
        store, key, ttl = self.lease_store, self.lease_key, self.lease_ttl_s
        try:
            held = await store.compare_and_set(key, self._token, self._token, ttl)
            if not held:
                held = await store.set(key, self._token, ttl, only_if_absent=True)
        except StoreError:
            held = False
        if held != self.leader:
            log.info("events.relay_lease", held=held, sink=self.sink.description)
            self.leader = held
            self.metrics.event_relay_leader.set(1 if held else 0)
        return held

    async def _release_lease(self) -> None:
        with contextlib.suppress(StoreError):
            await self.lease_store.compare_and_set(self.lease_key, self._token, None)
        self.leader = False
        self.metrics.event_relay_leader.set(0)

    # publishing ----------------------------------------------------------------------------

    async def publish_once(self, *, settled_at: float | None = None) -> int:
        """Publish the next batch (ids older than `settled_at`, default now - `settle_s`);
        returns how many events went out."""
        if not self._connected:
            await self.sink.start()
            self._connected = True
        now = time.time()
        upper = time_ordered_floor(settled_at if settled_at is not None else now - self.settle_s)
        oldest = time_ordered_floor(now - self.retention_s)
        async with self.database.session() as session:
            positions = await read_positions(session)
            after_logs = max(positions.get(EXECUTIONS, ""), oldest)
            after_outbox = max(positions.get(OUTBOX, ""), oldest)
            logs = (
                await session.execute(
                    select(*_LOG_COLUMNS)
                    .where(ExecutionLogRow.log_id > after_logs, ExecutionLogRow.log_id < upper)
                    .order_by(ExecutionLogRow.log_id)
                    .limit(self.batch_size)
                )
            ).all()
            outbox = (
                await session.execute(
                    select(*_OUTBOX_COLUMNS)
                    .where(OutboxRow.event_id > after_outbox, OutboxRow.event_id < upper)
                    .order_by(OutboxRow.event_id)
                    .limit(self.batch_size)
                )
            ).all()
        # A full page may stop before rows of the other source: publish up to the lower end.
        cut = upper
        if len(logs) == self.batch_size:
            cut = min(cut, logs[-1].log_id)
        if len(outbox) == self.batch_size:
            cut = min(cut, outbox[-1].event_id)
        events = [(row.log_id, self._execution_event(row)) for row in logs if row.log_id <= cut] + [
            (row.event_id, self._outbox_event(row)) for row in outbox if row.event_id <= cut
        ]
        if not events:
            self.sink_ok = True
            self.metrics.event_lag.set(0)
            return 0
        events.sort(key=lambda pair: pair[0])
        oldest_time = min([row.timestamp for row in logs[:1]] + [row.time for row in outbox[:1]])
        self.metrics.event_lag.set(max(0.0, now - oldest_time.timestamp()))
        await self.sink.publish([event for _, event in events])
        self.sink_ok = True
        self.published += len(events)
        self.metrics.events_published.inc(len(events))
        moved = {
            EXECUTIONS: max((row.log_id for row in logs if row.log_id <= cut), default=None),
            OUTBOX: max((row.event_id for row in outbox if row.event_id <= cut), default=None),
        }
        async with self.database.session() as session:
            for name, position in moved.items():
                if position is not None:
                    await session.execute(
                        update(RelayPositionRow)
                        .where(
                            RelayPositionRow.source == name, RelayPositionRow.position < position
                        )
                        .values(position=position, updated_at=datetime.now(UTC))
                    )
        return len(events)

    async def _maintain(self) -> None:
        """Now and then: count what waits (a metric), prune the outbox past retention."""
        now = time.monotonic()
        if now - self._last_count >= 15.0:
            self._last_count = now
            await self._count_pending()
        if now - self._last_prune >= 300.0:
            self._last_prune = now
            await self.prune()

    async def _count_pending(self) -> None:
        oldest = time_ordered_floor(time.time() - self.retention_s)
        async with self.database.session() as session:
            positions = await read_positions(session)
            logs = await session.scalar(
                select(func.count())
                .select_from(ExecutionLogRow)
                .where(ExecutionLogRow.log_id > max(positions.get(EXECUTIONS, ""), oldest))
            )
            outbox = await session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.event_id > max(positions.get(OUTBOX, ""), oldest))
            )
        self.metrics.events_pending.set((logs or 0) + (outbox or 0))

    async def prune(self) -> int:
        """Delete outbox rows older than the retention period; how many."""
        oldest = time_ordered_floor(time.time() - self.retention_s)
        async with self.database.session() as session:
            result = await session.execute(delete(OutboxRow).where(OutboxRow.event_id < oldest))
        pruned = int(getattr(result, "rowcount", 0) or 0)
        if pruned:
            log.info("events.outbox_pruned", rows=pruned)
        return pruned

    # CloudEvents ---------------------------------------------------------------------------

    def _execution_event(self, row: Any) -> Event:
        data = dict(zip(_LOG_NAMES, row, strict=True))
        return Event(
            row.log_id,
            row.integration_id,
            self._document(
                row.log_id,
                EXECUTION_COMPLETED,
                row.timestamp,
                row.integration_id,
                row.tenant_id,
                row.integration_id,
                data,
            ),
        )

    def _outbox_event(self, row: Any) -> Event:
        return Event(
            row.event_id,
            row.partition_key,
            self._document(
                row.event_id,
                row.type,
                row.time,
                row.subject,
                row.tenant_id,
                row.partition_key,
                row.data,
            ),
        )

    def _document(
        self,
        event_id: str,
        type: str,
        when: datetime,
        subject: str,
        tenant_id: str | None,
        key: str,
        data: dict[str, Any],
    ) -> bytes:
        document = {
            "specversion": "1.0",
            "id": event_id,
            "source": self.source,
            "type": type,
            "time": _rfc3339(when),
            "subject": subject,
            "partitionkey": key,
            "datacontenttype": "application/json",
            "data": data,
        }
        if tenant_id is not None:
            document["tenantid"] = tenant_id
        return orjson.dumps(document, option=orjson.OPT_UTC_Z)


async def read_positions(session: AsyncSession) -> dict[str, str]:
    """{source: the id of the last row published from it}."""
    rows = await session.execute(select(RelayPositionRow.source, RelayPositionRow.position))
    return dict(rows.all())


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decode(body: bytes) -> dict[str, Any]:
    """A published event's JSON (consumers' side; used by the tests and the docs' example)."""
    value: dict[str, Any] = orjson.loads(body)
    return value


__all__: Sequence[str] = ["EXECUTIONS", "OUTBOX", "EventRelay", "decode", "read_positions"]
