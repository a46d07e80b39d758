"""A second tenant cannot list, read, change, delete or execute the first one's integration."""

from __future__ import annotations

import httpx
import pytest

from adaptor.services import Services
from tests.conftest import ADMIN_HEADERS, Tenant
from tests.integrations.payloads import rest_integration

ROUTES = [
    ("GET", "/api/v2/integrations/{id}", None),
    ("PUT", "/api/v2/integrations/{id}", rest_integration()),
    ("PATCH", "/api/v2/integrations/{id}", {"name": "taken over"}),
    ("DELETE", "/api/v2/integrations/{id}", None),
    (
        "POST",
        "/api/v2/execute/{id}/get_customer",
        {"input_data": {"variables": {"customer_id": 1}}},
    ),
    ("GET", "/api/v2/integrations/{id}/executions", None),
    ("GET", "/api/v2/integrations/{id}/health", None),
    ("POST", "/api/v2/integrations/{id}/test", None),
    ("POST", "/api/v2/integrations/{id}/test-cases", []),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_other_tenant_sees_404(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    path: str,
    body: dict | None,
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    integration_id = created.json()["integration_id"]
    url = path.format(id=integration_id)
    response = await app_client.request(method, url, json=body, headers=other_tenant.headers)
    assert response.status_code == 404
    still = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert still.status_code == 200
    assert still.json()["name"] == "Customers API"


async def test_other_tenant_list_is_empty(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await app_client.post("/api/v2/integrations", json=rest_integration(), headers=tenant.headers)
    listed = await app_client.get("/api/v2/integrations", headers=other_tenant.headers)
    assert listed.json()["items"] == []


async def test_admin_acting_for_another_tenant_sees_404(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    url = f"/api/v2/integrations/{created.json()['integration_id']}"
    as_other = await app_client.get(url, headers={**ADMIN_HEADERS, "X-Tenant-ID": "elsewhere"})
    as_owner = await app_client.get(url, headers={**ADMIN_HEADERS, "X-Tenant-ID": tenant.tenant_id})
    assert as_other.status_code == 404
    assert as_owner.status_code == 200


async def test_repository_filters_by_tenant(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    from adaptor.integrations.repository import IntegrationRepository

    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    integration_id = created.json()["integration_id"]
    async with services.database.session() as session:
        repo = IntegrationRepository(session)
        assert await repo.get("intruder", integration_id) is None
        assert await repo.get(tenant.tenant_id, integration_id) is not None
