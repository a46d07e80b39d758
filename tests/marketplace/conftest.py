from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.executions.upstream import Upstream, serve_upstream
from tests.oauth.provider import Provider, run_provider
from tests.prism import OPENAPI_FIXTURES, run_prism


@pytest.fixture(scope="session")
def stripe_prism() -> Iterator[str]:
    with run_prism(OPENAPI_FIXTURES / "stripe.json") as base_url:
        yield base_url


@pytest.fixture(scope="session")
def hubspot_prism() -> Iterator[str]:
    with run_prism(OPENAPI_FIXTURES / "hubspot.json") as base_url:
        yield base_url


@pytest.fixture(scope="session")
def jira_prism() -> Iterator[str]:
    with run_prism(OPENAPI_FIXTURES / "jira.json") as base_url:
        yield base_url


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        yield server


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    """oauth2-mock-server, the authorization server of the OAuth templates' tests."""
    with run_provider() as running:
        yield running
