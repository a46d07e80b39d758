from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from adaptor.errors import Unauthorized
from adaptor.keys.service import ApiKeyService
from adaptor.services import Services
from tests.conftest import ADMIN_HEADERS, ADMIN_KEY, Tenant, new_tenant


async def test_admin_creates_a_tenant_key_shown_once(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v2/admin/api-keys", json={"tenant_id": "acme", "name": "bot"}, headers=ADMIN_HEADERS
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"key_id", "api_key", "tenant_id", "created_at"}
    assert body["tenant_id"] == "acme"
    listed = await app_client.get("/api/v2/admin/api-keys?tenant_id=acme", headers=ADMIN_HEADERS)
    assert listed.status_code == 200
    assert body["api_key"] not in listed.text
    assert [item["key_id"] for item in listed.json()["items"]] == [body["key_id"]]


async def test_missing_key_is_401_with_problem_json(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/v2/integrations", headers={"X-Tenant-ID": "acme"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_unknown_key_is_401(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(
        "/api/v2/integrations", headers={"Authorization": "Bearer adk_nope", "X-Tenant-ID": "a"}
    )
    assert response.status_code == 401


async def test_revoked_key_is_401(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert (await app_client.get("/api/v2/integrations", headers=tenant.headers)).status_code == 200
    listed = await app_client.get(
        f"/api/v2/admin/api-keys?tenant_id={tenant.tenant_id}", headers=ADMIN_HEADERS
    )
    key_id = listed.json()["items"][0]["key_id"]
    revoked = await app_client.delete(f"/api/v2/admin/api-keys/{key_id}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 204
    assert (await app_client.get("/api/v2/integrations", headers=tenant.headers)).status_code == 401
    listed = await app_client.get(
        f"/api/v2/admin/api-keys?tenant_id={tenant.tenant_id}", headers=ADMIN_HEADERS
    )
    assert listed.json()["items"][0]["revoked_at"] is not None


async def test_revoking_an_unknown_key_is_404(app_client: httpx.AsyncClient) -> None:
    response = await app_client.delete(
        "/api/v2/admin/api-keys/00000000-0000-0000-0000-000000000000", headers=ADMIN_HEADERS
    )
    assert response.status_code == 404


async def test_tenant_key_cannot_name_another_tenant(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = {**tenant.headers, "X-Tenant-ID": "someone-else"}
    assert (await app_client.get("/api/v2/integrations", headers=headers)).status_code == 403


async def test_tenant_key_cannot_use_admin_routes(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/admin/api-keys", json={"tenant_id": "x"}, headers=tenant.headers
    )
    assert response.status_code == 403


async def test_admin_key_may_name_any_tenant_but_must_name_one(
    app_client: httpx.AsyncClient,
) -> None:
    ok = await app_client.get("/api/v2/integrations", headers={**ADMIN_HEADERS, "X-Tenant-ID": "z"})
    assert ok.status_code == 200
    missing = await app_client.get("/api/v2/integrations", headers=ADMIN_HEADERS)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["header", "X-Tenant-ID"]


async def test_tenant_key_defaults_to_its_own_tenant(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = {"Authorization": tenant.headers["Authorization"]}
    assert (await app_client.get("/api/v2/integrations", headers=headers)).status_code == 200


async def test_key_list_pages_with_a_cursor(app_client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await new_tenant(app_client)
    first = (await app_client.get("/api/v2/admin/api-keys?limit=2", headers=ADMIN_HEADERS)).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = await app_client.get(
        f"/api/v2/admin/api-keys?limit=2&cursor={first['next_cursor']}", headers=ADMIN_HEADERS
    )
    ids = {item["key_id"] for item in first["items"]}
    assert ids.isdisjoint(item["key_id"] for item in second.json()["items"])


async def test_bad_tenant_id_on_key_creation_is_located(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v2/admin/api-keys", json={"tenant_id": "has spaces"}, headers=ADMIN_HEADERS
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "tenant_id"]


async def test_replicas_starting_together_bootstrap_one_admin_key(services: Services) -> None:
    configured = "adk_replica_bootstrap_key_0123456789abcdefghij"
    replicas = [ApiKeyService(services.database) for _ in range(4)]
    shown = await asyncio.gather(*(keys.ensure_bootstrap_admin(configured) for keys in replicas))
    assert shown == [None] * 4
    caller = await replicas[0].authenticate(f"Bearer {configured}")
    assert caller.role == "admin"


async def test_changing_admin_api_key_replaces_the_previous_bootstrap_key(
    services: Services,
) -> None:
    first = "adk_first_bootstrap_value_0123456789abcdefgh"
    second = "adk_second_bootstrap_value_0123456789abcdefg"
    keys = ApiKeyService(services.database)
    try:
        await keys.ensure_bootstrap_admin(first)
        assert (await keys.authenticate(f"Bearer {first}")).role == "admin"
        await keys.ensure_bootstrap_admin(second)  # the variable changed, the service restarted
        restarted = ApiKeyService(services.database)
        assert (await restarted.authenticate(f"Bearer {second}")).role == "admin"
        with pytest.raises(Unauthorized):
            await restarted.authenticate(f"Bearer {first}")
    finally:
        await ApiKeyService(services.database).ensure_bootstrap_admin(ADMIN_KEY)


@pytest.mark.parametrize("length", [6, 12, 47])
async def test_a_key_prefix_shows_at_most_a_third_of_the_key(
    services: Services, length: int
) -> None:
    plain = uuid4().hex[:length].ljust(length, "k")
    created = await services.keys.create(tenant_id="p", name="short", plain=plain)
    page = await services.keys.page(tenant_id="p", cursor=None, limit=500)
    info = next(item for item in page.items if item.key_id == created.key_id)
    assert len(info.key_prefix) <= len(created.api_key) // 3
    assert len(info.key_prefix) <= 10


async def test_an_expired_key_is_refused_and_its_expiry_listed(
    app_client: httpx.AsyncClient, services: Services
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    response = await app_client.post(
        "/api/v2/admin/api-keys",
        json={"tenant_id": "expiring", "expires_at": soon.isoformat()},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 201, response.text
    key = response.json()["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await app_client.get("/api/v2/integrations", headers=headers)).status_code == 200
    listed = await app_client.get(
        "/api/v2/admin/api-keys?tenant_id=expiring", headers=ADMIN_HEADERS
    )
    assert listed.json()["items"][-1]["expires_at"] is not None
    await asyncio.sleep(1.1)
    assert (await app_client.get("/api/v2/integrations", headers=headers)).status_code == 401


async def test_an_expiry_in_the_past_is_refused(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v2/admin/api-keys",
        json={"tenant_id": "x", "expires_at": "2001-01-01T00:00:00Z"},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["body", "expires_at"], "msg": "must be in the future"}
    ]
