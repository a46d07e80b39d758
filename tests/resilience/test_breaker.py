"""CircuitBreaker: every transition, probes, epochs, and replicas sharing one breaker."""

from __future__ import annotations

import asyncio

import pytest

from adaptor.domain import RetryConfig
from adaptor.resilience.breaker import CircuitBreaker, CircuitOpenError, CircuitState, Permit
from adaptor.resilience.policy import classify_status
from adaptor.storage.kv import KeyValueStore
from adaptor.storage.kv_memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(
    store: KeyValueStore, clock: Clock, *, threshold: int = 3, probes: int = 1
) -> CircuitBreaker:
    return CircuitBreaker(
        store,
        "integration-1",
        failure_threshold=threshold,
        recovery_timeout_s=30,
        half_open_max_probes=probes,
        probe_timeout_s=10,
        clock=clock,
    )


async def trip(cb: CircuitBreaker) -> None:
    for _ in range(cb.failure_threshold):
        await cb.record_failure(await cb.allow())


async def test_starts_closed_and_lets_calls_through(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    assert await cb.state() is CircuitState.CLOSED
    permit = await cb.allow()
    assert permit.probe is False


async def test_a_healthy_breaker_stores_nothing(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await cb.record_success(await cb.allow())
    assert await stores[0].get(cb.store_key) is None
    await cb.record_failure(await cb.allow())
    assert await stores[0].get(cb.store_key) is not None
    assert cb.store_key == "cb:{integration-1}"  # the rate limiter's hash tag


class CountingStore(MemoryStore):
    """Counts the round trips a breaker makes."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        return await super().get(key)


async def test_a_healthy_call_costs_one_read(clock: Clock) -> None:
    store = CountingStore()
    cb = breaker(store, clock)
    permit = await cb.allow()
    await cb.record_success(permit)
    await cb.release(await cb.allow())
    assert permit.healthy
    assert store.reads == 2  # one per allow(), nothing for the outcome


async def test_record_says_when_it_opened_the_circuit(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, threshold=2)
    assert await cb.record_failure(await cb.allow()) is False
    assert await cb.record_failure(await cb.allow()) is True
    assert await cb.record_failure() is False  # already open


async def test_closed_opens_after_threshold_consecutive_failures(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, threshold=3)
    for _ in range(2):
        await cb.record_failure(await cb.allow())
    assert await cb.state() is CircuitState.CLOSED
    await cb.record_failure(await cb.allow())
    assert await cb.state() is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as refused:
        await cb.allow()
    assert refused.value.retry_after_s == pytest.approx(30)


async def test_a_success_ends_the_failure_streak(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, threshold=3)
    await cb.record_failure(await cb.allow())
    await cb.record_failure(await cb.allow())
    await cb.record_success(await cb.allow())
    await cb.record_failure(await cb.allow())
    await cb.record_failure(await cb.allow())
    snapshot = await cb.snapshot()
    assert (snapshot.state, snapshot.consecutive_failures) == (CircuitState.CLOSED, 2)


async def test_client_errors_do_not_open_the_circuit(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, threshold=2)
    for status in (404, 422, 400, 404):
        await cb.record(classify_status(status, RetryConfig()).breaker, await cb.allow())
    assert await cb.state() is CircuitState.CLOSED
    for status in (503, 429):
        await cb.record(classify_status(status, RetryConfig()).breaker, await cb.allow())
    assert await cb.state() is CircuitState.OPEN


async def test_open_refuses_with_the_remaining_recovery_time(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    clock.now += 12
    with pytest.raises(CircuitOpenError) as refused:
        await cb.allow()
    assert refused.value.retry_after_s == pytest.approx(18)
    assert refused.value.retry_after == pytest.approx(18)


async def test_open_becomes_half_open_after_the_recovery_timeout(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    clock.now += 30
    assert await cb.state() is CircuitState.HALF_OPEN
    permit = await cb.allow()
    assert permit.probe is True
    assert (await cb.snapshot()).probes_in_flight == 1


async def test_half_open_lets_through_a_bounded_number_of_probes(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, probes=2)
    await trip(cb)
    clock.now += 30
    assert (await cb.allow()).probe
    assert (await cb.allow()).probe
    with pytest.raises(CircuitOpenError):
        await cb.allow()


async def test_half_open_closes_on_a_probe_success(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    clock.now += 30
    await cb.record_success(await cb.allow())
    assert await cb.state() is CircuitState.CLOSED
    assert (await cb.allow()).probe is False
    assert (await cb.snapshot()).consecutive_failures == 0


async def test_half_open_reopens_on_a_probe_failure_and_restarts_the_timer(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    clock.now += 30
    probe = await cb.allow()
    clock.now += 5
    await cb.record_failure(probe)
    assert await cb.state() is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as refused:
        await cb.allow()
    assert refused.value.retry_after_s == pytest.approx(30)


async def test_a_vanished_probe_frees_its_place_after_the_probe_timeout(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    clock.now += 30
    await cb.allow()  # its holder never reports back
    with pytest.raises(CircuitOpenError):
        await cb.allow()
    clock.now += 10
    assert (await cb.allow()).probe


async def test_releasing_a_probe_frees_its_place_without_a_verdict(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    clock.now += 30
    probe = await cb.allow()
    await cb.release(probe)
    assert await cb.state() is CircuitState.HALF_OPEN
    assert (await cb.allow()).probe


async def test_late_results_from_an_earlier_epoch_are_ignored(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, threshold=1)
    slow_call = await cb.allow()
    await cb.record_failure(await cb.allow())  # opens
    await cb.record_failure(slow_call)  # arrives while open: ignored
    clock.now += 30
    await cb.record_success(await cb.allow())  # the probe closes it
    await cb.record_failure(slow_call)  # arrives after closing: ignored
    assert await cb.state() is CircuitState.CLOSED


async def test_a_result_without_a_permit_applies_to_the_current_state(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    cb = breaker(stores[0], clock, threshold=2)
    await cb.record_failure()
    await cb.record_failure()
    assert await cb.state() is CircuitState.OPEN
    clock.now += 30
    await cb.record_success()
    assert await cb.state() is CircuitState.CLOSED


async def test_reset_closes_the_circuit(stores: tuple[KeyValueStore, ...], clock: Clock) -> None:
    cb = breaker(stores[0], clock)
    await trip(cb)
    await cb.reset()
    assert await cb.state() is CircuitState.CLOSED


async def test_replicas_share_one_breaker(stores: tuple[KeyValueStore, ...], clock: Clock) -> None:
    here, there = breaker(stores[0], clock), breaker(stores[1], clock)
    await trip(here)
    with pytest.raises(CircuitOpenError):
        await there.allow()
    clock.now += 30
    await there.record_success(await there.allow())
    assert (await here.allow()).probe is False


async def test_concurrent_probes_across_replicas_get_exactly_the_probe_places(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    replicas = [breaker(stores[i % 2], clock, probes=2) for i in range(20)]
    await trip(replicas[0])
    clock.now += 30

    async def try_allow(cb: CircuitBreaker) -> Permit | None:
        try:
            return await cb.allow()
        except CircuitOpenError:
            return None

    permits = await asyncio.gather(*(try_allow(cb) for cb in replicas))
    assert sum(p is not None for p in permits) == 2


async def test_concurrent_failures_across_replicas_open_the_circuit_once(
    stores: tuple[KeyValueStore, ...], clock: Clock
) -> None:
    replicas = [breaker(stores[i % 2], clock, threshold=5) for i in range(30)]
    permits = [await cb.allow() for cb in replicas]
    await asyncio.gather(*(cb.record_failure(p) for cb, p in zip(replicas, permits, strict=True)))
    snapshot = await replicas[0].snapshot()
    assert snapshot.state is CircuitState.OPEN
    # Failures after it opened belong to the closed epoch and did not move the open time.
    assert snapshot.retry_after_s == pytest.approx(30)
    assert snapshot.consecutive_failures == 5


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(MemoryStore(), "k", failure_threshold=0)
    with pytest.raises(ValueError, match="half_open_max_probes"):
        CircuitBreaker(MemoryStore(), "k", half_open_max_probes=0)
