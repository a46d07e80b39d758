"""RateLimiter: exact windows and concurrency slots across replicas, waiting, upstream pauses."""

from __future__ import annotations

import asyncio
import time

import pytest

from adaptor.domain import RateLimitConfig
from adaptor.resilience.ratelimit import (
    Lease,
    RateLimiter,
    RateLimitExceeded,
    parse_rate_limit_headers,
)
from adaptor.storage.kv import KeyValueStore, Window
from adaptor.storage.kv_memory import MemoryStore


async def try_acquire(
    limiter: RateLimiter, config: RateLimitConfig, deadline: float | None = None
) -> Lease | None:
    try:
        return await limiter.acquire("integration-1", config, deadline)
    except RateLimitExceeded:
        return None


# -- windows from the configuration ---------------------------------------------------------


def test_windows_for_minute_hour_and_burst() -> None:
    config = RateLimitConfig(requests_per_minute=60, requests_per_hour=1000, burst_size=10)
    assert RateLimiter.windows(config) == [Window(60, 60), Window(1000, 3600), Window(10, 10)]


def test_burst_follows_the_hourly_rate_without_a_minute_rate() -> None:
    config = RateLimitConfig(requests_per_hour=360, burst_size=5)
    assert RateLimiter.windows(config) == [Window(360, 3600), Window(5, 50)]


def test_burst_alone_is_per_second() -> None:
    assert RateLimiter.windows(RateLimitConfig(burst_size=4)) == [Window(4, 1)]


def test_a_burst_no_looser_than_the_rate_adds_no_window() -> None:
    config = RateLimitConfig(requests_per_minute=5, burst_size=5)
    assert RateLimiter.windows(config) == [Window(5, 60)]


def test_no_limits_no_windows() -> None:
    assert RateLimiter.windows(RateLimitConfig()) == []


# -- request rate ---------------------------------------------------------------------------


