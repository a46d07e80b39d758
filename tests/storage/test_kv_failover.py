"""FailoverStore: the in-process fallback while the shared store is down, and the way back."""

from __future__ import annotations

import pytest

from adaptor.storage.kv import StoreUnavailable, Window
from adaptor.storage.kv_failover import FailoverStore
from adaptor.storage.kv_memory import MemoryStore


class FlakyStore(MemoryStore):
    """An in-process store that can be switched off, as Redis going away looks to a client."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def _check_open(self) -> None:
        self.calls += 1
        if self.down:
            raise StoreUnavailable("connection refused")
        super()._check_open()

    async def ping(self) -> bool:
        return not self.down


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def primary() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def store(primary: FlakyStore, clock: Clock) -> FailoverStore:
    return FailoverStore(primary, retry_after_s=2.0, clock=clock)


async def test_a_healthy_primary_holds_everything(
    store: FailoverStore, primary: FlakyStore
) -> None:
    await store.set("k", b"v")
    assert await primary.get("k") == b"v"
    assert await store.get("k") == b"v"
    assert store.degraded is False


async def test_while_the_primary_is_down_the_fallback_answers(
    store: FailoverStore, primary: FlakyStore
) -> None:
    primary.down = True
    await store.set("k", b"v")
    assert store.degraded is True
    assert await store.get("k") == b"v"
    windows = [Window(2, 60)]
    hits = [(await store.hit("rl", windows)).allowed for _ in range(3)]
    assert hits == [True, True, False]  # limits still hold, per process


async def test_the_primary_is_probed_once_per_interval_not_on_every_call(
    store: FailoverStore, primary: FlakyStore, clock: Clock
) -> None:
    primary.down = True
    await store.get("k")
    tried = primary.calls
    for _ in range(5):
        await store.get("k")
    assert primary.calls == tried
    clock.now += 2.5
    await store.get("k")
    assert primary.calls == tried + 1
    assert store.degraded is True


async def test_a_successful_probe_ends_degraded_mode(
    store: FailoverStore, primary: FlakyStore, clock: Clock
) -> None:
    primary.down = True
    await store.set("k", b"during")
    primary.down = False
    await primary.set("k", b"shared")
    assert await store.get("k") == b"during"  # not probed yet
    clock.now += 2.5
    assert await store.get("k") == b"shared"
    assert store.degraded is False


async def test_ping_reports_the_primary_and_ends_degraded_mode(
    store: FailoverStore, primary: FlakyStore
) -> None:
    primary.down = True
    await store.get("k")
    assert await store.ping() is False
    primary.down = False
    assert await store.ping() is True
    assert store.degraded is False


async def test_the_view_without_fallback_fails_fast_while_degraded(
    store: FailoverStore, primary: FlakyStore
) -> None:
    shared_only = store.without_fallback()
    await shared_only.set("k", b"v")
    assert await primary.get("k") == b"v"
    primary.down = True
    await store.get("other")  # the store notices; the view shares what it learned
    tried = primary.calls
    with pytest.raises(StoreUnavailable):
        await shared_only.get("k")
    assert primary.calls == tried
    await shared_only.close()
    primary.down = False
    assert await primary.get("k") == b"v"  # closing the view closed nothing


async def test_locks_work_in_degraded_mode(store: FailoverStore, primary: FlakyStore) -> None:
    primary.down = True
    async with store.lock("mutex", ttl_s=5, wait_s=0) as held:
        assert held is True
        async with store.lock("mutex", ttl_s=5, wait_s=0) as again:
            assert again is False
