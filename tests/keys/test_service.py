"""The API key lookup cache: an expiry never sends every request to the database at once."""

from __future__ import annotations

import asyncio

import pytest

from adaptor.errors import Unauthorized
from adaptor.keys.repository import ApiKeyRepository
from adaptor.services import Services
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
