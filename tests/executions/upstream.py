"""A scriptable HTTP upstream on loopback that counts and records what it receives."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Seen:
    """One request as received; `at` is when (time.monotonic())."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Callable[[Seen], Reply]


class Upstream:
    """Routes answer from a queue of replies (the last one repeats) or a function."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._replies: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._functions: dict[tuple[str, str], Responder] = {}
        self.url = ""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the upstream was answering at once."""

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        self._replies[(method, path)] = deque(replies)

    def respond(self, method: str, path: str, function: Responder) -> None:
        self._functions[(method, path)] = function

    def count(self, path: str | None = None) -> int:
        return sum(1 for s in self.seen if path is None or s.path == path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(
            request.method,
            request.path,
            list(request.query.items()),
            {k.lower(): v for k, v in request.headers.items()},
            await request.read(),
        )
        self.seen.append(seen)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, seen)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, seen: Seen) -> web.StreamResponse:
        key = (request.method, request.path)
        if key in self._functions:
            reply = self._functions[key](seen)
        elif self._replies.get(key):
            queue = self._replies[key]
            reply = queue.popleft() if len(queue) > 1 else queue[0]
        else:
            reply = Reply(404, {"error": {"message": f"no route {request.method} {request.path}"}})
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        body = reply.body if reply.body is not None else orjson.dumps(reply.json)
        return web.Response(
            status=reply.status, body=body, content_type=reply.content_type, headers=reply.headers
        )


@asynccontextmanager
async def serve_upstream() -> AsyncIterator[Upstream]:
    upstream = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    upstream.url = f"http://127.0.0.1:{port}"
    try:
        yield upstream
    finally:
        await runner.cleanup()
