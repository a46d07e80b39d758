"""ResponseCache: keys, TTL, invalidation and single-flight within and across processes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adaptor.resilience.cache import ResponseCache
from adaptor.storage.kv import KeyValueStore, StoreUnavailable
from adaptor.storage.kv_memory import MemoryStore


class Upstream:
    """A compute function that counts its calls and takes a little while."""

    def __init__(self, value: Any = None, delay: float = 0.05) -> None:
        self.calls = 0
        self.value = value if value is not None else {"name": "Ada", "tags": ["a", "b"]}
        self.delay = delay

    async def __call__(self) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.value


KEY = ResponseCache.key("tenant-1", "integration-1", "get_user", {"id": 7})


# -- keys -----------------------------------------------------------------------------------


def test_key_is_stable_whatever_the_input_order() -> None:
    one = ResponseCache.key("t", "i", "e", {"a": 1, "b": {"x": 1, "y": 2}})
    two = ResponseCache.key("t", "i", "e", {"b": {"y": 2, "x": 1}, "a": 1})
    assert one == two
    assert one.startswith("cache:t:i:e:")


def test_key_depends_only_on_the_selected_fields() -> None:
    fields = ["user.id", "region"]
    base = {"user": {"id": 7, "name": "Ada"}, "region": "eu", "trace": "abc"}
    other = {"user": {"id": 7, "name": "Bob"}, "region": "eu", "trace": "xyz"}
    assert ResponseCache.key("t", "i", "e", base, fields) == ResponseCache.key(
        "t", "i", "e", other, fields
    )
    moved = {**base, "region": "us"}
    assert ResponseCache.key("t", "i", "e", base, fields) != ResponseCache.key(
        "t", "i", "e", moved, fields
    )


def test_key_separates_tenants_integrations_and_endpoints() -> None:
    keys = {
        ResponseCache.key("t1", "i", "e", {"id": 1}),
        ResponseCache.key("t2", "i", "e", {"id": 1}),
        ResponseCache.key("t1", "j", "e", {"id": 1}),
        ResponseCache.key("t1", "i", "f", {"id": 1}),
        ResponseCache.key("t1", "i", "e", {"id": 2}),
    }
    assert len(keys) == 5


def test_ids_cannot_forge_another_prefix() -> None:
    forged = ResponseCache.key("a:b", "c", "e", {})
    assert not forged.startswith(ResponseCache.prefix("a", "b:c"))
    assert not forged.startswith(ResponseCache.prefix("a", "b"))


# -- get / set / invalidate -----------------------------------------------------------------


async def test_set_then_get_round_trips_json(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    assert await cache.get(KEY) is None
    await cache.set(KEY, {"n": 1, "items": [1, 2]}, ttl_s=5)
    hit = await cache.get(KEY)
    assert hit is not None
    assert hit.value == {"n": 1, "items": [1, 2]}


async def test_a_cached_none_is_a_hit(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    await cache.set(KEY, None, ttl_s=5)
    hit = await cache.get(KEY)
    assert hit is not None
    assert hit.value is None


async def test_entries_expire(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    await cache.set(KEY, "v", ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await cache.get(KEY) is None


async def test_zero_ttl_caches_nothing(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    upstream = Upstream()
    await cache.set(KEY, "v", ttl_s=0)
    assert await cache.get(KEY) is None
    await cache.get_or_compute(KEY, 0, upstream)
    await cache.get_or_compute(KEY, 0, upstream)
    assert upstream.calls == 2


async def test_invalidate_an_endpoint_or_a_whole_integration(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0])
    keys = {
        (endpoint, n): ResponseCache.key("t", "i", endpoint, {"n": n})
        for endpoint in ("get_user", "list_users")
        for n in range(3)
    }
    other_tenant = ResponseCache.key("t2", "i", "get_user", {"n": 0})
    for key in [*keys.values(), other_tenant]:
        await cache.set(key, "v", ttl_s=30)
    assert await cache.invalidate("t", "i", "get_user") == 3
    assert await cache.get(keys["get_user", 0]) is None
    assert await cache.get(keys["list_users", 0]) is not None
    assert await cache.invalidate("t", "i") == 3
    assert await cache.get(keys["list_users", 0]) is None
    assert await cache.get(other_tenant) is not None


async def test_a_stale_copy_outlives_the_entry_until_invalidated(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0], stale_s=30)
    await cache.set(KEY, {"n": 1}, ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await cache.get(KEY) is None
    stale = await cache.get_stale(KEY)
    assert stale is not None
    assert stale.value == {"n": 1}
    await cache.invalidate("tenant-1", "integration-1", "get_user")
    assert await cache.get_stale(KEY) is None


async def test_no_stale_copy_is_kept_by_default(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    await cache.set(KEY, {"n": 1}, ttl_s=5)
    assert await cache.get_stale(KEY) is None
    assert await stores[0].get(KEY + ResponseCache.STALE_SUFFIX) is None


# -- single-flight --------------------------------------------------------------------------


async def test_miss_computes_and_caches_then_hits(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    upstream = Upstream()
    first = await cache.get_or_compute(KEY, 30, upstream)
    second = await cache.get_or_compute(KEY, 30, upstream)
    assert (first.cached, second.cached) == (False, True)
    assert first.value == second.value == upstream.value
    assert upstream.calls == 1


async def test_twenty_concurrent_misses_in_one_process_compute_once(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0])
    upstream = Upstream()
    results = await asyncio.gather(*(cache.get_or_compute(KEY, 30, upstream) for _ in range(20)))
    assert upstream.calls == 1
    assert all(r.value == upstream.value for r in results)
    assert sum(not r.cached for r in results) == 1


async def test_concurrent_misses_across_processes_compute_once(
    stores: tuple[KeyValueStore, ...],
) -> None:
    # Separate caches (and, on Redis, separate clients) behave as separate processes.
    caches = [ResponseCache(stores[i % 2], poll_interval_s=0.01) for i in range(10)]
    upstream = Upstream(delay=0.1)
    results = await asyncio.gather(
        *(cache.get_or_compute(KEY, 30, upstream) for cache in caches for _ in range(2))
    )
    assert upstream.calls == 1
    assert all(r.value == upstream.value for r in results)


async def test_a_compute_error_reaches_every_waiter_and_is_not_cached(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0])
    calls = 0

    async def failing() -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(
        *(cache.get_or_compute(KEY, 30, failing) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get(KEY) is None
    assert await stores[0].get(f"cache-lock:{KEY}") is None


async def test_should_cache_can_veto_storing(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0])
    upstream = Upstream(value={"success": False})
    result = await cache.get_or_compute(
        KEY, 30, upstream, should_cache=lambda value: bool(value["success"])
    )
    assert result.value == {"success": False}
    assert await cache.get(KEY) is None


async def test_a_waiter_takes_over_when_the_lock_holder_dies(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0], poll_interval_s=0.01)
    # Another process took the fill lock and died: the lock only expires.
    await stores[0].set(f"cache-lock:{KEY}", b"dead-owner", ttl_s=0.1)
    upstream = Upstream(delay=0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await cache.get_or_compute(KEY, 30, upstream)
    assert upstream.calls == 1
    assert result.cached is False
    assert 0.08 <= loop.time() - started < 1


async def test_waiting_for_another_fill_is_bounded(stores: tuple[KeyValueStore, ...]) -> None:
    cache = ResponseCache(stores[0], wait_s=0.1, poll_interval_s=0.01)
    await stores[0].set(f"cache-lock:{KEY}", b"slow-owner", ttl_s=30)
    upstream = Upstream(delay=0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cache.get_or_compute(KEY, 30, upstream)
    assert upstream.calls == 1
    assert 0.09 <= loop.time() - started < 1


async def test_a_waiter_picks_up_the_value_another_process_wrote(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0], poll_interval_s=0.01)
    await stores[1].set(f"cache-lock:{KEY}", b"other-process", ttl_s=30)

    async def other_process_fills() -> None:
        await asyncio.sleep(0.05)
        await ResponseCache(stores[1]).set(KEY, {"from": "elsewhere"}, ttl_s=30)

    upstream = Upstream()
    filler = asyncio.create_task(other_process_fills())
    result = await cache.get_or_compute(KEY, 30, upstream)
    await filler
    assert upstream.calls == 0
    assert (result.value, result.cached) == ({"from": "elsewhere"}, True)


async def test_a_cancelled_caller_does_not_cancel_the_shared_call(
    stores: tuple[KeyValueStore, ...],
) -> None:
    cache = ResponseCache(stores[0])
    upstream = Upstream(delay=0.05)
    first = asyncio.create_task(cache.get_or_compute(KEY, 30, upstream))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get_or_compute(KEY, 30, upstream))
    await asyncio.sleep(0.01)
    first.cancel()
    result = await second
    assert result.value == upstream.value
    assert upstream.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first


class BrokenStore(MemoryStore):
    """A store whose backend is down."""

    async def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("down")

    async def set(
        self, key: str, value: bytes, ttl_s: float | None = None, *, only_if_absent: bool = False
    ) -> bool:
        raise StoreUnavailable("down")


async def test_a_failing_store_degrades_to_no_cache() -> None:
    cache = ResponseCache(BrokenStore())
    upstream = Upstream(delay=0)
    await cache.set(KEY, "v", ttl_s=5)
    assert await cache.get(KEY) is None
    result = await cache.get_or_compute(KEY, 30, upstream)
    assert (result.value, result.cached, upstream.calls) == (upstream.value, False, 1)
