"""`RedisStore`: the key-value contract on Redis, shared by every replica.

One `redis.asyncio` client (one connection pool) per store. Operations that read and then
write run as Lua scripts, so they are atomic across replicas; each script touches one key, so
the store also works behind Redis Cluster. Time inside scripts is the Redis server's (`TIME`),
so replicas with skewed clocks still share one sliding window.

All keys and channels are put under `namespace`, which lets several deployments (or test
runs) share one Redis without seeing each other's keys.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from types import TracebackType
from typing import Any, Self

import hiredis
import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adaptor.storage.kv import HitResult, StoreError, StoreUnavailable, Window, token_lock, ttl_ms

__all__ = ["RedisStore"]

_HOT_CONNECTIONS = 32
"""Connections of the store's own for the per-execution script (one per concurrent
execution); calls beyond that many at once go through the client's bounded pool."""

# ARGV: expect_absent("1"/"0"), expected, delete("1"/"0"), value, ttl_ms (0 = none)
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[4])
end
return 1
"""

# A sorted set of hits scored by server time in ms; members are unique per call.
# KEYS: the hits set, then optionally a hold key (while it exists nothing is admitted) and a
# gate key (while it exists nothing is admitted and the caller is told so).
# ARGV: cost, member prefix, the hold key's and the gate key's index in KEYS (0: none), then
# limit/window_ms pairs. Returns {allowed, retry_after_ms, held, gated} with
# retry_after_ms = -1 when the cost exceeds a limit (or the hold key has no expiry).
_HIT = """
local gate = tonumber(ARGV[4])
if gate > 0 and redis.call('EXISTS', KEYS[gate]) == 1 then return {0, 0, 0, 1} end
local hold = tonumber(ARGV[3])
if hold > 0 then
  local held = redis.call('PTTL', KEYS[hold])
  if held == -1 then return {0, -1, 1, 0} end
  if held > 0 then return {0, held, 1, 0} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local longest = 0
local wait = 0
for i = 5, #ARGV, 2 do
  local limit = tonumber(ARGV[i])
  local window = tonumber(ARGV[i + 1])
  if window > longest then longest = window end
  if cost > limit then return {0, -1, 0, 0} end
  local since = '(' .. string.format('%d', now - window)
  local count = redis.call('ZCOUNT', KEYS[1], since, '+inf')
  if count + cost > limit then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES',
                              'LIMIT', count + cost - limit - 1, 1)
    local until_free = tonumber(oldest[2]) + window - now
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then return {0, wait, 0, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - longest))
for j = 1, cost do
  redis.call('ZADD', KEYS[1], now, ARGV[2] .. ':' .. j)
end
redis.call('PEXPIRE', KEYS[1], longest)
return {1, 0, 0, 0}
"""

# A sorted set of slot tokens scored by their expiry (server time, ms).
# ARGV: limit, token, ttl_ms. Returns 1 if the slot was taken.
_ACQUIRE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# ARGV: token. Returns 1 if the token held a live slot.
_RELEASE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(expiry) > now then return 1 end
return 0
"""

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


