from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.executions.upstream import Upstream, serve_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        yield server
