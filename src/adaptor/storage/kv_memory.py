"""`MemoryStore`: the key-value contract inside one process (embedded mode, tests).

Every operation runs without yielding to the event loop, so each is atomic with respect to
other tasks, which is what the Lua scripts give `RedisStore`. Expiry is honest: an expired key
is invisible to every read, and expired entries are purged as time passes (a heap of expiry
times), so memory does not grow with keys nobody reads again.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import math
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from adaptor.storage.kv import HitResult, StoreError, Window, token_lock

__all__ = ["MemoryStore"]

# A value is bytes (plain keys), a sorted list of hit times (`hit`) or slot token → expiry.
_Value = bytes | list[float] | dict[str, float]


@dataclass(slots=True)
class _Entry:
    value: _Value
    expires_at: float | None
    seq: int


class MemoryStore:
    """The `KeyValueStore` contract for a single process, on asyncio.

    `clock` (monotonic seconds) is injectable so tests can move time.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, _Entry] = {}
        self._expiries: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._channels: dict[str, set[asyncio.Queue[bytes]]] = {}
        self._closed = False

    # -- internals -------------------------------------------------------------------------

    def _now(self) -> float:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, seq, key = heapq.heappop(self._expiries)
            entry = self._data.get(key)
            if entry is None or entry.seq != seq or entry.expires_at is None:
                continue
            if entry.expires_at <= now:
                del self._data[key]
            else:
                # Extended in place since it was scheduled: one heap item per entry, re-armed.
                heapq.heappush(self._expiries, (entry.expires_at, seq, key))
        return now

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            del self._data[key]
            return None
        return entry

    def _put(self, key: str, value: _Value, expires_at: float | None) -> None:
        seq = next(self._seq)
        self._data[key] = _Entry(value, expires_at, seq)
        if expires_at is not None:
            heapq.heappush(self._expiries, (expires_at, seq, key))

    def _expire_at(self, key: str, entry: _Entry, expires_at: float) -> None:
        """Change a live entry's expiry. Extending reuses its heap item, which re-arms itself
        when it fires early; anything else schedules a new item under a new seq."""
        if entry.expires_at is not None and expires_at >= entry.expires_at:
            entry.expires_at = expires_at
            return
        entry.seq = next(self._seq)
        entry.expires_at = expires_at
        heapq.heappush(self._expiries, (expires_at, entry.seq, key))

    @staticmethod
    def _expiry(now: float, ttl_s: float | None) -> float | None:
        if ttl_s is None:
            return None
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        return now + ttl_s

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @staticmethod
    def _bytes(key: str, entry: _Entry) -> bytes:
        if not isinstance(entry.value, bytes):
            raise StoreError(f"{key!r} does not hold a plain value")
        return entry.value

    # -- plain values ----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        self._check_open()
        entry = self._live(key, self._now())
        return None if entry is None else self._bytes(key, entry)

    async def set(
        self, key: str, value: bytes, ttl_s: float | None = None, *, only_if_absent: bool = False
    ) -> bool:
        self._check_open()
        now = self._now()
        expires_at = self._expiry(now, ttl_s)
        if only_if_absent and self._live(key, now) is not None:
            return False
        self._put(key, bytes(value), expires_at)
        return True

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl_s: float | None = None
    ) -> bool:
        self._check_open()
        now = self._now()
        expires_at = self._expiry(now, ttl_s)
        entry = self._live(key, now)
        current = None if entry is None else self._bytes(key, entry)
        if current != expected:
            return False
        if value is None:
            self._data.pop(key, None)
        else:
            self._put(key, bytes(value), expires_at)
        return True

    async def delete(self, *keys: str) -> int:
        self._check_open()
        now = self._now()
        deleted = 0
        for key in keys:
            if self._live(key, now) is not None:
                del self._data[key]
                deleted += 1
        return deleted

    async def delete_prefix(self, prefix: str) -> int:
        self._check_open()
        now = self._now()
        deleted = 0
        for key in [key for key in self._data if key.startswith(prefix)]:
            if self._live(key, now) is not None:
                del self._data[key]
                deleted += 1
        return deleted

    async def ttl(self, key: str) -> float | None:
        self._check_open()
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return None
        return math.inf if entry.expires_at is None else entry.expires_at - now

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        self._check_open()
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            self._put(key, str(amount).encode(), self._expiry(now, ttl_s))
            return amount
        try:
            total = int(self._bytes(key, entry)) + amount
        except ValueError:
            raise StoreError(f"{key!r} does not hold an integer") from None
        entry.value = str(total).encode()
        return total

    # -- rate-limit primitives -------------------------------------------------------------

    async def hit(
        self,
        key: str,
        windows: Sequence[Window],
        cost: int = 1,
        *,
        hold_key: str | None = None,
        gate_key: str | None = None,
    ) -> HitResult:
        self._check_open()
        if cost < 1:
            raise ValueError("cost must be at least 1")
        if not windows:
            return HitResult(True)
        now = self._now()
        if gate_key is not None and self._live(gate_key, now) is not None:
            return HitResult(False, gated=True)
        if hold_key is not None:
            hold = self._live(hold_key, now)
            if hold is not None:
                left = math.inf if hold.expires_at is None else hold.expires_at - now
                return HitResult(False, left, held=True)
        entry = self._live(key, now)
        log: list[float] = []
        if entry is not None:
            if not isinstance(entry.value, list):
                raise StoreError(f"{key!r} does not hold a window log")
            log = entry.value
        wait = 0.0
        for window in windows:
            if cost > window.limit:
                return HitResult(False, math.inf)
            start = bisect.bisect_right(log, now - window.window_s)
            count = len(log) - start
            if count + cost > window.limit:
                oldest_needed = log[start + count + cost - window.limit - 1]
                wait = max(wait, oldest_needed + window.window_s - now)
        if wait > 0:
            return HitResult(False, wait)
        longest = max(window.window_s for window in windows)
        del log[: bisect.bisect_right(log, now - longest)]
        log.extend([now] * cost)
        if entry is None:
            self._put(key, log, now + longest)
        else:
            self._expire_at(key, entry, now + longest)
        return HitResult(True)

    async def acquire_slot(self, key: str, limit: int, ttl_s: float) -> str | None:
        self._check_open()
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        now = self._now()
        expires_at = now + ttl_s
        entry = self._live(key, now)
        slots: dict[str, float] = {}
        if entry is not None:
            if not isinstance(entry.value, dict):
                raise StoreError(f"{key!r} does not hold slots")
            slots = entry.value
        for token in [t for t, until in slots.items() if until <= now]:
            del slots[token]
        if len(slots) >= limit:
            return None
        token = secrets.token_hex(12)
        slots[token] = expires_at
        if entry is None:
            self._put(key, slots, expires_at)
        else:
            self._expire_at(key, entry, max(expires_at, *slots.values()))
        return token

    async def release_slot(self, key: str, token: str) -> bool:
        self._check_open()
        now = self._now()
        entry = self._live(key, now)
        if entry is None or not isinstance(entry.value, dict):
            return False
        until = entry.value.pop(token, None)
        return until is not None and until > now

    # -- locks and notices -----------------------------------------------------------------

    def lock(self, name: str, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[bool]:
        return token_lock(self, name, ttl_s, wait_s)

    async def publish(self, channel: str, message: bytes) -> int:
        self._check_open()
        queues = self._channels.get(channel, set())
        for queue in queues:
            queue.put_nowait(bytes(message))
        return len(queues)

    def subscribe(self, channel: str) -> _MemorySubscription:
        return _MemorySubscription(self._channels, channel)

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        self._data.clear()
        self._expiries.clear()


class _MemorySubscription:
    def __init__(self, channels: dict[str, set[asyncio.Queue[bytes]]], channel: str) -> None:
        self._channels = channels
        self._channel = channel
        self._queue: asyncio.Queue[bytes] | None = None
        self._closed = False

    def _ensure(self) -> asyncio.Queue[bytes]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._channels.setdefault(self._channel, set()).add(self._queue)
        return self._queue

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        return await self._ensure().get()

    async def __aenter__(self) -> Self:
        self._ensure()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._queue is not None:
            subscribers = self._channels.get(self._channel)
            if subscribers is not None:
                subscribers.discard(self._queue)
                if not subscribers:
                    del self._channels[self._channel]
            self._queue = None
