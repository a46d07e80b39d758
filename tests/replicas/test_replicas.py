"""What must hold across replicas, shown with real processes over real HTTP.

Each test drives several `adaptor serve` processes that share PostgreSQL and Redis, against one
loopback upstream that counts what reaches it; the counts (and delays) are shown in the
"replicas: measured" section of the test run's summary.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_HEADERS, Tenant
from tests.executions.test_execute import CUSTOMERS, integration
from tests.executions.upstream import Reply, Upstream
from tests.oauth.provider import Provider, run_provider
from tests.oauth.test_flows import oauth_integration
from tests.replicas.conftest import Measure

pytestmark = pytest.mark.replicas


async def new_tenant(client: httpx.AsyncClient) -> Tenant:
    tenant_id = f"t-{time.monotonic_ns()}"
    response = await client.post(
        "/api/v2/admin/api-keys",
        json={"tenant_id": tenant_id, "name": "replicas"},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 201, response.text
    return Tenant(tenant_id, response.json()["api_key"])


async def create(client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]) -> str:
    response = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["integration_id"])


async def execute(
    client: httpx.AsyncClient, tenant: Tenant, integration_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v2/execute/{integration_id}/list_customers",
        json={"input_data": {}, **body},
        headers=tenant.headers,
    )


def spread(clients: list[httpx.AsyncClient], count: int) -> list[httpx.AsyncClient]:
    """`count` clients taking turns over the replicas."""
    return list(itertools.islice(itertools.cycle(clients), count))


async def test_a_rate_limit_holds_in_total_across_replicas_under_concurrent_load(
    clients: list[httpx.AsyncClient], upstream: Upstream, measure: Measure
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    tenant = await new_tenant(clients[0])
    limit = 5
    integration_id = await create(
        clients[0], tenant, integration(upstream, rate_limit={"requests_per_minute": limit})
    )
    responses = await asyncio.gather(
        *(execute(client, tenant, integration_id) for client in spread(clients, 30))
    )
    outcomes = Counter(
        "ok" if (result := response.json())["success"] else result["error"]["code"]
        for response in responses
    )
    measure("upstream_requests", upstream.count())
    assert outcomes == {"ok": limit, "rate_limited": 30 - limit}
    assert upstream.count() == limit
    refused = [r.json() for r in responses if not r.json()["success"]]
    assert all(result["error"]["retry_after"] > 0 for result in refused)


@pytest.mark.parametrize("limited", [False, True], ids=["no_rate_limit", "rate_limited"])
async def test_a_circuit_opened_through_one_replica_rejects_on_the_others(
    clients: list[httpx.AsyncClient], upstream: Upstream, measure: Measure, limited: bool
) -> None:
    # With a rate limit, the breaker is checked inside the limit's store step.
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    tenant = await new_tenant(clients[0])
    extra: dict[str, Any] = {"rate_limit": {"requests_per_minute": 1000}} if limited else {}
    document = integration(
        upstream, circuit_breaker={"failure_threshold": 3, "recovery_timeout_s": 30}, **extra
    )
    integration_id = await create(clients[0], tenant, document)
    for _ in range(3):
        failed = (await execute(clients[0], tenant, integration_id)).json()
        assert failed["error"]["code"] == "upstream_error"
    assert upstream.count() == 3
    elsewhere = await asyncio.gather(
        *(execute(client, tenant, integration_id) for client in clients[1:] * 3)
    )
    measure("upstream_requests", upstream.count())
    for response in elsewhere:
        assert response.json()["error"]["code"] == "circuit_open"
        assert 0 < response.json()["error"]["retry_after"] <= 30
    assert upstream.count() == 3


async def test_a_change_through_one_replica_reaches_the_others_within_a_second(
    clients: list[httpx.AsyncClient], upstream: Upstream, measure: Measure
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    tenant = await new_tenant(clients[0])
    integration_id = await create(clients[0], tenant, integration(upstream))
    for client in clients[1:]:  # every replica now holds the integration in its cache
        assert (await execute(client, tenant, integration_id)).json()["success"] is True

    async def seen_by(client: httpx.AsyncClient, check: Callable[[httpx.Response], bool]) -> float:
        """Seconds until `client`'s replica answers as `check` expects."""
        started = time.monotonic()
        while time.monotonic() - started < 5:
            if check(await execute(client, tenant, integration_id)):
                return round(time.monotonic() - started, 3)
            await asyncio.sleep(0.01)
        return float("inf")

    updated = await clients[0].patch(
        f"/api/v2/integrations/{integration_id}",
        json={"headers": {"X-Config-Version": "2"}},
        headers=tenant.headers,
    )
    assert updated.status_code == 200

    def new_header(_: httpx.Response) -> bool:
        return upstream.seen[-1].headers.get("x-config-version") == "2"

    update_delays = [await seen_by(client, new_header) for client in clients[1:]]

    disabled = await clients[0].patch(
        f"/api/v2/integrations/{integration_id}",
        json={"enabled": False},
        headers=tenant.headers,
    )
    assert disabled.status_code == 200
    disable_delays = await asyncio.gather(
        *(seen_by(client, lambda response: response.status_code == 409) for client in clients)
    )
    measure("update_seen_after_s", update_delays)
    measure("disable_seen_after_s", disable_delays)
    measure("upstream_requests", upstream.count())
    assert max(update_delays) < 1.0
    assert max(disable_delays) < 1.0


