from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.executions.upstream import Upstream, serve_upstream
from tests.servers.ariadne_server import run_ariadne


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        yield server


@pytest.fixture(scope="session")
def shopify_url() -> Iterator[str]:
    """The Shopify-like Admin GraphQL API (tests/servers/ariadne/shopify.py): its origin."""
    with run_ariadne(
        app="tests.servers.ariadne.shopify:app", path="/admin/api/2026-10/graphql.json"
    ) as url:
        yield url.removesuffix("/admin/api/2026-10/graphql.json")
