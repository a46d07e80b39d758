"""MCP across replicas: stateless Streamable HTTP, so one client's requests may land on any
replica, and a change made through one replica reaches a listen stream open on another."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ToolsListChanged

from tests.conftest import Tenant
from tests.executions.test_execute import CUSTOMERS, integration
from tests.executions.upstream import Reply, Upstream
from tests.replicas.conftest import Measure, Replica
from tests.replicas.test_replicas import create, new_tenant

pytestmark = pytest.mark.replicas


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each HTTP request to the next replica in turn, recording which one answered."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.ports = itertools.cycle([httpx2.URL(r.url).port for r in replicas])
        self.inner = httpx2.AsyncHTTPTransport()
        self.landed: list[int | None] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self.ports)
        request.url = request.url.copy_with(port=port)
        self.landed.append(port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def mcp_client(
    url: str, tenant: Tenant, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(
        headers=tenant.headers, transport=transport, timeout=httpx2.Timeout(30)
    ) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            yield client


async def test_one_clients_requests_land_on_every_replica(
    replicas: list[Replica],
    clients: list[httpx.AsyncClient],
    upstream: Upstream,
    measure: Measure,
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    tenant = await new_tenant(clients[0])
    await create(clients[0], tenant, integration(upstream))
    spread = RoundRobin(replicas)
    async with mcp_client(replicas[0].url, tenant, spread) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "payments__list_customers" in tools
        for _ in range(len(replicas)):
            result = await client.call_tool("payments__list_customers", {"variables": {}})
            assert result.is_error is False, result.content
            assert result.structured_content == {
                "items": [
                    {"id": c["id"], "email": c["email"], "balance": c["balance"]}
                    for c in CUSTOMERS["data"]
                ]
            }
    assert set(spread.landed) == {httpx2.URL(r.url).port for r in replicas}
    assert upstream.count("/v1/customers") == len(replicas)
    measure("mcp_requests", len(spread.landed))


async def test_a_change_through_one_replica_notifies_a_stream_on_another(
    replicas: list[Replica], clients: list[httpx.AsyncClient], upstream: Upstream
) -> None:
    tenant = await new_tenant(clients[0])
    integration_id = await create(clients[0], tenant, integration(upstream))
    async with (
        mcp_client(replicas[1].url, tenant) as listener,
        listener.listen(tools_list_changed=True) as events,
        mcp_client(replicas[2].url, tenant) as other,
    ):
        assert len((await other.list_tools()).tools) == 3  # replica 2 caches the list
        response = await clients[0].patch(
            f"/api/v2/integrations/{integration_id}",
            json={"enabled": False},
            headers=tenant.headers,
        )
        assert response.status_code == 200
        event = await asyncio.wait_for(anext(aiter(events)), timeout=10)
        assert isinstance(event, ToolsListChanged)
        assert (await listener.list_tools()).tools == []
        assert (await other.list_tools()).tools == []  # dropped by the same notice