async def test_exactly_the_limit_is_admitted_under_concurrency_across_replicas(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiters = [RateLimiter(stores[0]), RateLimiter(stores[1])]
    config = RateLimitConfig(requests_per_minute=10)
    leases = await asyncio.gather(*(try_acquire(limiters[i % 2], config) for i in range(50)))
    assert sum(lease is not None for lease in leases) == 10


async def test_refusal_says_when_to_retry(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(requests_per_minute=2)
    await limiter.acquire("integration-1", config)
    await limiter.acquire("integration-1", config)
    with pytest.raises(RateLimitExceeded) as refused:
        await limiter.acquire("integration-1", config)
    assert 59 < refused.value.retry_after_s <= 60
    assert refused.value.retry_after == refused.value.retry_after_s


async def test_keys_are_limited_separately(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(requests_per_minute=1)
    await limiter.acquire("integration-1", config)
    await limiter.acquire("integration-2", config)


async def test_acquire_waits_for_room_that_opens_before_the_deadline(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(burst_size=2)  # 2 per second
    for _ in range(2):
        await limiter.acquire("integration-1", config)
    started = time.monotonic()
    await limiter.acquire("integration-1", config, deadline=time.monotonic() + 2)
    assert time.monotonic() - started > 0.8


async def test_acquire_fails_at_once_when_room_opens_only_after_the_deadline(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(requests_per_minute=1)
    await limiter.acquire("integration-1", config)
    started = time.monotonic()
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire("integration-1", config, deadline=time.monotonic() + 5)
    assert time.monotonic() - started < 0.5


async def test_a_cost_above_the_limit_is_refused_outright(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiter = RateLimiter(stores[0])
    with pytest.raises(RateLimitExceeded, match="exceeds"):
        await limiter.acquire(
            "integration-1", RateLimitConfig(requests_per_minute=3), time.monotonic() + 5, cost=4
        )


# -- concurrency slots ----------------------------------------------------------------------


async def test_concurrent_requests_are_bounded_across_replicas(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiters = [RateLimiter(stores[0]), RateLimiter(stores[1])]
    config = RateLimitConfig(concurrent_requests=3)
    leases = await asyncio.gather(*(try_acquire(limiters[i % 2], config) for i in range(20)))
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 3
    await held[0].release()
    await held[0].release()  # twice is harmless
    assert await try_acquire(limiters[1], config) is not None
    assert await try_acquire(limiters[1], config) is None


async def test_a_waiter_gets_the_slot_when_a_call_ends(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0], poll_interval_s=0.01)
    config = RateLimitConfig(concurrent_requests=1)
    peak = 0
    running = 0

    async def call() -> None:
        nonlocal peak, running
        async with await limiter.acquire("integration-1", config, time.monotonic() + 5):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1

    await asyncio.gather(*(call() for _ in range(5)))
    assert peak == 1


async def test_a_slot_leaked_by_a_dead_replica_expires(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0], slot_ttl_margin_s=0.05, poll_interval_s=0.02)
    config = RateLimitConfig(concurrent_requests=1)
    # The holder's deadline is now: its slot lives only for the margin.
    await limiter.acquire("integration-1", config, deadline=time.monotonic())
    lease = await limiter.acquire("integration-1", config, deadline=time.monotonic() + 1)
    assert lease.holds_slot


async def test_a_refused_rate_gives_back_the_slot(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(concurrent_requests=1, requests_per_minute=1)
    lease = await limiter.acquire("integration-1", config)
    await lease.release()
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire("integration-1", config)
    concurrency_only = RateLimitConfig(concurrent_requests=1)
    assert (await limiter.acquire("integration-1", concurrency_only)).holds_slot


# -- what the upstream says -----------------------------------------------------------------


# The pause is checked on its own (no windows; windows with slots, so no slot is held while
# waiting) or inside the windows' hit (windows alone): each path must honour it.
PAUSE_CONFIGS = [
    pytest.param(RateLimitConfig(), id="no-windows"),
    pytest.param(RateLimitConfig(requests_per_minute=100), id="windows"),
    pytest.param(RateLimitConfig(requests_per_minute=100, concurrent_requests=2), id="slots"),
]


@pytest.mark.parametrize("config", PAUSE_CONFIGS)
async def test_upstream_quota_exhausted_pauses_every_replica(
    stores: tuple[KeyValueStore, ...], config: RateLimitConfig
) -> None:
    here, there = RateLimiter(stores[0]), RateLimiter(stores[1])
    await here.note_upstream("integration-1", remaining=0, reset_s=30)
    with pytest.raises(RateLimitExceeded, match="upstream") as refused:
        await there.acquire("integration-1", config, time.monotonic() + 1)
    assert 29 < refused.value.retry_after_s <= 30


@pytest.mark.parametrize("config", PAUSE_CONFIGS)
async def test_upstream_pause_is_waited_out_within_the_deadline(
    stores: tuple[KeyValueStore, ...], config: RateLimitConfig
) -> None:
    limiter = RateLimiter(stores[0])
    await limiter.note_upstream("integration-1", remaining=0, reset_s=0.1)
    started = time.monotonic()
    lease = await limiter.acquire("integration-1", config, time.monotonic() + 2)
    assert time.monotonic() - started >= 0.05
    await lease.release()


async def test_a_paused_call_spends_no_request_budget(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(requests_per_minute=1)
    await limiter.note_upstream("integration-1", remaining=0, reset_s=0.1)
    with pytest.raises(RateLimitExceeded, match="upstream"):
        await limiter.acquire("integration-1", config, time.monotonic() + 0.01)
    await asyncio.sleep(0.12)
    await limiter.acquire("integration-1", config)


async def test_remaining_quota_does_not_pause(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0])
    await limiter.note_upstream("integration-1", remaining=3, reset_s=30)
    await limiter.note_upstream("integration-1", remaining=None, reset_s=30)
    await limiter.note_upstream("integration-1", remaining=0, reset_s=None)
    assert await limiter.paused_for("integration-1") == 0
    await limiter.acquire("integration-1", RateLimitConfig())


async def test_upstream_pause_is_capped(stores: tuple[KeyValueStore, ...]) -> None:
    limiter = RateLimiter(stores[0], max_upstream_pause_s=5)
    await limiter.note_upstream("integration-1", remaining=0, reset_s=86_400)
    assert 4 < await limiter.paused_for("integration-1") <= 5


def test_parse_rate_limit_headers_delay_form() -> None:
    assert parse_rate_limit_headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}) == (
        0,
        12.0,
    )
    assert parse_rate_limit_headers({"ratelimit-remaining": "5", "ratelimit-reset": "3"}) == (5, 3)


def test_parse_rate_limit_headers_epoch_form() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000060"}
    assert parse_rate_limit_headers(headers, now=1_700_000_000) == (0, 60)


def test_parse_rate_limit_headers_missing_or_garbage() -> None:
    assert parse_rate_limit_headers({}) == (None, None)
    assert parse_rate_limit_headers({"X-RateLimit-Remaining": "lots"}) == (None, None)
    assert parse_rate_limit_headers({"X-RateLimit-Remaining": "10, 2"}) == (2, None)


async def test_acquire_unless_takes_nothing_while_the_gate_exists(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(requests_per_minute=1)
    await stores[1].set("cb:{k}", b"open")  # another replica's breaker state
    assert await limiter.acquire_unless("cb:{k}", "k", config) is None
    await stores[1].delete("cb:{k}")
    lease = await limiter.acquire_unless("cb:{k}", "k", config)
    assert lease is not None
    assert not lease.holds_slot
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire_unless("cb:{k}", "k", config)


async def test_acquire_unless_sees_a_gate_set_while_it_waits_for_room(
    stores: tuple[KeyValueStore, ...],
) -> None:
    limiter = RateLimiter(stores[0])
    config = RateLimitConfig(requests_per_minute=60, burst_size=1)  # one call per second
    burst = RateLimiter.windows(config)[-1].window_s
    assert burst == pytest.approx(1.0)
    await limiter.acquire("k", config)

    async def open_the_gate() -> None:
        await asyncio.sleep(burst / 4)
        await stores[1].set("cb:{k}", b"open")

    opener = asyncio.create_task(open_the_gate())
    # Refused for about a second, it waits; its next try finds the gate and takes nothing.
    waited = await limiter.acquire_unless("cb:{k}", "k", config, time.monotonic() + burst * 4)
    await opener
    assert waited is None
    await stores[1].delete("cb:{k}")
    assert await limiter.acquire_unless("cb:{k}", "k", config) is not None


async def test_only_windows_without_slots_check_a_gate() -> None:
    assert RateLimiter.checks_gate(RateLimitConfig(requests_per_minute=5))
    assert not RateLimiter.checks_gate(RateLimitConfig())
    assert not RateLimiter.checks_gate(
        RateLimitConfig(requests_per_minute=5, concurrent_requests=2)
    )
    with pytest.raises(ValueError, match="windows and no concurrency"):
        await RateLimiter(MemoryStore()).acquire_unless("g", "k", RateLimitConfig())
