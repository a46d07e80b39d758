"""Fixtures for the key-value store tests: each test runs on both backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from adaptor.storage.kv import KeyValueStore
from adaptor.storage.kv_memory import MemoryStore
from adaptor.storage.kv_redis import RedisStore

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture
def kv_redis_url() -> str:
    """The machine's Redis; a test that needs it fails, never skips, when it is unreachable."""
    probe = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        probe.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        probe.close()
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def kv_pair(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[KeyValueStore, KeyValueStore]]:
    """Two handles on one store, as two replicas see it: two Redis clients (two connection
    pools) on one namespace, or the same in-process store twice."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, memory
        await memory.close()
        return
    url: str = request.getfixturevalue("kv_redis_url")
    namespace = f"test:{uuid.uuid4().hex}:"
    first = RedisStore.from_url(url, namespace=namespace)
    second = RedisStore.from_url(url, namespace=namespace)
    try:
        yield first, second
    finally:
        await first.delete_prefix("")
        await first.close()
        await second.close()


@pytest.fixture
def kv(kv_pair: tuple[KeyValueStore, KeyValueStore]) -> KeyValueStore:
    return kv_pair[0]
