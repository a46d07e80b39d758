"""`ResponseCache`: execution results in the shared store, with single-flight filling.

Keys are `cache:<tenant>:<integration>:<endpoint>:<sha256 of the selected inputs>`, each part
percent-encoded so that no id can forge another's prefix; `invalidate` deletes by prefix. The
inputs hashed are the endpoint's `cache_key_fields` (dot paths into the input) or, when none are
configured, the whole input; the hash is over canonical JSON (sorted keys), so key order and
formatting never split one entry into two.

`get_or_compute` makes one upstream call for N concurrent identical misses:
- in one process, callers share one in-flight task;
- across processes, the filler holds a store lock (`cache-lock:<key>`); the others poll for the
  value, and when the lock goes away without a value (holder died, or its call failed) one of
  them takes over. Nobody waits longer than `wait_s`: after that a waiter computes itself.

With `stale_s`, every entry also leaves a copy under `<key>:stale` that outlives it by `stale_s`
seconds. Lookups never see it; `get_stale` does, so a caller can serve the last good answer
while the upstream is unavailable (the execution pipeline does while a circuit is open).
Invalidation drops both, since they share the prefix.

A cache must never fail an execution: when the store errors, the cache logs it and behaves as
a miss (and the value is computed without single-flight across processes).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import structlog

from adaptor.flights import Flights
from adaptor.storage.kv import KeyValueStore, StoreError

__all__ = ["CacheHit", "CacheResult", "ResponseCache"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A cached value (which may itself be None)."""

    value: Any


@dataclass(frozen=True, slots=True)
class CacheResult:
    """What `get_or_compute` returns: the value, and whether this caller got it without making
    the call itself (from the store, or from another caller's in-flight call)."""

    value: Any
    cached: bool


@functools.lru_cache(maxsize=4096)
def _part(value: str) -> str:
    """One key part, quoted (ids and names repeat on every call: memoised)."""
    return quote(value, safe="")


def _select(inputs: Mapping[str, Any], path: str) -> Any:
    current: Any = inputs
    for step in path.split("."):
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return None
    return current


