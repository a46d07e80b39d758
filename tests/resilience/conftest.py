"""Fixtures of the resilience engine tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from adaptor.storage.kv import KeyValueStore
from adaptor.storage.kv_memory import MemoryStore
from adaptor.storage.kv_redis import RedisStore
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[KeyValueStore, ...]]:
    """Two replicas' handles on one store (the same in-process store twice, or two Redis
    clients on a namespace of this test's own). Unreachable Redis fails the test."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, memory
        await memory.close()
        return
    namespace = f"test:{uuid.uuid4().hex}:"
    first = RedisStore.from_url(REDIS_URL, namespace=namespace)
    second = RedisStore.from_url(REDIS_URL, namespace=namespace)
    try:
        if not await first.ping():
            pytest.fail(f"Redis at {REDIS_URL} is unreachable")
        yield first, second
    finally:
        if await first.ping():
            await first.delete_prefix("")
        await first.close()
        await second.close()
