"""`Flights`: one call per key in flight, shared by its callers, and a cancelled caller does not
cancel it for the others."""

from __future__ import annotations

import asyncio

import pytest

from adaptor.flights import Flights


async def test_callers_of_one_key_share_one_call_and_only_the_first_leads() -> None:
    flights: Flights[str, int] = Flights()
    started = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal started
        started += 1
        await gate.wait()
        return 42

    joined = [flights.join("k", load) for _ in range(10)]
    other, other_leader = flights.join("other", load)
    assert [leader for _flight, leader in joined] == [True] + [False] * 9
    assert other_leader
    gate.set()
    assert await asyncio.gather(*(flight for flight, _ in joined)) == [42] * 10
    assert await other == 42
    assert started == 2
    await asyncio.sleep(0)
    assert len(flights) == 0  # landed calls are not kept


async def test_a_cancelled_caller_leaves_the_call_to_the_others() -> None:
    flights: Flights[str, str] = Flights()
    gate = asyncio.Event()

    async def load() -> str:
        await gate.wait()
        return "done"

    first, _ = flights.join("k", load)
    second, _ = flights.join("k", load)
    waiting = asyncio.ensure_future(first)
    await asyncio.sleep(0)
    waiting.cancel()
    gate.set()
    assert await second == "done"
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_an_error_reaches_every_caller_and_the_next_call_starts_afresh() -> None:
    flights: Flights[str, int] = Flights()
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the store is down")
        return 7

    first, _ = flights.join("k", load)
    second, _ = flights.join("k", load)
    for flight in (first, second):
        with pytest.raises(RuntimeError, match="the store is down"):
            await flight
    await asyncio.sleep(0)
    again, leader = flights.join("k", load)
    assert leader
    assert await again == 7


async def test_after_forget_the_next_caller_starts_a_new_call_and_the_old_one_still_lands() -> None:
    flights: Flights[str, str] = Flights()
    gate = asyncio.Event()
    versions = iter(["before the change", "after the change"])

    async def load() -> str:
        version = next(versions)
        await gate.wait()
        return version

    stale, _ = flights.join("k", load)
    flights.forget("k")
    fresh, leader = flights.join("k", load)
    assert leader
    gate.set()
    assert await stale == "before the change"
    assert await fresh == "after the change"
    await asyncio.sleep(0)
    assert len(flights) == 0


async def test_launch_starts_one_background_call_per_key_and_keeps_its_failure_quiet() -> None:
    flights: Flights[str, None] = Flights()
    gate = asyncio.Event()
    calls = 0

    async def refresh() -> None:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise RuntimeError("the store is down")

    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        for _ in range(5):
            flights.launch("k", refresh)
        await asyncio.sleep(0)
        assert calls == 1
        assert len(flights) == 1
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(flights) == 0
        flights.launch("k", refresh)  # landed: the next launch starts a new call
        await asyncio.sleep(0)
        assert calls == 2
        flights.cancel()
        assert len(flights) == 0
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert reported == []
