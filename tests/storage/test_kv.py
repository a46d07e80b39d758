"""The key-value contract, on `MemoryStore` and on the real Redis (`RedisStore`)."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import pytest
import redis.asyncio

from adaptor.storage.kv import KeyValueStore, StoreError, StoreUnavailable, Window
from adaptor.storage.kv_memory import MemoryStore
from adaptor.storage.kv_redis import RedisStore

Pair = tuple[KeyValueStore, KeyValueStore]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- plain values ---------------------------------------------------------------------------


async def test_get_returns_what_set_stored(kv: KeyValueStore) -> None:
    assert await kv.get("k") is None
    assert await kv.set("k", b"v1") is True
    assert await kv.get("k") == b"v1"


async def test_value_expires_after_its_ttl(kv: KeyValueStore) -> None:
    await kv.set("k", b"v", ttl_s=0.05)
    assert await kv.get("k") == b"v"
    await asyncio.sleep(0.1)
    assert await kv.get("k") is None
    assert await kv.ttl("k") is None


async def test_set_only_if_absent_does_not_overwrite(kv: KeyValueStore) -> None:
    assert await kv.set("k", b"first", only_if_absent=True) is True
    assert await kv.set("k", b"second", only_if_absent=True) is False
    assert await kv.get("k") == b"first"


async def test_set_rejects_a_non_positive_ttl(kv: KeyValueStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        await kv.set("k", b"v", ttl_s=0)


async def test_compare_and_set_swaps_only_the_expected_value(kv: KeyValueStore) -> None:
    assert await kv.compare_and_set("k", None, b"a") is True
    assert await kv.compare_and_set("k", None, b"b") is False
    assert await kv.compare_and_set("k", b"x", b"b") is False
    assert await kv.compare_and_set("k", b"a", b"b", ttl_s=10) is True
    assert await kv.get("k") == b"b"
    ttl = await kv.ttl("k")
    assert ttl is not None
    assert 9 < ttl <= 10


async def test_compare_and_set_to_none_deletes(kv: KeyValueStore) -> None:
    await kv.set("k", b"a")
    assert await kv.compare_and_set("k", b"a", None) is True
    assert await kv.get("k") is None


async def test_compare_and_set_under_contention_lets_exactly_one_win(kv_pair: Pair) -> None:
    first, second = kv_pair
    await first.set("k", b"0")
    results = await asyncio.gather(
        *(
            (first if i % 2 else second).compare_and_set("k", b"0", str(i + 1).encode())
            for i in range(20)
        )
    )
    assert results.count(True) == 1


async def test_delete_counts_existing_keys(kv: KeyValueStore) -> None:
    await kv.set("a", b"1")
    await kv.set("b", b"2")
    assert await kv.delete("a", "b", "missing") == 2
    assert await kv.delete() == 0
    assert await kv.get("a") is None


async def test_delete_prefix_deletes_only_that_prefix(kv: KeyValueStore) -> None:
    for i in range(1200):
        await kv.set(f"cache:t1:{i}", b"x")
    await kv.set("cache:t2:1", b"x")
    await kv.set("cache:t1", b"no trailing colon")
    assert await kv.delete_prefix("cache:t1:") == 1200
    assert await kv.get("cache:t2:1") == b"x"
    assert await kv.get("cache:t1") == b"no trailing colon"


async def test_delete_prefix_treats_glob_characters_literally(kv: KeyValueStore) -> None:
    await kv.set("p*[x]?:1", b"x")
    await kv.set("pzzz:1", b"x")
    assert await kv.delete_prefix("p*[x]?:") == 1
    assert await kv.get("pzzz:1") == b"x"


async def test_ttl_reports_absent_persistent_and_expiring(kv: KeyValueStore) -> None:
    assert await kv.ttl("k") is None
    await kv.set("k", b"v")
    assert await kv.ttl("k") == math.inf
    await kv.set("k", b"v", ttl_s=5)
    ttl = await kv.ttl("k")
    assert ttl is not None
    assert 4 < ttl <= 5


async def test_incr_sets_the_ttl_only_when_it_creates_the_key(kv: KeyValueStore) -> None:
    assert await kv.incr("n", ttl_s=0.3) == 1
    await asyncio.sleep(0.1)
    assert await kv.incr("n", 2, ttl_s=0.3) == 3
    ttl = await kv.ttl("n")
    assert ttl is not None
    assert ttl <= 0.21
    await asyncio.sleep(0.25)
    assert await kv.get("n") is None


async def test_incr_without_ttl_persists(kv: KeyValueStore) -> None:
    assert await kv.incr("n") == 1
    assert await kv.incr("n", -3) == -2
    assert await kv.ttl("n") == math.inf
    assert await kv.get("n") == b"-2"


async def test_incr_is_atomic_across_replicas(kv_pair: Pair) -> None:
    first, second = kv_pair
    await asyncio.gather(*((first if i % 2 else second).incr("n", ttl_s=5) for i in range(40)))
    assert await first.get("n") == b"40"


async def test_incr_on_a_non_integer_is_a_store_error(kv: KeyValueStore) -> None:
    await kv.set("n", b"abc")
    with pytest.raises(StoreError):
        await kv.incr("n")


# -- sliding windows ------------------------------------------------------------------------


async def test_hit_admits_up_to_the_limit_then_says_how_long_to_wait(kv: KeyValueStore) -> None:
    window = [Window(3, 0.3)]
    assert [(await kv.hit("w", window)).allowed for _ in range(3)] == [True] * 3
    refused = await kv.hit("w", window)
    assert refused.allowed is False
    assert 0.2 < refused.retry_after_s <= 0.3
    await asyncio.sleep(refused.retry_after_s + 0.02)
    assert (await kv.hit("w", window)).allowed is True


async def test_hit_is_held_while_the_hold_key_lives_and_records_nothing(
    kv: KeyValueStore,
) -> None:
    window = [Window(2, 60)]
    await kv.set("pause", b"1", ttl_s=0.3)
    held = await kv.hit("w", window, hold_key="pause")
    assert held.allowed is False
    assert held.held is True
    assert 0.2 < held.retry_after_s <= 0.3
    # Without the hold key the hit goes through; the held one consumed nothing.
    assert (await kv.hit("w", window)).allowed is True
    await asyncio.sleep(held.retry_after_s + 0.02)
    admitted = await kv.hit("w", window, hold_key="pause")
    assert (admitted.allowed, admitted.held) == (True, False)
    full = await kv.hit("w", window, hold_key="pause")
    assert (full.allowed, full.held) == (False, False)
    assert full.retry_after_s > 59


async def test_hit_is_gated_while_the_gate_key_exists_and_records_nothing(
    kv: KeyValueStore,
) -> None:
    window = [Window(1, 60)]
    await kv.set("{w}:gate", b"state")
    await kv.set("{w}:pause", b"1", ttl_s=30)
    gated = await kv.hit("{w}:hits", window, hold_key="{w}:pause", gate_key="{w}:gate")
    # The gate is checked before the pause, and nothing was taken from the window.
    assert (gated.allowed, gated.gated, gated.held) == (False, True, False)
    await kv.delete("{w}:gate", "{w}:pause")
    admitted = await kv.hit("{w}:hits", window, hold_key="{w}:pause", gate_key="{w}:gate")
    assert (admitted.allowed, admitted.gated) == (True, False)
    full = await kv.hit("{w}:hits", window, gate_key="{w}:gate")
    assert (full.allowed, full.gated) == (False, False)
    assert full.retry_after_s > 59


async def test_a_hold_key_without_expiry_holds_for_ever(kv: KeyValueStore) -> None:
    await kv.set("pause", b"1")
    held = await kv.hit("w", [Window(5, 60)], hold_key="pause")
    assert held.held is True
    assert math.isinf(held.retry_after_s)


async def test_hit_is_exact_under_concurrency_across_replicas(kv_pair: Pair) -> None:
    first, second = kv_pair
    window = [Window(10, 60)]
    results = await asyncio.gather(
        *((first if i % 2 else second).hit("w", window) for i in range(50))
    )
    assert sum(r.allowed for r in results) == 10


async def test_hit_refused_by_one_window_consumes_nothing_from_the_others(
    kv: KeyValueStore,
) -> None:
    windows = [Window(3, 60), Window(1, 0.15)]
    assert (await kv.hit("w", windows)).allowed is True
    refused = await kv.hit("w", windows)
    assert refused.allowed is False
    assert refused.retry_after_s <= 0.15
    for _ in range(2):
        await asyncio.sleep(0.16)
        assert (await kv.hit("w", windows)).allowed is True
    await asyncio.sleep(0.16)
    long_refusal = await kv.hit("w", windows)
    assert long_refusal.allowed is False
    assert long_refusal.retry_after_s > 59


async def test_hit_with_cost(kv: KeyValueStore) -> None:
    window = [Window(5, 60)]
    assert (await kv.hit("w", window, cost=3)).allowed is True
    assert (await kv.hit("w", window, cost=3)).allowed is False
    assert (await kv.hit("w", window, cost=2)).allowed is True


async def test_hit_costing_more_than_the_limit_can_never_pass(kv: KeyValueStore) -> None:
    refused = await kv.hit("w", [Window(2, 60)], cost=3)
    assert refused.allowed is False
    assert refused.retry_after_s == math.inf


async def test_hit_on_a_plain_value_is_a_store_error(kv: KeyValueStore) -> None:
    await kv.set("w", b"plain")
    with pytest.raises(StoreError):
        await kv.hit("w", [Window(1, 1)])


async def test_hit_log_expires_with_its_longest_window(kv: KeyValueStore) -> None:
    await kv.hit("w", [Window(5, 0.1)])
    await asyncio.sleep(0.15)
    assert await kv.ttl("w") is None


# -- concurrency slots ----------------------------------------------------------------------


async def test_slots_are_bounded_and_released(kv: KeyValueStore) -> None:
    first = await kv.acquire_slot("s", 2, ttl_s=10)
    second = await kv.acquire_slot("s", 2, ttl_s=10)
    assert first is not None
    assert second is not None
    assert await kv.acquire_slot("s", 2, ttl_s=10) is None
    assert await kv.release_slot("s", first) is True
    assert await kv.release_slot("s", first) is False
    assert await kv.acquire_slot("s", 2, ttl_s=10) is not None


async def test_an_unreleased_slot_frees_itself_after_its_ttl(kv: KeyValueStore) -> None:
    token = await kv.acquire_slot("s", 1, ttl_s=0.05)
    assert token is not None
    assert await kv.acquire_slot("s", 1, ttl_s=0.05) is None
    await asyncio.sleep(0.08)
    assert await kv.acquire_slot("s", 1, ttl_s=5) is not None
    assert await kv.release_slot("s", token) is False


async def test_slots_are_exact_under_concurrency_across_replicas(kv_pair: Pair) -> None:
    first, second = kv_pair
    tokens = await asyncio.gather(
        *((first if i % 2 else second).acquire_slot("s", 5, ttl_s=10) for i in range(30))
    )
    assert sum(token is not None for token in tokens) == 5


# -- locks ----------------------------------------------------------------------------------


async def test_lock_excludes_a_second_holder(kv_pair: Pair) -> None:
    first, second = kv_pair
    async with first.lock("l", ttl_s=5, wait_s=0) as held:
        assert held is True
        async with second.lock("l", ttl_s=5, wait_s=0.05) as other:
            assert other is False
    async with second.lock("l", ttl_s=5, wait_s=0) as held_again:
        assert held_again is True


async def test_lock_waits_for_the_holder_to_release(kv_pair: Pair) -> None:
    first, second = kv_pair

    holding = asyncio.Event()

    async def hold_briefly() -> None:
        async with first.lock("l", ttl_s=5, wait_s=0) as held:
            assert held
            holding.set()
            await asyncio.sleep(0.05)

    holder = asyncio.create_task(hold_briefly())
    # Wait for the holder itself, not a fixed time: on a busy machine its first connection
    # can take longer than any short sleep.
    await asyncio.wait_for(holding.wait(), timeout=5)
    async with second.lock("l", ttl_s=5, wait_s=1) as held:
        assert held is True
    await holder


async def test_an_expired_owner_does_not_release_its_successors_lock(kv_pair: Pair) -> None:
    first, second = kv_pair
    lock = first.lock("l", ttl_s=0.05, wait_s=0)
    assert await lock.__aenter__() is True
    await asyncio.sleep(0.08)
    async with second.lock("l", ttl_s=5, wait_s=0) as successor:
        assert successor
        await lock.__aexit__(None, None, None)
        assert await first.get("l") is not None


async def test_lock_serialises_critical_sections(kv_pair: Pair) -> None:
    first, second = kv_pair
    inside = 0
    overlaps = 0

    async def critical(store: KeyValueStore) -> None:
        nonlocal inside, overlaps
        async with store.lock("l", ttl_s=5, wait_s=5) as held:
            assert held
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(critical(first if i % 2 else second) for i in range(10)))
    assert overlaps == 0


# -- publish / subscribe --------------------------------------------------------------------


async def test_subscribers_receive_what_is_published(kv_pair: Pair) -> None:
    first, second = kv_pair
    async with first.subscribe("ch") as subscription:
        assert await second.publish("ch", b"hello") == 1
        await second.publish("ch", b"world")
        received = [
            await asyncio.wait_for(anext(subscription), 2),
            await asyncio.wait_for(anext(subscription), 2),
        ]
    assert received == [b"hello", b"world"]
    assert await second.publish("ch", b"after") == 0


async def test_publish_without_subscribers_reaches_nobody(kv: KeyValueStore) -> None:
    assert await kv.publish("nobody", b"x") == 0


async def test_subscription_iterates_with_async_for(kv: KeyValueStore) -> None:
    received: list[bytes] = []
    async with kv.subscribe("ch") as subscription:
        for message in (b"1", b"2", b"3"):
            await kv.publish("ch", message)
        async for message in subscription:
            received.append(message)
            if len(received) == 3:
                break
    assert received == [b"1", b"2", b"3"]


# -- health and backend specifics -----------------------------------------------------------


async def test_ping(kv: KeyValueStore) -> None:
    assert await kv.ping() is True


async def test_unreachable_redis_pings_false_and_raises_store_unavailable() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", connect_timeout_s=0.5)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable):
            await store.get("k")
    finally:
        await store.close()


async def test_redis_store_without_namespace_refuses_to_delete_everything(
    kv_redis_url: str,
) -> None:
    store = RedisStore.from_url(kv_redis_url)
    try:
        with pytest.raises(ValueError, match="every key"):
            await store.delete_prefix("")
    finally:
        await store.close()


async def test_redis_namespaces_isolate_stores(kv_redis_url: str) -> None:
    one = RedisStore.from_url(kv_redis_url, namespace=f"test:{uuid.uuid4().hex}:")
    two = RedisStore.from_url(kv_redis_url, namespace=f"test:{uuid.uuid4().hex}:")
    try:
        await one.set("k", b"one", ttl_s=5)
        assert await two.get("k") is None
        assert await two.delete_prefix("") == 0
        assert await one.get("k") == b"one"
    finally:
        await one.delete_prefix("")
        await one.close()
        await two.close()


async def test_memory_store_forgets_expired_keys_as_time_passes() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(100):
        await store.set(f"k{i}", b"v", ttl_s=1)
    await store.hit("w", [Window(5, 2)])
    clock.now += 2.5
    assert await store.delete_prefix("") == 0
    assert await store.ttl("w") is None
    await store.close()


async def test_memory_store_is_unusable_after_close() -> None:
    store = MemoryStore()
    await store.close()
    assert await store.ping() is False
    with pytest.raises(StoreError):
        await store.get("k")


async def test_redis_hit_survives_its_idle_connection_being_killed(kv_redis_url: str) -> None:
    """The per-execution script reuses connections of its own: one the server dropped while
    it was idle (a Redis restart, a proxy timeout) is replaced without an error."""
    name = f"test-{uuid.uuid4().hex}"
    store = RedisStore.from_url(f"{kv_redis_url}?client_name={name}", namespace=f"{name}:")
    admin = redis.asyncio.Redis.from_url(kv_redis_url)
    try:
        assert (await store.hit("w", [Window(10, 60)])).allowed
        ours = [client for client in await admin.client_list() if client["name"] == name]
        assert ours
        for client in ours:
            await admin.client_kill_filter(_id=client["id"])
        assert (await store.hit("w", [Window(10, 60)])).allowed
        assert (await store.hit("w", [Window(2, 60)])).allowed is False  # both hits counted
    finally:
        await store.delete_prefix("")
        await store.close()
        await admin.aclose()


async def test_redis_hit_reloads_its_script_after_a_script_flush(kv_redis_url: str) -> None:
    store = RedisStore.from_url(kv_redis_url, namespace=f"test:{uuid.uuid4().hex}:")
    admin = redis.asyncio.Redis.from_url(kv_redis_url)
    try:
        assert (await store.hit("w", [Window(10, 60)])).allowed
        await admin.script_flush()
        assert (await store.hit("w", [Window(10, 60)])).allowed
    finally:
        await store.delete_prefix("")
        await store.close()
        await admin.aclose()


async def test_redis_hit_gives_up_within_the_socket_timeout_when_the_server_stops_answering(
    kv_redis_url: str,
) -> None:
    """A Redis that takes the command and never answers (here paused by `CLIENT PAUSE`) is
    given up on after the socket timeout, on the reused connection and on the fresh one,
    and the next call after it answers again works."""
    store = RedisStore.from_url(
        kv_redis_url, namespace=f"test:{uuid.uuid4().hex}:", socket_timeout_s=0.3
    )
    admin = redis.asyncio.Redis.from_url(kv_redis_url)
    try:
        assert (await store.hit("w", [Window(10, 60)])).allowed  # a connection of its own
        await admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.hit("w", [Window(10, 60)])
        assert 0.5 < time.monotonic() - started < 1.4  # two attempts of 0.3 s
        await asyncio.sleep(1.5 - (time.monotonic() - started) + 0.2)
        assert (await store.hit("w", [Window(10, 60)])).allowed
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await store.delete_prefix("")
        await store.close()
        await admin.aclose()


async def test_redis_hit_on_an_unreachable_server_raises_store_unavailable() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", connect_timeout_s=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            await store.hit("w", [Window(1, 1)])
    finally:
        await store.close()


async def test_redis_hit_is_exact_with_more_concurrent_calls_than_its_own_connections(
    kv_redis_url: str,
) -> None:
    """Beyond the store's own connections, calls go through the client's pool: all count."""
    store = RedisStore.from_url(kv_redis_url, namespace=f"test:{uuid.uuid4().hex}:")
    try:
        results = await asyncio.gather(*(store.hit("w", [Window(60, 60)]) for _ in range(100)))
        assert sum(r.allowed for r in results) == 60
    finally:
        await store.delete_prefix("")
        await store.close()
