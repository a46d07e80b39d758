"""`FailoverStore`: the shared store while it answers, an in-process one while it does not.

If Redis goes down, executions must go on: rate limits and circuit breakers keep working
per process (on a `MemoryStore`) instead of failing every call, and `degraded` says so (the
readiness check reports it). The response cache uses `without_fallback()`, a view that fails
fast while degraded, so it behaves as "no cache" rather than as a per-process cache that
other replicas' invalidations would never reach.

    healthy ──(an operation raises StoreUnavailable)──► degraded
    degraded ──(retry_after_s passed: one operation probes the primary; it answers)──► healthy
    degraded ──(ping() answers, e.g. the readiness check)──► healthy

While degraded, every operation goes to the fallback at once, except a single probe per
`retry_after_s`, so a Redis that hangs costs one socket timeout per interval, not one per
call. State written to the fallback is not copied back: after recovery, limits and breakers
continue from what Redis holds. Publish and subscribe always go to the primary: a notice has
nobody to reach in the fallback, and the subscriber (`RuntimeCache`) retries on its own.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import structlog

from adaptor.storage.kv import (
    HitResult,
    KeyValueStore,
    StoreUnavailable,
    Subscription,
    Window,
    token_lock,
)
from adaptor.storage.kv_memory import MemoryStore

__all__ = ["FailoverStore"]

log = structlog.get_logger("adaptor.storage.failover")

T = TypeVar("T")


class _Health:
    """The primary's health, shared by a store and its views."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.degraded = False
        self.probe_at = 0.0
        self.probing = False


class FailoverStore:
    """A `KeyValueStore` over `primary` that falls back to `fallback` (by default a new
    `MemoryStore`) while the primary is unavailable. See the module docstring."""

    def __init__(
        self,
        primary: KeyValueStore,
        fallback: KeyValueStore | None = None,
        *,
        retry_after_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback: KeyValueStore = fallback if fallback is not None else MemoryStore()
        self.retry_after_s = retry_after_s
        self._health = _Health(clock)
        self._fallback_enabled = True

    @property
    def degraded(self) -> bool:
        """Whether the primary is considered unavailable."""
        return self._health.degraded

    def without_fallback(self) -> FailoverStore:
        """A view on the same primary that raises `StoreUnavailable` at once while degraded
        (for state that must be shared or not kept at all, like cached responses)."""
        view = copy.copy(self)  # the same stores and the same health
        view._fallback_enabled = False
        return view

    # -- routing ---------------------------------------------------------------------------

    async def _run(self, operation: Callable[[KeyValueStore], Awaitable[T]]) -> T:
        health = self._health
        probe = False
        if health.degraded:
            if health.probing or health.clock() < health.probe_at:
                return await self._fallback(operation)
            health.probing = probe = True
        try:
            result = await operation(self.primary)
        except StoreUnavailable as exc:
            self._went_down(exc)
            return await self._fallback(operation)
        finally:
            if probe:
                health.probing = False
        if health.degraded:
            self._came_back()
        return result

    async def _fallback(self, operation: Callable[[KeyValueStore], Awaitable[T]]) -> T:
        if not self._fallback_enabled:
            raise StoreUnavailable("the shared store is unavailable (degraded mode)")
        return await operation(self.fallback)

    def _went_down(self, exc: StoreUnavailable) -> None:
        health = self._health
        if not health.degraded:
            log.warning("storage.degraded", error=str(exc), fallback="in-process")
        health.degraded = True
        health.probe_at = health.clock() + self.retry_after_s

    def _came_back(self) -> None:
        self._health.degraded = False
        log.warning("storage.recovered")

    # -- the contract ----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        return await self._run(lambda store: store.get(key))

    async def set(
        self, key: str, value: bytes, ttl_s: float | None = None, *, only_if_absent: bool = False
    ) -> bool:
        return await self._run(
            lambda store: store.set(key, value, ttl_s, only_if_absent=only_if_absent)
        )

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl_s: float | None = None
    ) -> bool:
        return await self._run(lambda store: store.compare_and_set(key, expected, value, ttl_s))

    async def delete(self, *keys: str) -> int:
        return await self._run(lambda store: store.delete(*keys))

    async def delete_prefix(self, prefix: str) -> int:
        return await self._run(lambda store: store.delete_prefix(prefix))

    async def ttl(self, key: str) -> float | None:
        return await self._run(lambda store: store.ttl(key))

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return await self._run(lambda store: store.incr(key, amount, ttl_s))

    async def hit(
        self,
        key: str,
        windows: Sequence[Window],
        cost: int = 1,
        *,
        hold_key: str | None = None,
        gate_key: str | None = None,
    ) -> HitResult:
        return await self._run(
            lambda store: store.hit(key, windows, cost, hold_key=hold_key, gate_key=gate_key)
        )

    async def acquire_slot(self, key: str, limit: int, ttl_s: float) -> str | None:
        return await self._run(lambda store: store.acquire_slot(key, limit, ttl_s))

    async def release_slot(self, key: str, token: str) -> bool:
        return await self._run(lambda store: store.release_slot(key, token))

    def lock(self, name: str, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[bool]:
        return token_lock(self, name, ttl_s, wait_s)

    async def publish(self, channel: str, message: bytes) -> int:
        return await self.primary.publish(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        return self.primary.subscribe(channel)

    async def ping(self) -> bool:
        """Whether the primary answers; an answer ends degraded mode at once."""
        answered = await self.primary.ping()
        if answered and self._health.degraded:
            self._came_back()
        return answered

    async def close(self) -> None:
        if self._fallback_enabled:  # a view shares its stores with the store that made it
            await self.primary.close()
            await self.fallback.close()
