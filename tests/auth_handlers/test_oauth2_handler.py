"""OAuth2Handler on its own: refresh ahead of expiry off the request path, and no hammering of
a failing token endpoint while the current token still works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adaptor.auth_handlers import AuthContext, OAuth2Handler, create_auth_handler
from adaptor.domain import AuthConfig, AuthType
from adaptor.protocols import AiohttpTransport, PreparedRequest
from adaptor.resilience import DestinationGuard
from tests.executions.upstream import Reply, Upstream, serve_upstream


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def token_server() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        yield server


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport(DestinationGuard(allow_private=True))
    try:
        yield transport
    finally:
        await transport.close()


def handler_for(server: Upstream, transport: AiohttpTransport, clock: Clock) -> OAuth2Handler:
    config = AuthConfig(
        type=AuthType.OAUTH2,
        oauth2_flow="client_credentials",
        token_url=f"{server.url}/token",
        credentials={"client_id": "c", "client_secret": "s"},
    )
    handler = create_auth_handler(config, AuthContext(transport, clock=clock))
    assert isinstance(handler, OAuth2Handler)
    return handler


async def bearer(handler: OAuth2Handler) -> str:
    request = PreparedRequest("GET", "https://api.example.com/")
    await handler.apply(request)
    return request.headers["Authorization"]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_refresh_ahead_runs_in_the_background_and_backs_off_after_a_failure(
    token_server: Upstream, transport: AiohttpTransport
) -> None:
    clock = Clock()
    token_server.reply(
        "POST",
        "/token",
        Reply(200, {"access_token": "first", "expires_in": 100}),
        Reply(503, {"error": "temporarily_unavailable"}),
    )
    handler = handler_for(token_server, transport, clock)
    assert await bearer(handler) == "Bearer first"
    clock.now += 30  # 70 s left: not due yet (the threshold is 50 s for a 100 s token)
    assert await bearer(handler) == "Bearer first"
    await settle()
    assert token_server.count("/token") == 1

    clock.now += 30  # 40 s left: due; the request still goes out with the valid token at once
    assert await bearer(handler) == "Bearer first"
    await settle()
    assert token_server.count("/token") == 2  # the background attempt, which failed
    for _ in range(5):
        assert await bearer(handler) == "Bearer first"
    await settle()
    assert token_server.count("/token") == 2  # not retried on every request

    token_server.reply("POST", "/token", Reply(200, {"access_token": "second", "expires_in": 100}))
    clock.now += 6
    assert await bearer(handler) == "Bearer first"
    await settle()
    assert token_server.count("/token") == 3
    assert await bearer(handler) == "Bearer second"


async def test_an_expired_token_is_renewed_before_the_request(
    token_server: Upstream, transport: AiohttpTransport
) -> None:
    clock = Clock()
    token_server.reply(
        "POST",
        "/token",
        Reply(200, {"access_token": "first", "expires_in": 100}),
        Reply(200, {"access_token": "second", "expires_in": 100}),
    )
    handler = handler_for(token_server, transport, clock)
    assert await bearer(handler) == "Bearer first"
    clock.now += 101
    assert await bearer(handler) == "Bearer second"
    seen = token_server.seen[-1]
    assert seen.headers["authorization"].startswith("Basic ")
    assert b"grant_type=client_credentials" in seen.body
