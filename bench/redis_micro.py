"""Micro-benchmark of the client-side CPU of the per-execution Redis script.

Run from the repository root: `.venv/bin/python -m bench.redis_micro` (Redis needed:
`REDIS_URL`, default `redis://127.0.0.1:6379/15`). Options: `--calls N` per round, `--rounds N`,
`--cpu N` (core for this process).

Every rate-limited execution on Redis runs one script (`RedisStore.hit`: the breaker check,
the sliding windows and the pause, in one round trip). Two ways of making that call are timed
in the same run, against the same server, with the same keys and arguments:

- `store_hit`     `RedisStore.hit`, as an execution calls it: arguments built, the command
                  packed by hiredis, one deadline for the call, on the store's own connections
- `client_script` the same script through redis-py's public path (`Script.__call__`, that is
                  `EVALSHA` through `execute_command`: pool checkout, retry wrapper, a timer
                  per write and per read), the arguments built by hand

Each is called `--calls` times in a row, `--rounds` times, alternating; the best round's CPU
of this process per call is reported, and `store_hit ÷ client_script`. The server's own time is
not in either figure. Keys live under a namespace of this run and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from adaptor.storage.kv import Window, ttl_ms
from adaptor.storage.kv_redis import _HIT, RedisStore
from bench.procs import pin_self

WINDOWS = [Window(1_000_000_000, 60)]
"""A window no run fills, so every call is an allowed hit (the common case)."""


async def _round(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.process_time_ns()
    for _ in range(calls):
        await call()
    return (time.process_time_ns() - started) / calls / 1000


async def run(url: str, calls: int, rounds: int) -> dict[str, float]:
    namespace = f"bench-redis-micro:{uuid.uuid4().hex}:"
    store = RedisStore.from_url(url, namespace=namespace)
    client = store._client
    script = client.register_script(_HIT)
    keys = [f"{namespace}plain", f"{namespace}hold", f"{namespace}gate"]
    numbers = itertools.count()

    async def store_hit() -> object:
        return await store.hit("hit", WINDOWS, hold_key="hold", gate_key="gate")

    async def client_script() -> object:
        args = [1, f"micro{next(numbers):x}", 2, 3]
        for window in WINDOWS:
            args += [window.limit, ttl_ms(window.window_s)]
        return await script(keys=keys, args=args)

    stages = {"store_hit": store_hit, "client_script": client_script}
    best = dict.fromkeys(stages, float("inf"))
    try:
        for call in stages.values():  # warm-up: connections made, the script loaded
            for _ in range(max(calls // 10, 50)):
                await call()
        for _ in range(rounds):
            for name, call in stages.items():
                best[name] = min(best[name], await _round(call, calls))
    finally:
        cleanup = [key async for key in client.scan_iter(match=f"{namespace}*")]
        if cleanup:
            await client.delete(*cleanup)
        await store.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    if (os.cpu_count() or 1) > args.cpu:
        pin_self(args.cpu)
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    best = asyncio.run(run(url, args.calls, args.rounds))
    print(f"the per-execution Redis script, client CPU per call ({args.rounds} rounds of")
    print(f"{args.calls} calls, best round; the server's time is not included):")
    for name, value in best.items():
        print(f"  {name:<14} {value:7.1f} us")
    print(f"  store_hit / client_script  {best['store_hit'] / best['client_script']:.2f}")


if __name__ == "__main__":
    main()
