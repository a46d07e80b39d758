"""`RateLimiter`: keep one integration's calls within its `RateLimitConfig`, across replicas.

What is enforced, per key (usually the integration id), on the shared store:
- `requests_per_minute`, `requests_per_hour`: sliding windows — never more than N in any 60 s
  (3600 s) span, counted exactly (a log of hits, not an estimate).
- `burst_size`: how many calls may go out back to back. It is a third window, of
  `burst_size` calls per `burst_size / rate` seconds where the rate is the per-minute (else
  per-hour) one, so bursts are capped without lowering the sustained rate; with no rate set it
  is `burst_size` calls per second.
- `concurrent_requests`: calls in flight at once, as expiring slots, so a replica that dies
  holding slots leaks them only until the slot TTL (the caller's deadline plus a margin).
- What the upstream says: `note_upstream()` with its X-RateLimit-Remaining/Reset (see
  `parse_rate_limit_headers`); at 0 remaining, acquisitions wait or fail until the reset,
  instead of spending calls on certain 429s.

All windows are checked and recorded in one atomic `hit` (refused by one window, nothing is
taken from the others). `acquire` waits for room while it can still get it before the
deadline, and otherwise fails at once with `RateLimitExceeded(retry_after_s)`.

The `limits` library is not used: it checks each limit separately (a call refused by the
hourly limit has already used a per-minute slot, and test-then-hit across limits is not
atomic), it opens its own Redis connection pool outside our store (so it would not follow the
store's namespace or the in-process backend), and it has no concurrency slots or
upstream-driven pauses, which we need anyway.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Self

from adaptor.domain import ErrorCode, RateLimitConfig
from adaptor.storage.kv import KeyValueStore, Window

__all__ = ["Lease", "RateLimitExceeded", "RateLimiter", "parse_rate_limit_headers"]

# Reset values at least this large are Unix timestamps rather than delays.
_EPOCH_THRESHOLD = 1_000_000_000


_UPSTREAM_PAUSE = "upstream quota exhausted"


def _pause_key(key: str) -> str:
    """Where an upstream-ordered pause of `key` lives (its hash tag is the hits key's)."""
    return f"rl:{{{key}}}:pause"


class RateLimitExceeded(Exception):
    """No room for the call before its deadline; `retry_after_s` says when there may be."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, key: str, retry_after_s: float, reason: str) -> None:
        super().__init__(
            f"rate limit for {key!r} reached ({reason}); retry in {retry_after_s:.2f}s"
        )
        self.key = key
        self.reason = reason
        self.retry_after_s = max(0.0, retry_after_s)
        self.retry_after = self.retry_after_s


class Lease:
    """Permission for one call. Release it when the call ends (`async with` does) to give back
    its concurrency slot; releasing twice is harmless."""

    def __init__(self, store: KeyValueStore, slots_key: str | None, token: str | None) -> None:
        self._store = store
        self._slots_key = slots_key
        self._token = token

    @property
    def holds_slot(self) -> bool:
        """Whether this lease holds a concurrency slot not yet released."""
        return self._token is not None

    async def release(self) -> None:
        """Give back the concurrency slot, if the lease holds one."""
        token, self._token = self._token, None
        if token is not None and self._slots_key is not None:
            await self._store.release_slot(self._slots_key, token)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


class RateLimiter:
    """Enforces `RateLimitConfig` per key on a shared `KeyValueStore`.

    `clock` is monotonic seconds (the clock deadlines are read on); `sleep` is injectable.
    """

    def __init__(
        self,
        store: KeyValueStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_interval_s: float = 0.05,
        default_slot_ttl_s: float = 120.0,
        slot_ttl_margin_s: float = 5.0,
        max_upstream_pause_s: float = 3600.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._poll_interval_s = poll_interval_s
        self._default_slot_ttl_s = default_slot_ttl_s
        self._slot_ttl_margin_s = slot_ttl_margin_s
        self._max_upstream_pause_s = max_upstream_pause_s

    @staticmethod
    def windows(config: RateLimitConfig) -> list[Window]:
        """The sliding windows `config` asks for (see the module docstring)."""
        windows: list[Window] = []
        if config.requests_per_minute is not None:
            windows.append(Window(config.requests_per_minute, 60.0))
        if config.requests_per_hour is not None:
            windows.append(Window(config.requests_per_hour, 3600.0))
        if config.burst_size is not None:
            if config.requests_per_minute is not None:
                rate_per_s = config.requests_per_minute / 60.0
            elif config.requests_per_hour is not None:
                rate_per_s = config.requests_per_hour / 3600.0
            else:
                rate_per_s = float(config.burst_size)
            span = config.burst_size / rate_per_s
            # Skip it when a configured window is already at least as strict.
            if not any(w.limit <= config.burst_size and w.window_s >= span for w in windows):
                windows.append(Window(config.burst_size, span))
        return windows

    @classmethod
    def checks_gate(cls, config: RateLimitConfig) -> bool:
        """Whether `acquire_unless` can check a gate key for `config` in its one round trip:
        a limit with windows and no concurrency slots."""
        return config.concurrent_requests is None and bool(cls.windows(config))

    async def acquire_unless(
        self,
        gate_key: str,
        key: str,
        config: RateLimitConfig,
        deadline: float | None = None,
        *,
        cost: int = 1,
    ) -> Lease | None:
        """`acquire`, in the same atomic store step as checking that `gate_key` is absent
        (one round trip for "is the breaker healthy, is this paused, is there room"): None,
        with nothing taken, while `gate_key` exists. Only for a `config` that `checks_gate`;
        `gate_key` must share `key`'s hash tag (`{key}`)."""
        if not self.checks_gate(config):
            raise ValueError("acquire_unless needs windows and no concurrency limit")
        return await self._acquire(key, config, deadline, cost, gate_key)

    async def acquire(
        self,
        key: str,
        config: RateLimitConfig,
        deadline: float | None = None,
        *,
        cost: int = 1,
    ) -> Lease:
        """Room for one call (of `cost` units) at `key`, waiting until `deadline` (monotonic)
        at most; with no deadline it does not wait. Raises `RateLimitExceeded`."""
        lease = await self._acquire(key, config, deadline, cost, None)
        assert lease is not None  # only a gate key refuses without raising
        return lease

    async def _acquire(
        self,
        key: str,
        config: RateLimitConfig,
        deadline: float | None,
        cost: int,
        gate_key: str | None,
    ) -> Lease | None:
        slots_key = f"rl:{{{key}}}:slots" if config.concurrent_requests is not None else None
        windows = self.windows(config)
        hold_key: str | None = None
        if windows and slots_key is None:
            # The usual case, one round trip: the hit checks the upstream pause itself.
            hold_key = _pause_key(key)
        else:
            # No slot is held while waiting out a pause.
            await self._wait_out_upstream_pause(key, deadline)
        # Slot first, then the windows: a hit is only spent by a call that will really go out
        # (a caller who times out waiting for a slot has consumed no request budget).
        token: str | None = None
        if slots_key is not None and config.concurrent_requests is not None:
            token = await self._take_slot(key, slots_key, config.concurrent_requests, deadline)
        lease = Lease(self._store, slots_key, token)
        try:
            while windows:
                result = await self._store.hit(
                    f"rl:{{{key}}}:hits", windows, cost, hold_key=hold_key, gate_key=gate_key
                )
                if result.allowed:
                    break
                if result.gated:
                    return None
                if result.held:
                    await self._wait(key, result.retry_after_s, deadline, _UPSTREAM_PAUSE)
                    continue
                if math.isinf(result.retry_after_s):
                    longest = max(w.window_s for w in windows)
                    raise RateLimitExceeded(key, longest, f"a cost of {cost} exceeds the limit")
                await self._wait(key, result.retry_after_s, deadline, "request rate")
        except BaseException:
            await lease.release()
            raise
        return lease

    async def note_upstream(self, key: str, remaining: int | None, reset_s: float | None) -> None:
        """Tell the limiter what the upstream reported: with nothing `remaining`, calls at
        `key` pause for `reset_s` seconds (at most `max_upstream_pause_s`) on every replica."""
        if remaining is None or remaining > 0 or reset_s is None or reset_s <= 0:
            return
        pause = min(reset_s, self._max_upstream_pause_s)
        await self._store.set(_pause_key(key), b"1", ttl_s=pause)

    async def paused_for(self, key: str) -> float:
        """Seconds left of an upstream-ordered pause at `key` (0 when not paused)."""
        ttl = await self._store.ttl(_pause_key(key))
        return 0.0 if ttl is None else ttl

    async def _wait_out_upstream_pause(self, key: str, deadline: float | None) -> None:
        paused = await self.paused_for(key)
        if paused > 0:
            await self._wait(key, paused, deadline, _UPSTREAM_PAUSE)

    async def _take_slot(self, key: str, slots_key: str, limit: int, deadline: float | None) -> str:
        now = self._clock()
        ttl = self._default_slot_ttl_s
        if deadline is not None:
            ttl = min(ttl, max(deadline - now, 0.0) + self._slot_ttl_margin_s)
        while True:
            token = await self._store.acquire_slot(slots_key, limit, ttl)
            if token is not None:
                return token
            await self._wait(key, self._poll_interval_s, deadline, "concurrent requests")

    async def _wait(self, key: str, delay: float, deadline: float | None, reason: str) -> None:
        if deadline is None or self._clock() + delay > deadline:
            raise RateLimitExceeded(key, delay, reason)
        await self._sleep(delay)


def parse_rate_limit_headers(
    headers: Mapping[str, str], *, now: float | None = None
) -> tuple[int | None, float | None]:
    """(remaining, seconds until reset) from an upstream's rate-limit headers, each None when
    absent or unreadable.

    Reads `X-RateLimit-Remaining`/`-Reset`, `X-Rate-Limit-…` and the IETF `RateLimit-…` names,
    case-insensitively. A reset of 1e9 or more is a Unix timestamp (GitHub-style), converted
    with `now` (wall-clock seconds, default `time.time()`); a smaller one is a delay.
    """
    lowered = {name.lower(): value for name, value in headers.items()}

    def first(*names: str) -> str | None:
        for name in names:
            if name in lowered:
                return lowered[name]
        return None

    remaining: int | None = None
    raw_remaining = first("x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining")
    if raw_remaining is not None:
        try:
            remaining = min(int(part.strip()) for part in raw_remaining.split(","))
        except ValueError:
            remaining = None

    reset: float | None = None
    raw_reset = first("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset")
    if raw_reset is not None:
        try:
            value = float(raw_reset.split(",")[0].strip())
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            if value >= _EPOCH_THRESHOLD:
                value -= time.time() if now is None else now
            reset = max(0.0, value)
    return remaining, reset
