"""The API key lookup cache: an expiry never sends every request to the database at once."""

from __future__ import annotations

import asyncio

import pytest

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
