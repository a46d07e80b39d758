"""ASGI plumbing shared by the routes answered below FastAPI (the direct execute route, /mcp)."""

from __future__ import annotations

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
