"""ASGI plumbing shared by the routes answered below FastAPI (the direct execute route, /mcp)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over an already read body, then defers to the server's."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def stage_boundary() -> None:
    """One turn of the event loop, taken by the hot routes before an execution and before
    its answer. With many requests in flight the loop then runs each stage for every ready
    request in turn instead of one request from start to end, so each stage's code and data
    stay in the CPU's caches. Measured at concurrency 16 (`bench/`): 13 % less CPU per plain
    execution and 11 % per mapped one, the mapped p99 / p50 1.46 -> 1.37; at concurrency 1
    no difference beyond the noise."""
    await asyncio.sleep(0)