@contextmanager
def _translated() -> Iterator[None]:
    """Redis failures as store errors, so callers never depend on the client library."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"Redis refused the operation: {exc}") from exc


class RedisStore:
    """The `KeyValueStore` contract on Redis (`redis.asyncio`, one connection pool).

    Build it with `RedisStore.from_url(...)` (the store then owns and closes its client) or
    around an existing client made with `decode_responses=False`.
    """

    def __init__(
        self, client: redis.Redis, *, namespace: str = "", owns_client: bool = False
    ) -> None:
        self._client = client
        self._ns = namespace
        self._owns_client = owns_client
        self._cas = client.register_script(_COMPARE_AND_SET)
        self._hit = client.register_script(_HIT)
        self._acquire = client.register_script(_ACQUIRE_SLOT)
        self._release = client.register_script(_RELEASE_SLOT)
        self._hit_connections: list[AbstractConnection] = []
        self._hot_in_use = 0
        pool = client.connection_pool
        # The hot path's connections: no per-read or per-write timers of their own and no
        # periodic PING (one deadline bounds each call instead, see `_run_hot`).
        self._hot_timeout_s: float | None = pool.connection_kwargs.get("socket_timeout")
        hot_kwargs = {**pool.connection_kwargs, "socket_timeout": None, "health_check_interval": 0}
        self._new_hot_connection: Callable[[], AbstractConnection] = functools.partial(
            pool.connection_class, **hot_kwargs
        )
        # Members of the hit sets: unique per call across replicas, without a system call each.
        self._hit_prefix = secrets.token_hex(8)
        self._hit_numbers = itertools.count()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "",
        max_connections: int = 64,
        socket_timeout_s: float = 2.0,
        connect_timeout_s: float = 2.0,
        health_check_interval_s: float = 30.0,
    ) -> RedisStore:
        """A store with its own connection pool to `url` (e.g. `redis://host:6379/0`).

        Short socket timeouts make a Redis blip an error the caller can fall back from
        rather than a stalled execution. The pool blocks: with `max_connections` in use, a
        command waits up to `socket_timeout_s` for one to come back (redis-py's default pool
        would fail it at once with "Too many connections", which the failover store would
        take for Redis being down).
        """
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout_s,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            health_check_interval=health_check_interval_s,
            decode_responses=False,
        )
        return cls(redis.Redis.from_pool(pool), namespace=namespace, owns_client=True)

    def _k(self, key: str) -> str:
        return self._ns + key

    # -- plain values ----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        with _translated():
            value = await self._client.get(self._k(key))
        return value.encode() if isinstance(value, str) else value

    async def set(
        self, key: str, value: bytes, ttl_s: float | None = None, *, only_if_absent: bool = False
    ) -> bool:
        px = None if ttl_s is None else ttl_ms(ttl_s)
        with _translated():
            written = await self._client.set(self._k(key), value, px=px, nx=only_if_absent)
        return bool(written)

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, ttl_s: float | None = None
    ) -> bool:
        args: list[bytes | str | int] = [
            "1" if expected is None else "0",
            b"" if expected is None else expected,
            "1" if value is None else "0",
            b"" if value is None else value,
            0 if ttl_s is None else ttl_ms(ttl_s),
        ]
        with _translated():
            swapped = await self._cas(keys=[self._k(key)], args=args)
        return bool(swapped)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        with _translated():
            deleted: int = await self._client.delete(*(self._k(key) for key in keys))
        return deleted

    async def delete_prefix(self, prefix: str) -> int:
        if not self._ns + prefix:
            raise ValueError("refusing to delete every key of a shared Redis (empty prefix)")
        pattern = self._k(prefix).translate(_GLOB_SPECIAL) + "*"
        deleted = 0
        batch: list[bytes] = []
        with _translated():
            async for key in self._client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += await self._client.unlink(*batch)
        return deleted

    async def ttl(self, key: str) -> float | None:
        with _translated():
            pttl: int = await self._client.pttl(self._k(key))
        if pttl == -2:
            return None
        if pttl == -1:
            return float("inf")
        return pttl / 1000

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        name = self._k(key)
        with _translated():
            if ttl_s is None:
                total: int = await self._client.incrby(name, amount)
                return total
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, px=ttl_ms(ttl_s), nx=True)
                pipe.incrby(name, amount)
                results: list[Any] = await pipe.execute()
        return int(results[1])

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
        if cost < 1:
            raise ValueError("cost must be at least 1")
        if not windows:
            return HitResult(True)
        keys = [self._k(key)]
        indexes = [0, 0]  # the hold key's and the gate key's place in KEYS (Lua counts from 1)
        for slot, extra in enumerate((hold_key, gate_key)):
            if extra is not None:
                keys.append(self._k(extra))
                indexes[slot] = len(keys)
        args: list[str | int] = [cost, f"{self._hit_prefix}{next(self._hit_numbers):x}", *indexes]
        for window in windows:
            args += [window.limit, ttl_ms(window.window_s)]
        with _translated():
            allowed, wait_ms, held, gated = await self._run_hot(self._hit, keys, args)
        if allowed:
            return HitResult(True)
        if gated:
            return HitResult(False, gated=True)
        return HitResult(False, float("inf") if wait_ms < 0 else wait_ms / 1000, held=bool(held))

    async def acquire_slot(self, key: str, limit: int, ttl_s: float) -> str | None:
        token = secrets.token_hex(12)
        with _translated():
            taken = await self._acquire(keys=[self._k(key)], args=[limit, token, ttl_ms(ttl_s)])
        return token if taken else None

    async def release_slot(self, key: str, token: str) -> bool:
        with _translated():
            released = await self._release(keys=[self._k(key)], args=[token])
        return bool(released)

    # -- locks and notices -----------------------------------------------------------------

    def lock(self, name: str, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[bool]:
        return token_lock(self, name, ttl_s, wait_s)

    async def publish(self, channel: str, message: bytes) -> int:
        with _translated():
            receivers: int = await self._client.publish(self._k(channel), message)
        return receivers

    def subscribe(self, channel: str) -> _RedisSubscription:
        return _RedisSubscription(self._client, self._k(channel))

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def _run_hot(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA of a script that runs on every rate-limited execution, on a connection of
        the store's own, straight through redis-py's connection API.

        The client's `execute_command` wraps each command in a pool checkout under a lock
        with a readability check, a retry wrapper, observability hooks and, on Python 3.11,
        a task per write (`asyncio.wait_for`) and a timer per read: together more CPU than
        the round trip's own work. Here an idle connection is reused as it is, the command
        is packed by hiredis, and one deadline of the socket timeout bounds the whole call
        (connecting included). A connection that fails or times out is dropped, and a reused
        one that fails before answering is retried once on a new connection (Redis
        restarted while it was idle), as the client's retry would; that is also what finds
        a connection that died while idle, which the client's periodic PING would have. A
        server that lost its scripts (NOSCRIPT) gets the script loaded again. At most
        `_HOT_CONNECTIONS` run this way at once; more wait in the client's pool, whose
        `max_connections` bounds what the store opens beyond them.
        """
        if self._hot_in_use >= _HOT_CONNECTIONS:
            return await script(keys=keys, args=args)
        self._hot_in_use += 1
        try:
            return await self._run_own(script, keys, args)
        finally:
            self._hot_in_use -= 1

    async def _run_own(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        reused = bool(self._hit_connections)
        new_connection = self._new_hot_connection
        connection = self._hit_connections.pop() if reused else new_connection()
        command = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
        try:
            try:
                result = await self._evalsha(connection, script, command)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await connection.disconnect(nowait=True)
                if not reused:
                    raise
                connection = new_connection()
                result = await self._evalsha(connection, script, command)
        except ResponseError:
            self._hit_connections.append(connection)  # the server answered: still in step
            raise
        except BaseException:
            await connection.disconnect(nowait=True)  # a reply may still be on its way
            raise
        self._hit_connections.append(connection)
        return result

    async def _evalsha(
        self, connection: AbstractConnection, script: AsyncScript, command: bytes
    ) -> Any:
        """EVALSHA `command` (packed) on `connection` within the socket timeout; a timeout is
        the client's `TimeoutError`, as its own socket timeout would raise."""
        try:
            async with asyncio.timeout(self._hot_timeout_s):
                if not connection.is_connected:
                    connect: Callable[[], Awaitable[None]] = connection.connect
                    await connect()
                await connection.send_packed_command(command, check_health=False)
                try:
                    return await connection.read_response()
                except NoScriptError:
                    await connection.send_command("SCRIPT", "LOAD", script.script)
                    await connection.read_response()
                    await connection.send_packed_command(command, check_health=False)
                    return await connection.read_response()
        except TimeoutError:
            raise RedisTimeoutError("Timeout waiting for the Redis server to answer") from None

    async def close(self) -> None:
        connections, self._hit_connections = self._hit_connections, []
        for connection in connections:
            await connection.disconnect()
        if self._owns_client:
            await self._client.aclose()


async def _close_pubsub(pubsub: PubSub) -> None:
    # PubSub.aclose carries no annotations; name its (known) signature once, here.
    close: Callable[[], Awaitable[None]] = pubsub.aclose
    await close()


class _RedisSubscription:
    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: PubSub | None = None
        self._closed = False

    async def _ensure(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self._client.pubsub()
            try:
                with _translated():
                    await pubsub.subscribe(self._channel)
            except BaseException:
                await _close_pubsub(pubsub)
                raise
            self._pubsub = pubsub
        return self._pubsub

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        pubsub = await self._ensure()
        while True:
            with _translated():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None and message["type"] == "message":
                return bytes(message["data"])

    async def __aenter__(self) -> Self:
        await self._ensure()
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
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            await _close_pubsub(pubsub)
