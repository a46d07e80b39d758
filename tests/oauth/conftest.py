from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.executions.upstream import Reply, Upstream, serve_upstream
from tests.oauth.provider import Provider, run_provider


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    with run_provider() as running:
        yield running


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        server.reply("GET", "/v1/me", Reply(200, {"id": "u_1", "name": "Ada"}))
        yield server