class ResponseCache:
    """Serialized (orjson) results with a TTL on a `KeyValueStore`, filled single-flight.

    `lock_ttl_s` bounds how long a dead filler blocks others; `wait_s` bounds how long a caller
    waits for another's fill before computing itself; `stale_s` is how long a stale copy
    outlives each entry (0 keeps none).
    """

    STALE_SUFFIX = ":stale"

    def __init__(
        self,
        store: KeyValueStore,
        *,
        stale_s: float = 0.0,
        lock_ttl_s: float = 30.0,
        wait_s: float = 10.0,
        poll_interval_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._stale_s = stale_s
        self._lock_ttl_s = lock_ttl_s
        self._wait_s = wait_s
        self._poll_interval_s = poll_interval_s
        self._clock = clock
        self._sleep = sleep
        self._inflight: Flights[str, tuple[bytes, bool]] = Flights()

    # -- keys ------------------------------------------------------------------------------

    @staticmethod
    def prefix(tenant_id: str, integration_id: str, endpoint: str | None = None) -> str:
        """The key prefix of one endpoint's entries, or of a whole integration's."""
        prefix = f"cache:{_part(tenant_id)}:{_part(integration_id)}:"
        return prefix if endpoint is None else f"{prefix}{_part(endpoint)}:"

    @classmethod
    def key(
        cls,
        tenant_id: str,
        integration_id: str,
        endpoint: str,
        inputs: Mapping[str, Any],
        key_fields: Sequence[str] = (),
    ) -> str:
        """The entry key for `inputs`: only `key_fields` (dot paths) count when given."""
        selected: Any = (
            {path: _select(inputs, path) for path in key_fields} if key_fields else dict(inputs)
        )
        canonical = orjson.dumps(
            selected, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
        )
        digest = hashlib.sha256(canonical).hexdigest()
        return f"{cls.prefix(tenant_id, integration_id, endpoint)}{digest}"

    # -- plain access ----------------------------------------------------------------------

    async def get(self, key: str) -> CacheHit | None:
        """The cached value at `key`, or None on a miss (or when the store fails)."""
        raw = await self._get_raw(key)
        return None if raw is None else CacheHit(orjson.loads(raw))

    async def get_stale(self, key: str) -> CacheHit | None:
        """The last value cached at `key`, even if it has expired, for as long as its stale
        copy lives (None without `stale_s`, or when the store fails)."""
        if self._stale_s <= 0:
            return None
        raw = await self._get_raw(key + self.STALE_SUFFIX)
        return None if raw is None else CacheHit(orjson.loads(raw))

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        """Cache `value` (anything orjson serializes) for `ttl_s` seconds; 0 stores nothing."""
        if ttl_s > 0:
            await self._set_raw(key, orjson.dumps(value), ttl_s)

    async def invalidate(
        self, tenant_id: str, integration_id: str, endpoint: str | None = None
    ) -> int:
        """Drop one endpoint's entries, or the whole integration's; how many were dropped."""
        try:
            return await self._store.delete_prefix(self.prefix(tenant_id, integration_id, endpoint))
        except StoreError as exc:
            log.warning("cache.invalidate_failed", integration_id=integration_id, error=str(exc))
            return 0

    # -- single-flight ---------------------------------------------------------------------

    async def get_or_compute(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[Any]],
        *,
        should_cache: Callable[[Any], bool] | None = None,
    ) -> CacheResult:
        """The value at `key`, computing and caching it on a miss; concurrent misses for one
        key (here or in other processes sharing the store) make one `compute` call.

        `should_cache` can veto storing a computed value (e.g. a failed execution); an
        exception from `compute` reaches every caller waiting on that call and is not cached.
        """
        if ttl_s <= 0:
            return CacheResult(await compute(), cached=False)
        raw = await self._get_raw(key)
        if raw is not None:
            return CacheResult(orjson.loads(raw), cached=True)
        flight, leader = self._inflight.join(
            key, lambda: self._fill(key, ttl_s, compute, should_cache)
        )
        filled, from_store = await flight
        return CacheResult(orjson.loads(filled), cached=from_store or not leader)

    async def _fill(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[Any]],
        should_cache: Callable[[Any], bool] | None,
    ) -> tuple[bytes, bool]:
        """(serialized value, whether it came from the store rather than our own compute)."""
        lock_name = f"cache-lock:{key}"
        give_up_at = self._clock() + self._wait_s
        computing = False
        while self._clock() < give_up_at:
            try:
                async with self._store.lock(lock_name, self._lock_ttl_s, wait_s=0) as held:
                    if held:
                        raw = await self._store.get(key)
                        if raw is not None:  # filled between our miss and our lock
                            return raw, True
                        computing = True
                        return await self._compute(key, ttl_s, compute, should_cache), False
                raw = await self._await_fill(key, lock_name, give_up_at)
            except StoreError as exc:
                if computing:
                    raise  # from `compute` itself: the caller's error, not the cache's
                log.warning("cache.store_error", error=str(exc))
                break
            if raw is not None:
                return raw, True
        return await self._compute(key, ttl_s, compute, should_cache), False

    async def _await_fill(self, key: str, lock_name: str, give_up_at: float) -> bytes | None:
        """Poll until the value appears (it), the lock is gone without one, or time is up."""
        pause = self._poll_interval_s / 4
        while True:
            raw = await self._store.get(key)
            if raw is not None:
                return raw
            if await self._store.get(lock_name) is None:
                return await self._store.get(key)
            remaining = give_up_at - self._clock()
            if remaining <= 0:
                return None
            await self._sleep(min(pause, remaining))
            pause = min(pause * 2, self._poll_interval_s)

    async def _compute(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[Any]],
        should_cache: Callable[[Any], bool] | None,
    ) -> bytes:
        value = await compute()
        raw = orjson.dumps(value)
        if should_cache is None or should_cache(value):
            await self._set_raw(key, raw, ttl_s)
        return raw

    async def _get_raw(self, key: str) -> bytes | None:
        try:
            return await self._store.get(key)
        except StoreError as exc:
            log.warning("cache.store_error", error=str(exc))
            return None

    async def _set_raw(self, key: str, raw: bytes, ttl_s: float) -> None:
        try:
            await self._store.set(key, raw, ttl_s)
            if self._stale_s > 0:
                await self._store.set(key + self.STALE_SUFFIX, raw, ttl_s + self._stale_s)
        except StoreError as exc:
            log.warning("cache.store_error", error=str(exc))
