"""Circuit changes: an outbox event when a circuit opens and when it closes, and the gauge."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from adaptor.services import Services
from adaptor.storage.tables import OutboxRow
from tests.conftest import Tenant
from tests.events.conftest import eventually
from tests.executions.test_execute import create, execute, integration
from tests.executions.upstream import Reply, Upstream


async def circuit_events(services: Services, integration_id: str) -> list[OutboxRow]:
    async with services.database.session() as session:
        rows = await session.execute(
            select(OutboxRow)
            .where(OutboxRow.subject == integration_id, OutboxRow.type.like("adaptor.circuit.%"))
            .order_by(OutboxRow.event_id)
        )
        return list(rows.scalars().all())


def gauge(services: Services, integration_id: str) -> float | None:
    return services.metrics.registry.get_sample_value(
        "adaptor_circuit_open", {"integration_id": integration_id}
    )


async def test_opening_and_closing_a_circuit_are_events(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, services: Services
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    integration_id = await create(
        app_client,
        tenant,
        integration(upstream, circuit_breaker={"failure_threshold": 1, "recovery_timeout_s": 0.3}),
    )
    await execute(app_client, tenant, integration_id, "list_customers")
    opened = await eventually(lambda: circuit_events(services, integration_id))
    assert [row.type for row in opened] == ["adaptor.circuit.opened"]
    assert opened[0].tenant_id == tenant.tenant_id
    assert opened[0].data == {"integration_id": integration_id, "state": "open"}
    assert gauge(services, integration_id) == 1

    upstream.reply("GET", "/v1/customers", Reply(200, {"data": []}))
    await asyncio.sleep(0.35)
    probe = await execute(app_client, tenant, integration_id, "list_customers")
    assert probe.json()["success"] is True

    async def both() -> list[OutboxRow]:
        rows = await circuit_events(services, integration_id)
        return rows if len(rows) == 2 else []

    rows = await eventually(both)
    assert [row.type for row in rows] == ["adaptor.circuit.opened", "adaptor.circuit.closed"]
    assert gauge(services, integration_id) == 0
