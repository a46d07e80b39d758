"""The runtime cache's version check: a safety net under change notices that never holds up the
call that finds it due."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from adaptor.executions.runtime import IntegrationRuntime
from adaptor.integrations.service import IntegrationService
from adaptor.services import Services
from tests.conftest import Tenant
from tests.executions.test_execute import create, integration
from tests.executions.upstream import Upstream


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each version read of the check, made 50 ms slow."""
    seen: list[str] = []
    original = IntegrationService.get

    async def slow(self: IntegrationService, tenant_id: str, integration_id: str) -> object:
        seen.append(integration_id)
        await asyncio.sleep(0.05)
        return await original(self, tenant_id, integration_id)

    monkeypatch.setattr(IntegrationService, "get", slow)
    return seen


@pytest.fixture
async def due(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, services: Services
) -> tuple[str, IntegrationRuntime]:
    """A new integration's cached runtime, its version check due."""
    integration_id = await create(app_client, tenant, integration(upstream))
    entry = await services.runtimes.get(tenant.tenant_id, integration_id)
    entry.loaded_at -= services.runtimes.revalidate_after_s + 1
    return integration_id, entry


async def test_a_due_version_check_runs_once_in_the_background(
    services: Services, tenant: Tenant, due: tuple[str, IntegrationRuntime], reads: list[str]
) -> None:
    integration_id, entry = due
    runtimes = services.runtimes
    reads.clear()

    started = time.perf_counter()
    got = await asyncio.gather(*(runtimes.get(tenant.tenant_id, integration_id) for _ in range(16)))
    waited = time.perf_counter() - started

    assert all(runtime is entry for runtime in got)
    assert waited < 0.05  # nobody waited for the 50 ms read
    await asyncio.sleep(0.2)
    assert reads == [integration_id]
    assert await runtimes.get(tenant.tenant_id, integration_id) is entry  # still current
    assert time.monotonic() - entry.loaded_at < 1


async def test_a_check_that_finds_a_missed_change_drops_the_entry(
    services: Services, tenant: Tenant, due: tuple[str, IntegrationRuntime], reads: list[str]
) -> None:
    integration_id, entry = due
    runtimes = services.runtimes
    stored_version = entry.config.version
    # As if a change notice had been missed: the cached entry predates the stored version.
    entry.config = entry.config.model_copy(update={"version": stored_version - 1})

    assert await runtimes.get(tenant.tenant_id, integration_id) is entry
    await asyncio.sleep(0.2)

    reloaded = await runtimes.get(tenant.tenant_id, integration_id)
    assert reloaded is not entry
    assert reloaded.config.version == stored_version
