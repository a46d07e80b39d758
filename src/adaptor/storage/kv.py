"""The shared key-value store: one small async interface, two backends.

`RedisStore` (kv_redis) is what replicas share; `MemoryStore` (kv_memory) is the same contract
inside one process, for the embedded mode and for tests. Everything that must hold across
replicas (rate-limit windows, concurrency slots, breaker state, cache single-flight locks) is
built on the operations below, each of which is atomic on both backends:

- plain values with a TTL: `get`, `set` (optionally only if absent), `compare_and_set`,
  `delete`, `delete_prefix`, `ttl`, `incr`;
- `hit`: a sliding-window log over several windows at once, all-or-nothing;
- `acquire_slot` / `release_slot`: a counting semaphore whose slots expire on their own;
- `lock`: a mutex with an owner token, built on `set(only_if_absent)` and `compare_and_set`;
- `publish` / `subscribe`: fire-and-forget notices (no delivery to late subscribers).

Keys are plain strings; the module that uses a key owns its prefix (`cb:`, `rl:`, `cache:`).
Failures of the backend itself surface as `StoreUnavailable` (cannot reach it) or `StoreError`.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

__all__ = [
    "HitResult",
    "KeyValueStore",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "Window",
    "token_lock",
    "ttl_ms",
]


class StoreError(Exception):
    """The store refused an operation (wrong value type, script error, persistent contention)."""


class StoreUnavailable(StoreError):
    """The store could not be reached or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` units of cost in any `window_s` seconds."""

    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a window's limit must be at least 1")
        if self.window_s <= 0:
            raise ValueError("a window must be longer than 0 seconds")


@dataclass(frozen=True, slots=True)
class HitResult:
    """Outcome of `hit`: whether the cost was admitted and, if not, how long until it would be.

    `retry_after_s` is 0 when allowed and `math.inf` when the cost exceeds a window's limit and
    so can never be admitted. `held` says the refusal came from the `hold_key` (its remaining
    time is `retry_after_s`), not from a window.
    """

    allowed: bool
    retry_after_s: float = 0.0
    held: bool = False
    gated: bool = False
    """Refused because the `gate_key` exists: nothing was checked or recorded."""


class Subscription(Protocol):
    """Messages published on one channel after the subscription was made.

    Use as `async with store.subscribe(ch) as sub: async for message in sub: ...`; entering
    the context makes the subscription, so nothing published afterwards is missed.
    """

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> bytes: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None: ...


class KeyValueStore(Protocol):
    """The async key-value contract both backends implement with the same semantics.

    TTLs are seconds and must be positive; `None` means no expiry.
    """

    async def get(self, key: str) -> bytes | None:
        """The value at `key`, or None when absent or expired."""
        ...

    async def set(
        self, key: str, value: bytes, ttl_s: float | None = None, *, only_if_absent: bool = False
    ) -> bool:
        """Store `value`; with `only_if_absent`, only when nothing is there. True if written."""
        ...

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl_s: float | None = None
    ) -> bool:
        """Atomically replace the value at `key` if it still equals `expected`.

        `expected=None` means "only if absent"; `value=None` deletes. True if it swapped.
        """
        ...

    async def delete(self, *keys: str) -> int:
        """Delete `keys`; the number that existed."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with `prefix` (incrementally, never blocking the store)."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires; `math.inf` if it never does; None if it is absent."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """Add `amount` to the integer at `key` (0 if absent) and return it.

        `ttl_s` applies only when this call creates the key, so a counter expires a fixed time
        after its first increment.
        """
        ...

    async def hit(
        self,
        key: str,
        windows: Sequence[Window],
        cost: int = 1,
        *,
        hold_key: str | None = None,
        gate_key: str | None = None,
    ) -> HitResult:
        """Admit `cost` units at `key` only if every window still has room, and record them.

        The check and the record are one atomic step across all windows: a refusal by one
        window consumes nothing from the others. While `hold_key` exists nothing is admitted
        or recorded (`held`, with its remaining time), checked in the same step: one round trip
        for "is this paused, and is there room". While `gate_key` exists (checked first, in
        the same step) nothing is admitted or recorded either (`gated`): the caller has
        something else to settle first, such as a circuit breaker that is not healthy. Keys
        sharing a step share a `{hash tag}`, so a clustered store can run it on one node.
        """
        ...

    async def acquire_slot(self, key: str, limit: int, ttl_s: float) -> str | None:
        """Take one of `limit` slots at `key`; its token, or None when all are taken.

        A slot not released within `ttl_s` frees itself, so a crashed holder cannot leak it.
        """
        ...

    async def release_slot(self, key: str, token: str) -> bool:
        """Give back the slot `token`; False if it had already expired or been released."""
        ...

    def lock(self, name: str, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[bool]:
        """Hold the mutex `name` for the block; yields whether it was acquired within `wait_s`.

        The lock expires after `ttl_s` if its holder dies, and is released only by its owner.
        """
        ...

    async def publish(self, channel: str, message: bytes) -> int:
        """Send `message` to the current subscribers of `channel`; how many received it."""
        ...

    def subscribe(self, channel: str) -> Subscription:
        """A subscription to `channel` (made when entered or first iterated)."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers."""
        ...

    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        ...


def ttl_ms(ttl_s: float) -> int:
    """A positive TTL in whole milliseconds, rounded up so a short TTL never becomes zero."""
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    return max(1, math.ceil(ttl_s * 1000))


@asynccontextmanager
async def token_lock(
    store: KeyValueStore,
    name: str,
    ttl_s: float,
    wait_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[bool]:
    """A mutex on any `KeyValueStore`: `set(only_if_absent)` with a random owner token,
    released by `compare_and_set(token → absent)` so a holder whose lock expired and was taken
    over cannot release its successor's lock."""
    token = secrets.token_hex(16).encode()
    acquired = await store.set(name, token, ttl_s, only_if_absent=True)
    deadline = clock() + wait_s
    pause = 0.005
    while not acquired:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        await sleep(min(pause, remaining))
        pause = min(pause * 2, 0.1)
        acquired = await store.set(name, token, ttl_s, only_if_absent=True)
    try:
        yield acquired
    finally:
        if acquired:
            # If the store is unreachable now the lock still expires after ttl_s.
            with suppress(StoreError):
                await store.compare_and_set(name, token, None)
