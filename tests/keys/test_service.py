"""The API key lookup cache: an expiry never sends every request to the database at once, and
a key in use is refreshed before it expires without holding a request up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from adaptor.errors import Unauthorized
from adaptor.keys.repository import ApiKeyRepository
from adaptor.keys.service import hash_key
from adaptor.services import Services
from adaptor.storage.tables import ApiKeyRow
from tests.conftest import Tenant


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = ApiKeyRepository.by_hash

    async def counting(self: ApiKeyRepository, key_hash: str) -> object:
        seen.append(key_hash)
        await asyncio.sleep(0.02)
        return await original(self, key_hash)

    monkeypatch.setattr(ApiKeyRepository, "by_hash", counting)
    return seen


async def test_concurrent_first_uses_of_a_key_share_one_lookup(
    services: Services, tenant: Tenant, lookups: list[str]
) -> None:
    services.keys._cache.clear()
    header = f"Bearer {tenant.key}"
    callers = await asyncio.gather(*(services.keys.authenticate(header) for _ in range(20)))
    assert {caller.tenant_id for caller in callers} == {tenant.tenant_id}
    assert len(lookups) == 1


async def test_an_expired_entry_is_refreshed_by_one_request(
    services: Services, tenant: Tenant, lookups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    header = f"Bearer {tenant.key}"
    await services.keys.authenticate(header)
    lookups.clear()
    for digest, (_, caller) in list(services.keys._cache.items()):
        services.keys._cache[digest] = (0.0, caller)  # expired
    callers = await asyncio.gather(*(services.keys.authenticate(header) for _ in range(20)))
    assert {caller.tenant_id for caller in callers} == {tenant.tenant_id}
    assert len(lookups) == 1


async def test_a_lookup_racing_a_revoke_does_not_cache_the_key_as_valid(
    services: Services, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ApiKeyRepository.by_hash
    read_done = asyncio.Event()

    async def slow_after_read(self: ApiKeyRepository, key_hash: str) -> object:
        row = await original(self, key_hash)
        read_done.set()
        await asyncio.sleep(0.05)
        return row

    services.keys._cache.clear()
    monkeypatch.setattr(ApiKeyRepository, "by_hash", slow_after_read)
    lookup = asyncio.ensure_future(services.keys.authenticate(f"Bearer {tenant.key}"))
    await read_done.wait()
    monkeypatch.setattr(ApiKeyRepository, "by_hash", original)
    page = await services.keys.page(tenant_id=tenant.tenant_id, cursor=None, limit=10)
    await services.keys.revoke(page.items[0].key_id)
    await lookup  # answered from the read made before the revoke
    with pytest.raises(Unauthorized):
        await services.keys.authenticate(f"Bearer {tenant.key}")


async def test_a_key_in_use_is_refreshed_in_the_background_before_it_expires(
    services: Services, tenant: Tenant, lookups: list[str]
) -> None:
    keys = services.keys
    header = f"Bearer {tenant.key}"
    await keys.authenticate(header)
    lookups.clear()
    now = time.monotonic()
    for digest, (_, caller) in list(keys._cache.items()):
        keys._cache[digest] = (now + keys.REFRESH_AHEAD_SECONDS / 4, caller)  # about to expire

    started = time.perf_counter()
    callers = await asyncio.gather(*(keys.authenticate(header) for _ in range(20)))
    waited = time.perf_counter() - started

    assert {caller.tenant_id for caller in callers} == {tenant.tenant_id}
    assert waited < 0.02  # the lookup (20 ms here) ran behind them, not before them
    await asyncio.sleep(0.1)
    assert len(lookups) == 1
    assert keys._cache[hash_key(tenant.key)][0] > now + keys.CACHE_SECONDS / 2


async def test_a_background_refresh_sees_a_revoke_made_elsewhere(
    services: Services, tenant: Tenant
) -> None:
    keys = services.keys
    header = f"Bearer {tenant.key}"
    await keys.authenticate(header)
    page = await keys.page(tenant_id=tenant.tenant_id, cursor=None, limit=10)
    async with services.database.session() as session:  # as another replica would revoke it
        await session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == page.items[0].key_id)
            .values(revoked_at=datetime.now(UTC))
        )
    now = time.monotonic()
    for digest, (_, caller) in list(keys._cache.items()):
        keys._cache[digest] = (now + keys.REFRESH_AHEAD_SECONDS / 2, caller)

    await keys.authenticate(header)  # still within the answer's lifetime; refresh started
    await asyncio.sleep(0.2)

    with pytest.raises(Unauthorized):
        await keys.authenticate(header)
