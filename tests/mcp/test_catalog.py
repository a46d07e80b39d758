"""The tool catalog loads a tenant's list once however many calls find it missing or stale."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from adaptor.services import Services
from tests.conftest import Tenant
from tests.mcp.test_mcp import create, payments


async def test_concurrent_calls_on_a_stale_list_share_one_load(
    app_client: httpx.AsyncClient, services: Services, tenant: Tenant
) -> None:
    await create(app_client, tenant, payments("http://127.0.0.1:9"))
    catalog = services.mcp.catalog
    integrations = catalog.integrations
    reads: list[str] = []
    real_page = integrations.page

    async def counted_page(tenant_id: str, **kwargs: Any) -> Any:
        reads.append(tenant_id)
        return await real_page(tenant_id, **kwargs)

    integrations.page = counted_page  # type: ignore[method-assign]
    try:
        first = await catalog.tools(tenant.tenant_id)
        assert reads == [tenant.tenant_id]
        catalog.ttl_s = 0.0  # every cached list is stale from now on
        lists = await asyncio.gather(*(catalog.tools(tenant.tenant_id) for _ in range(32)))
    finally:
        integrations.page = real_page  # type: ignore[method-assign]
    assert reads == [tenant.tenant_id] * 2  # the first load, then one for all 32 calls
    assert {tool.name for tool in lists[0].tools} == {tool.name for tool in first.tools}
    assert all(listed is lists[0] for listed in lists)


async def test_a_change_during_a_load_makes_the_next_call_load_again(
    app_client: httpx.AsyncClient, services: Services, tenant: Tenant
) -> None:
    integration_id = await create(app_client, tenant, payments("http://127.0.0.1:9"))
    catalog = services.mcp.catalog
    integrations = catalog.integrations
    real_page = integrations.page
    release = asyncio.Event()
    reads = 0

    async def slow_page(tenant_id: str, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        page = await real_page(tenant_id, **kwargs)
        if reads == 1:
            await release.wait()
        return page

    integrations.page = slow_page  # type: ignore[method-assign]
    try:
        early = asyncio.create_task(catalog.tools(tenant.tenant_id))
        while reads == 0:
            await asyncio.sleep(0.001)
        # The endpoint is deleted while the first load is under way.
        await catalog.changed(tenant.tenant_id, integration_id)
        late = asyncio.create_task(catalog.tools(tenant.tenant_id))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(early, late)
    finally:
        integrations.page = real_page  # type: ignore[method-assign]
    assert reads == 2  # the call after the change did not join the load that predates it
    assert catalog.cached(tenant.tenant_id) is late.result()