async def test_concurrent_identical_misses_across_replicas_reach_the_upstream_once(
    clients: list[httpx.AsyncClient], upstream: Upstream, measure: Measure
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=0.3))
    tenant = await new_tenant(clients[0])
    document = integration(upstream)
    document["endpoints"]["list_customers"]["cache_config"] = {"ttl_seconds": 60}
    integration_id = await create(clients[0], tenant, document)
    responses = await asyncio.gather(
        *(
            execute(client, tenant, integration_id, input_data={"variables": {"limit": 2}})
            for client in spread(clients, 12)
        )
    )
    results = [response.json() for response in responses]
    measure("upstream_requests", upstream.count())
    assert all(result["success"] for result in results)
    assert sorted(result["cached"] for result in results) == [False] + [True] * 11
    assert upstream.count() == 1


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with run_provider() as running:
        yield running


async def test_an_expired_oauth2_token_is_refreshed_once_across_replicas(
    clients: list[httpx.AsyncClient], upstream: Upstream, provider: Provider, measure: Measure
) -> None:
    upstream.reply("GET", "/v1/me", Reply(200, {"id": "u_1"}))
    client = provider.client(ttl_s=1)
    tenant = await new_tenant(clients[0])
    integration_id = await create(
        clients[0], tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    started = await clients[0].post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    callback = urlsplit(provider.consent(started.json()["authorization_url"]))
    connected = await clients[1].get(
        f"{callback.path}?{callback.query}", headers={"Accept": "application/json"}
    )
    assert connected.status_code == 200, connected.text
    await asyncio.sleep(1.2)  # the access token has expired on every replica

    responses = await asyncio.gather(
        *(
            client_.post(
                f"/api/v2/execute/{integration_id}/me",
                json={"input_data": {}},
                headers=tenant.headers,
            )
            for client_ in spread(clients, 24)
        )
    )
    results = [response.json() for response in responses]
    refreshes = provider.token_requests(client, "refresh_token")
    measure("token_requests", provider.token_requests(client))
    measure("refresh_requests", refreshes)
    measure("refused_refresh_tokens", provider.stats(client)["refused_refresh_tokens"])
    assert all(result["success"] for result in results), results
    assert refreshes == 1
    assert provider.stats(client)["refused_refresh_tokens"] == 0
    assert len({seen.headers["authorization"] for seen in upstream.seen}) == 1
