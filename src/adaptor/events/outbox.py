"""The transactional outbox: events written in the same transaction as the change they tell of.

    from adaptor.events.outbox import OutboxWriter

    async with database.session() as session:
        ...                                   # the change itself
        OutboxWriter.add(
            session,
            "adaptor.marketplace.installed",  # the CloudEvents `type`
            integration_id,                   # `subject`; also the partition key by default
            tenant_id,
            {"template_id": ..., "integration_id": ...},  # `data`: no secrets, no payloads
        )

The row commits or rolls back with the change, so an event exists exactly when its change
does. The relay (`adaptor.events.relay`) publishes outbox rows, and execution logs (which are
the outbox of executions: no row of their own), as CloudEvents 1.0 JSON to `EVENTS_URL`, in id
order, keyed by `key` (default: `subject`, an integration id) so one integration's events stay
in order on the sink.

Events that belong to no transaction (a circuit opening on the request path) go through
`OutboxWriter.emit`, which writes the row in a background transaction of its own (retried
until written; `close` waits for every one).

Event types: `adaptor.execution.completed`, `adaptor.integration.created`,
`adaptor.integration.updated`, `adaptor.integration.deleted`, `adaptor.circuit.opened`,
`adaptor.circuit.closed`, `adaptor.marketplace.installed`, `adaptor.webhook.received`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.ids import sequential_ids
from adaptor.storage.database import Database
from adaptor.storage.tables import OutboxRow

log = structlog.get_logger("adaptor.events.outbox")

EXECUTION_COMPLETED = "adaptor.execution.completed"
INTEGRATION_CREATED = "adaptor.integration.created"
INTEGRATION_UPDATED = "adaptor.integration.updated"
INTEGRATION_DELETED = "adaptor.integration.deleted"
CIRCUIT_OPENED = "adaptor.circuit.opened"
CIRCUIT_CLOSED = "adaptor.circuit.closed"
MARKETPLACE_INSTALLED = "adaptor.marketplace.installed"
WEBHOOK_RECEIVED = "adaptor.webhook.received"


class OutboxWriter:
    """Writes outbox rows: `add` inside the caller's transaction, `emit` in one of its own."""

    def __init__(self, database: Database, *, max_backoff_s: float = 5.0) -> None:
        self.database = database
        self.max_backoff_s = max_backoff_s
        self._pending: set[asyncio.Task[None]] = set()

    @staticmethod
    def add(
        session: AsyncSession,
        type: str,
        subject: str,
        tenant_id: str | None,
        data: dict[str, Any],
        *,
        key: str | None = None,
    ) -> str:
        """Add one event to `session`'s transaction; returns its CloudEvents `id`."""
        row = outbox_row(type, subject, tenant_id, data, key=key)
        session.add(row)
        return row.event_id

    def emit(
        self,
        type: str,
        subject: str,
        tenant_id: str | None,
        data: dict[str, Any],
        *,
        key: str | None = None,
    ) -> None:
        """Write one event soon, off the caller's path (retried until the database takes it)."""
        row = outbox_row(type, subject, tenant_id, data, key=key)
        task = asyncio.create_task(self._write(row), name="outbox-emit")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Wait until every emitted event is written."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        await self.flush()

    async def _write(self, row: OutboxRow) -> None:
        delay = 0.05
        while True:
            try:
                async with self.database.session() as session:
                    session.add(
                        OutboxRow(**{c: getattr(row, c) for c in OutboxRow.__table__.c.keys()})
                    )
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "events.outbox_write_failed",
                    type=row.type,
                    error_type=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)


def outbox_row(
    type: str, subject: str, tenant_id: str | None, data: dict[str, Any], *, key: str | None = None
) -> OutboxRow:
    return OutboxRow(
        event_id=sequential_ids.next(),
        type=type,
        subject=subject,
        tenant_id=tenant_id,
        partition_key=key or subject,
        time=datetime.now(UTC),
        data=data,
    )
