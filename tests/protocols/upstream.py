"""A real HTTP upstream on loopback that records what it received."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict


@dataclass
class Received:
    """One request as the upstream saw it."""

    method: str
    raw_path: str
    path: str
    query: list[tuple[str, str]]
    headers: CIMultiDict[str]
    body: bytes
    peer_port: int | None


RECEIVED = web.AppKey("received", list[Received])

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data>&xxe;</data>"""

XML_DOCUMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<customers xmlns="urn:example" count="2">
  <customer id="1"><name>Ada</name><plan>pro</plan></customer>
  <customer id="2"><name>Grace</name></customer>
  <note lang="en">two found</note>
  <empty/>
</customers>"""

# (status, content type, body, extra headers) by shape name.
ERROR_SHAPES: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "nested": (400, "application/json", b'{"error": {"message": "card declined"}}', {}),
    "string": (
        400,
        "application/json",
        b'{"error": "invalid_grant", "error_description": "code expired"}',
        {},
    ),
    "message": (404, "application/json", b'{"message": "no such customer"}', {}),
    "errors": (422, "application/json", b'{"errors": [{"message": "email is taken"}]}', {}),
    "detail": (409, "application/problem+json", b'{"title": "Conflict", "detail": "stale"}', {}),
    "xml": (
        500,
        "application/xml",
        b"<Error><Code>Boom</Code><Message>disk full</Message></Error>",
        {},
    ),
    "text": (502, "text/plain", b"bad gateway " + b"x" * 2000, {}),
    "html": (503, "text/html", b"<html><body>down</body></html>", {"Retry-After": "7"}),
}


def _record(request: web.Request, body: bytes) -> Received:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return Received(
        method=request.method,
        raw_path=request.raw_path,
        path=request.path,
        query=list(request.query.items()),
        headers=CIMultiDict(request.headers),
        body=body,
        peer_port=peer[1] if peer else None,
    )


@web.middleware
async def _recorder(request: web.Request, handler: Any) -> web.StreamResponse:
    body = await request.read()
    request.app[RECEIVED].append(_record(request, body))
    response: web.StreamResponse = await handler(request)
    return response


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "method": request.method})


async def _respond(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind == "json":
        return web.json_response({"id": 1, "name": "Ada", "tags": ["a", "b"]})
    if kind == "xml":
        return web.Response(body=XML_DOCUMENT, content_type="application/xml")
    if kind == "xml-bomb":
        return web.Response(body=BILLION_LAUGHS, content_type="application/xml")
    if kind == "xml-xxe":
        return web.Response(body=EXTERNAL_ENTITY, content_type="text/xml")
    if kind == "text":
        return web.Response(text="héllo wörld", content_type="text/plain", charset="utf-8")
    if kind == "binary":
        return web.Response(body=bytes(range(256)), content_type="image/png")
    if kind == "empty":
        return web.Response(status=204)
    if kind == "malformed":
        return web.Response(body=b'{"id": 1,', content_type="application/json")
    raise web.HTTPNotFound()


async def _error(request: web.Request) -> web.Response:
    status, content_type, body, headers = ERROR_SHAPES[request.match_info["shape"]]
    return web.Response(status=status, body=body, content_type=content_type, headers=headers)


async def _status(request: web.Request) -> web.Response:
    headers = {key[2:]: value for key, value in request.query.items() if key.startswith("h-")}
    return web.json_response(
        {"message": request.query.get("message", "status")},
        status=int(request.match_info["code"]),
        headers=headers,
    )


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "5")))
    return web.json_response({"late": True})


async def _big(request: web.Request) -> web.StreamResponse:
    size = int(request.query["size"])
    if request.query.get("chunked"):
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        while sent < size:
            chunk = b"x" * min(65536, size - sent)
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()
        return response
    return web.Response(body=b"x" * size, content_type="application/octet-stream")


async def _needs_fresh_token(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Bearer fresh-token":
        return web.json_response({"error": "invalid_token"}, status=401)
    return web.json_response({"authorised": True})


async def _redirect(request: web.Request) -> web.Response:
    status = int(request.query.get("status", "302"))
    return web.Response(status=status, headers={"Location": request.query["to"]})


async def _cookie(request: web.Request) -> web.Response:
    response = web.json_response({"cookie": request.headers.get("Cookie")})
    response.set_cookie("session", "tenant-a")
    return response


def build_upstream_app() -> web.Application:
    """The recording upstream used by protocol tests."""
    app = web.Application(middlewares=[_recorder])
    app[RECEIVED] = []
    app.router.add_route("*", "/echo{tail:.*}", _echo)
    app.router.add_get("/respond/{kind}", _respond)
    app.router.add_get("/error/{shape}", _error)
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_get("/fresh", _needs_fresh_token)
    app.router.add_route("*", "/redirect", _redirect)
    app.router.add_get("/cookie", _cookie)
    return app


class Upstream:
    """A running upstream: its base URL and what it received."""

    def __init__(self, server: TestServer, received: list[Received]) -> None:
        self.server = server
        self.received = received

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def last(self) -> Received:
        return self.received[-1]


async def start_upstream() -> Upstream:
    app = build_upstream_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Upstream(server, app[RECEIVED])
