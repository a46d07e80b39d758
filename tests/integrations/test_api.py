from __future__ import annotations

import copy

import httpx

from adaptor.services import Services
from tests.conftest import Tenant
from tests.integrations.payloads import rest_integration

SECRET = "sk_live_SECRET_1234567890"


async def create(client: httpx.AsyncClient, tenant: Tenant, **overrides: object) -> dict:
    response = await client.post(
        "/api/v2/integrations", json=rest_integration(**overrides), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_returns_the_stored_config_with_secrets_masked(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    assert response.status_code == 201
    body = response.json()
    assert body["tenant_id"] == tenant.tenant_id
    assert body["auth_config"]["credentials"]["api_key"] == "********"
    assert body["endpoints"]["get_customer"]["name"] == "get_customer"
    assert body["retry_config"]["max_retries"] == 3
    assert response.headers["etag"] == '"1"'
    assert SECRET not in response.text


async def test_read_and_list_mask_secrets(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create(app_client, tenant)
    read = await app_client.get(
        f"/api/v2/integrations/{created['integration_id']}", headers=tenant.headers
    )
    listed = await app_client.get("/api/v2/integrations", headers=tenant.headers)
    for response in (read, listed):
        assert response.status_code == 200
        assert SECRET not in response.text
        assert "********" in response.text


async def test_basic_auth_username_is_not_a_secret(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(
        app_client,
        tenant,
        auth_config={"type": "basic_auth", "credentials": {"username": "bob", "password": "pw1"}},
    )
    assert created["auth_config"]["credentials"] == {"username": "bob", "password": "********"}


async def test_put_with_matching_if_match_bumps_the_version(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    document = rest_integration(name="Renamed")
    document["auth_config"]["credentials"]["api_key"] = "********"
    response = await app_client.put(
        url, json=document, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["version"] == 2
    assert response.headers["etag"] == '"2"'


async def test_stale_if_match_is_412_and_changes_nothing(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    first = await app_client.patch(
        url, json={"name": "A"}, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    second = await app_client.patch(
        url, json={"name": "B"}, headers={**tenant.headers, "If-Match": '"1"'}
    )
    assert second.status_code == 412
    assert second.json()["status"] == 412
    assert (await app_client.get(url, headers=tenant.headers)).json()["name"] == "A"
    stale_delete = await app_client.delete(url, headers={**tenant.headers, "If-Match": '"1"'})
    assert stale_delete.status_code == 412


async def test_patch_with_mask_keeps_the_stored_secret(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant, settings: object
) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    response = await app_client.patch(
        url,
        json={"auth_config": {"credentials": {"api_key": "********"}}, "timeout_ms": 4000},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    loaded = await services.integrations.load(tenant.tenant_id, created["integration_id"])
    assert loaded.config.auth_config.credentials["api_key"] == SECRET
    assert loaded.config.timeout_ms == 4000


async def test_patch_with_a_new_secret_replaces_it(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    response = await app_client.patch(
        url, json={"auth_config": {"credentials": {"api_key": "sk_new"}}}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert "sk_new" not in response.text
    loaded = await services.integrations.load(tenant.tenant_id, created["integration_id"])
    assert loaded.config.auth_config.credentials["api_key"] == "sk_new"


async def test_secrets_are_encrypted_in_the_database(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    from sqlalchemy import text

    created = await create(app_client, tenant)
    async with services.database.session() as session:
        row = (
            await session.execute(
                text("SELECT config, secrets FROM integrations WHERE integration_id = :i"),
                {"i": created["integration_id"]},
            )
        ).one()
    assert SECRET not in str(row[0])
    assert SECRET not in str(row[1])


async def test_patch_merges_and_null_removes(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    response = await app_client.patch(
        url, json={"description": None, "headers": {"X-Extra": "1"}}, headers=tenant.headers
    )
    body = response.json()
    assert body["description"] is None
    assert body["headers"] == {"X-Client": "adaptor", "X-Extra": "1"}


async def test_patch_cannot_change_identity(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    response = await app_client.patch(url, json={"tenant_id": "other"}, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "tenant_id"]


async def test_patch_with_invalid_values_names_each_field(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    response = await app_client.patch(
        url, json={"timeout_ms": 5, "retry_config": {"max_retries": 99}}, headers=tenant.headers
    )
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert locs == {("body", "timeout_ms"), ("body", "retry_config", "max_retries")}


async def test_delete_then_read_is_404(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create(app_client, tenant)
    url = f"/api/v2/integrations/{created['integration_id']}"
    assert (await app_client.delete(url, headers=tenant.headers)).status_code == 204
    assert (await app_client.get(url, headers=tenant.headers)).status_code == 404


async def test_list_filters_by_type_category_and_enabled(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await create(app_client, tenant, category="crm")
    await create(app_client, tenant, category="support", enabled=False)
    crm = await app_client.get("/api/v2/integrations?category=crm", headers=tenant.headers)
    disabled = await app_client.get("/api/v2/integrations?enabled=false", headers=tenant.headers)
    graphql = await app_client.get("/api/v2/integrations?type=graphql", headers=tenant.headers)
    assert [i["category"] for i in crm.json()["items"]] == ["crm"]
    assert [i["category"] for i in disabled.json()["items"]] == ["support"]
    assert graphql.json()["items"] == []


async def test_list_pages_through_everything_once(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = {(await create(app_client, tenant))["integration_id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await app_client.get(f"/api/v2/integrations{query}", headers=tenant.headers)).json()
        seen.extend(item["integration_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(created)


async def test_limit_out_of_range_and_bad_cursor_are_422(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    too_big = await app_client.get("/api/v2/integrations?limit=501", headers=tenant.headers)
    bad_cursor = await app_client.get("/api/v2/integrations?cursor=%%%", headers=tenant.headers)
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["loc"] == ["query", "limit"]
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_invalid_body_names_every_offending_field(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = rest_integration(timeout_ms=10, name="", type="soap")
    document["retry_config"] = {"max_retries": "many"}
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert {
        ("body", "timeout_ms"),
        ("body", "name"),
        ("body", "type"),
        ("body", "retry_config", "max_retries"),
    } <= locs


async def test_unknown_fields_are_rejected(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    document = rest_integration(colour="blue")
    document["endpoints"]["get_customer"]["verb"] = "GET"
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert ("body", "colour") in locs
    assert ("body", "endpoints", "get_customer", "verb") in locs


async def test_missing_credentials_are_named(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    document = rest_integration(auth_config={"type": "bearer_token", "credentials": {}})
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "auth_config", "credentials", "token"]


async def test_invalid_mapping_is_refused_at_save(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = copy.deepcopy(rest_integration())
    endpoint = document["endpoints"]["get_customer"]
    endpoint["request_mapping"]["query_params"] = {"q": "variables.[unclosed"}
    endpoint["response_mapping"]["transformations"] = [{"field": "email", "transform": "shout"}]
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422, response.text
    locs = [tuple(e["loc"][:5]) for e in response.json()["errors"]]
    assert ("body", "endpoints", "get_customer", "request_mapping", "query_params") in locs
    assert ("body", "endpoints", "get_customer", "response_mapping", "transformations") in locs


async def test_duplicate_integration_id_is_409(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create(app_client, tenant)
    response = await app_client.post(
        "/api/v2/integrations",
        json=rest_integration(integration_id=created["integration_id"]),
        headers=other_tenant.headers,
    )
    assert response.status_code == 409
