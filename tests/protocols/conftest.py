"""Fixtures: a recording upstream on loopback, a transport, and integrations wired to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adaptor.auth_handlers import BaseAuthHandler, NoAuthHandler
from adaptor.domain import IntegrationSpec, IntegrationType
from adaptor.protocols import AiohttpTransport, RESTIntegration
from adaptor.resilience import DestinationGuard

from .upstream import Upstream, start_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await start_upstream()
    try:
        yield server
    finally:
        await server.server.close()


@pytest.fixture
async def other_upstream() -> AsyncIterator[Upstream]:
    """A second upstream: a different origin (port) for cross-origin redirects."""
    server = await start_upstream()
    try:
        yield server
    finally:
        await server.server.close()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    guard = DestinationGuard(allow_private=True)
    transport = AiohttpTransport(guard, max_response_bytes=1024 * 1024, max_redirects=3)
    try:
        yield transport
    finally:
        await transport.close()
        await guard.close()


MakeIntegration = Callable[..., RESTIntegration]


@pytest.fixture
def make_integration(upstream: Upstream, transport: AiohttpTransport) -> MakeIntegration:
    def make(
        auth: BaseAuthHandler | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout_ms: int = 5000,
        **kwargs: Any,
    ) -> RESTIntegration:
        config = IntegrationSpec(
            name="upstream",
            type=IntegrationType.REST_API,
            category="test",
            base_url=upstream.base_url,
            headers=headers or {},
            timeout_ms=timeout_ms,
        )
        return RESTIntegration(config, auth or NoAuthHandler(), transport, **kwargs)

    return make
