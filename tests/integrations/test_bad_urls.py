"""A bad URL is a 422 at save time, and a stored row that no longer validates breaks nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from adaptor.services import Services
from adaptor.storage.tables import IntegrationRow
from tests.conftest import Tenant
from tests.integrations.payloads import rest_integration


@pytest.mark.parametrize(
    "base_url",
    [
        "http://",
        "https://",
        "http://:80",
        "http:///path",
        "http://exa mple.com",
        "http://[::1",
        "http://example.com:70000",
        "https://user:pw@example.com",
        "postgresql://db:5432/app",
    ],
)
async def test_a_bad_base_url_is_refused_before_anything_is_stored(
    app_client: httpx.AsyncClient, tenant: Tenant, base_url: str
) -> None:
    response = await app_client.post(
        "/api/v2/integrations", json=rest_integration(base_url=base_url), headers=tenant.headers
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["loc"] for e in errors] == [["body", "base_url"]]
    assert "pw" not in response.text
    listed = await app_client.get("/api/v2/integrations", headers=tenant.headers)
    assert listed.status_code == 200
    assert listed.json()["items"] == []


async def test_other_integration_types_keep_their_schemes(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = rest_integration(base_url="postgresql://db.internal:5432/app")
    document.update(type="database", auth_config={"type": "none"}, endpoints={})
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert response.json()["base_url"] == "postgresql://db.internal:5432/app"


async def test_every_url_field_is_checked(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    document = rest_integration(
        auth_config={
            "type": "oauth2",
            "oauth2_flow": "authorization_code",
            "token_url": "https://",
            "authorization_url": "https://a:b@idp.example.com/authorize",
            "credentials": {"client_id": "c", "client_secret": "s"},
        },
        metadata={"endpoint_url": "http://[::1"},
    )
    document["endpoints"]["absolute"] = {"path": "https://exa mple.com/x"}
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["body", "auth_config", "token_url"] in locs
    assert ["body", "auth_config", "authorization_url"] in locs
    # The field types fail first; a document whose types pass is checked further.
    document["auth_config"]["token_url"] = "https://idp.example.com/token"
    document["auth_config"]["authorization_url"] = "https://idp.example.com/authorize"
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["body", "metadata", "endpoint_url"] in locs
    assert ["body", "endpoints", "absolute", "path"] in locs


async def _store_unvalidated(services: Services, tenant: Tenant, base_url: str) -> str:
    """A row as an older version of the service could have stored it."""
    integration_id = str(uuid.uuid4())
    document = rest_integration(base_url=base_url)
    document["auth_config"] = {"type": "none"}
    now = datetime.now(UTC)
    async with services.database.session() as session:
        session.add(
            IntegrationRow(
                integration_id=integration_id,
                tenant_id=tenant.tenant_id,
                name="Old row",
                type="rest_api",
                category="crm",
                enabled=True,
                version=1,
                config=document,
                secrets=None,
                created_at=now,
                updated_at=now,
            )
        )
    return integration_id


async def test_a_stored_row_that_no_longer_validates_breaks_nothing(
    app_client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    good = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    bad_id = await _store_unvalidated(services, tenant, "http:")
    listed = await app_client.get("/api/v2/integrations", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    by_id = {item["integration_id"]: item for item in listed.json()["items"]}
    assert good.json()["integration_id"] in by_id
    assert by_id[bad_id]["stored_problems"][0]["loc"] == ["base_url"]
    assert "stored_problems" not in by_id[good.json()["integration_id"]]

    read = await app_client.get(f"/api/v2/integrations/{bad_id}", headers=tenant.headers)
    assert read.status_code == 200, read.text
    assert "base_url" not in read.json() or read.json()["base_url"] is None

    executed = await app_client.post(
        f"/api/v2/execute/{bad_id}/get_customer",
        json={"input_data": {"variables": {"customer_id": "1"}}},
        headers=tenant.headers,
    )
    assert executed.status_code == 409, executed.text
    assert "base_url" in executed.json()["detail"]

    fixed = await app_client.patch(
        f"/api/v2/integrations/{bad_id}",
        json={"base_url": "https://api.example.com"},
        headers=tenant.headers,
    )
    assert fixed.status_code == 200, fixed.text
    assert "stored_problems" not in fixed.json()
    deleted = await app_client.delete(f"/api/v2/integrations/{bad_id}", headers=tenant.headers)
    assert deleted.status_code == 204
