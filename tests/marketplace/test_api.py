"""The marketplace routes through the app, on both storage backends."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from adaptor.app import create_app
from adaptor.marketplace.catalog import builtin_template_files
from tests.conftest import ADMIN_HEADERS, Backend, Tenant, make_settings, new_tenant, serve_app
from tests.executions.upstream import Reply, Upstream
from tests.marketplace.helpers import MARKETPLACE, execute, install


def template(item_id: str) -> dict[str, Any]:
    path = next(p for p in builtin_template_files() if p.stem == item_id)
    return dict(orjson.loads(path.read_bytes()))


def loopback_template(upstream: Upstream, item_id: str | None = None) -> dict[str, Any]:
    """A small template of our own, published by an admin, whose sandbox is the upstream
    (a slug of its own per test: the PostgreSQL database is shared by the session)."""
    item_id = item_id or f"acme-{uuid.uuid4().hex[:10]}"
    return {
        "item_id": item_id,
        "name": "Acme Helpdesk",
        "description": "Tickets of the Acme helpdesk",
        "category": "support",
        "type": "rest_api",
        "provider": "Acme",
        "tags": ["tickets"],
        "template": {
            "base_config": {
                "name": "Acme Helpdesk",
                "type": "rest_api",
                "base_url": "https://{{region}}.acme.example",
                "auth_config": {"type": "api_key", "api_key_header": "X-Acme-Key"},
                "retry_config": {"max_retries": 0},
                "metadata": {"team_size": "{{team_size}}"},
                "test_endpoint": "ping",
            },
            "endpoints": [
                {"name": "ping", "path": "/ping", "method": "GET", "description": "Ping"},
                {
                    "name": "list_tickets",
                    "path": "/tickets",
                    "method": "GET",
                    "description": "Tickets",
                    "response_mapping": {"data_path": "tickets"},
                },
            ],
            "wizard": [
                {
                    "title": "Credentials",
                    "fields": [
                        {
                            "name": "api_key",
                            "label": "API key",
                            "secret": True,
                            "target": "credentials",
                        }
                    ],
                },
                {
                    "title": "Configuration",
                    "fields": [
                        {"name": "region", "label": "Region", "default": "eu"},
                        {
                            "name": "team_size",
                            "label": "Team size",
                            "type": "integer",
                            "required": False,
                        },
                    ],
                },
            ],
            "validation_rules": [
                {
                    "field": "region",
                    "type": "enum",
                    "value": ["eu", "us"],
                    "error_message": "must be eu or us",
                },
                {
                    "field": "team_size",
                    "type": "range",
                    "value": {"min": 1, "max": 500},
                    "error_message": "must be between 1 and 500",
                },
            ],
            "sandbox_base_url": upstream.url,
            "test_credentials": {"api_key": "sandbox-key-123"},
        },
    }


# ------------------------------------------------------------------------------ catalogue


async def test_the_catalogue_lists_every_template_with_counts_per_category(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    listed = await app_client.get(f"{MARKETPLACE}/items", headers=tenant.headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == len(body["items"]) >= 20
    stripe = next(i for i in body["items"] if i["item_id"] == "stripe")
    assert stripe["endpoints"] == 12
    assert "template" not in stripe
    categories = (await app_client.get(f"{MARKETPLACE}/categories", headers=tenant.headers)).json()
    assert len(categories) >= 6
    assert sum(c["count"] for c in categories) == body["total"]
    assert {"category": "payments", "count": 2} in categories


async def test_search_filters_and_sorts(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    async def ids(**params: str) -> list[str]:
        response = await app_client.get(
            f"{MARKETPLACE}/items", params=params, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        return [i["item_id"] for i in response.json()["items"]]

    assert await ids(q="soql") == ["salesforce", "salesforce-jwt"]  # description
    assert set(await ids(q="atlassian")) == {"jira", "jira-oauth"}  # provider
    assert set(await ids(q="twilio")) == {"twilio-sms", "twilio-verify", "sendgrid"}
    assert await ids(tag="otp") == ["twilio-verify"]
    assert set(await ids(category="payments")) == {"stripe", "square"}
    assert await ids(type="graphql") == ["shopify"]
    response = await app_client.get(
        f"{MARKETPLACE}/items", params={"sort": "name"}, headers=tenant.headers
    )
    names = [i["name"].lower() for i in response.json()["items"]]
    assert names == sorted(names)
    bad = await app_client.get(
        f"{MARKETPLACE}/items", params={"sort": "size"}, headers=tenant.headers
    )
    assert bad.status_code == 422


async def test_item_detail_has_its_template_and_unknown_is_404(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    item = (await app_client.get(f"{MARKETPLACE}/items/jira", headers=tenant.headers)).json()
    assert item["provider"] == "Atlassian"
    assert item["version"] == 1
    names = [e["name"] for e in item["template"]["endpoints"]]
    assert "search_issues" in names
    search = item["template"]["endpoints"][0]
    assert search["path"] == "/rest/api/3/search/jql"
    assert search["pagination"]["cursor_param"] == "nextPageToken"
    missing = await app_client.get(f"{MARKETPLACE}/items/nope", headers=tenant.headers)
    assert missing.status_code == 404


async def test_the_wizard_lists_credentials_then_configuration(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    wizard = await app_client.get(f"{MARKETPLACE}/items/salesforce/wizard", headers=tenant.headers)
    steps = wizard.json()["steps"]
    assert [s["title"] for s in steps] == ["Credentials", "Configuration"]
    assert [f["name"] for f in steps[0]["fields"]] == ["client_id", "client_secret"]
    assert steps[0]["fields"][0]["secret"] is False
    assert steps[0]["fields"][1]["secret"] is True
    version = steps[1]["fields"][1]
    assert version["name"] == "api_version"
    assert version["default"] == "65.0"
    assert version["type"] == "string"
    assert version["help_text"]


async def test_routes_need_an_api_key(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(f"{MARKETPLACE}/items")
    assert response.status_code == 401


async def test_marketplace_disabled_answers_404_everywhere(
    tmp_path: Path, backend: Backend
) -> None:
    app: FastAPI = create_app(make_settings(tmp_path, backend, enable_marketplace=False))
    async with serve_app(app) as client:
        tenant = await new_tenant(client)
        for method, path in [
            ("GET", f"{MARKETPLACE}/items"),
            ("GET", f"{MARKETPLACE}/categories"),
            ("GET", f"{MARKETPLACE}/items/stripe/wizard"),
            ("POST", f"{MARKETPLACE}/items/stripe/install"),
            ("GET", f"{MARKETPLACE}/installs"),
        ]:
            response = await client.request(method, path, headers=tenant.headers, json={})
            assert response.status_code == 404, (method, path)
        spec = (await client.get("/openapi.json")).json()
        assert not [p for p in spec["paths"] if "marketplace" in p]


# ------------------------------------------------------------------------------ install


async def test_install_without_credentials_names_each_missing_field(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        f"{MARKETPLACE}/items/salesforce/install",
        json={"config_overrides": {"my_domain": "acme.my.salesforce.com"}},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["body", "credentials", "client_id"], "msg": "Consumer key is required"},
        {"loc": ["body", "credentials", "client_secret"], "msg": "Consumer secret is required"},
    ]


async def test_wizard_rules_name_every_failure(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        f"{MARKETPLACE}/items/jira/install",
        json={
            "credentials": {"password": "t", "extra": "x"},
            "config_overrides": {"site": "acme.example.com", "email": "not-an-email"},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
    assert errors == {
        (
            "body",
            "credentials",
            "extra",
        ): "is not a field of this connector (expected ['password'])",
        ("body", "config_overrides", "site"): (
            "must be your Jira Cloud host, e.g. your-team.atlassian.net"
        ),
        ("body", "config_overrides", "email"): "must be an email address",
    }


async def test_shopify_shop_is_tidied_then_checked(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        f"{MARKETPLACE}/items/shopify/install",
        json={"credentials": {"api_key": "shpat_x"}, "config_overrides": {"shop": "evil.com"}},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "config_overrides", "shop"]
    tidied = await app_client.post(
        f"{MARKETPLACE}/items/shopify/install",
        json={
            "credentials": {"api_key": "shpat_x"},
            "config_overrides": {"shop": "https://My-Shop/"},
        },
        headers=tenant.headers,
    )
    assert tidied.status_code == 201, tidied.text
    assert tidied.json()["base_url"] == "https://my-shop.myshopify.com"
    assert tidied.json()["type"] == "graphql"


async def test_an_install_is_an_ordinary_integration_that_can_be_edited(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await install(
        app_client,
        tenant,
        "github",
        name="Our GitHub",
        credentials={"token": "ghp_SECRETSECRET"},
    )
    assert created["name"] == "Our GitHub"
    assert created["metadata"]["marketplace"] == {
        "item_id": "github",
        "version": 1,
        "test_mode": False,
    }
    assert "ghp_SECRETSECRET" not in str(created)
    url = f"/api/v2/integrations/{created['integration_id']}"
    patched = await app_client.patch(url, json={"timeout_ms": 9000}, headers=tenant.headers)
    assert patched.status_code == 200
    assert patched.json()["auth_config"]["credentials"]["token"] == "********"

    installs = await app_client.get(f"{MARKETPLACE}/installs", headers=tenant.headers)
    [entry] = installs.json()["items"]
    assert entry["integration_id"] == created["integration_id"]
    assert entry["version"] == entry["latest_version"] == 1
    others = await app_client.get(f"{MARKETPLACE}/installs", headers=other_tenant.headers)
    assert others.json()["items"] == []


async def test_test_mode_installs_against_the_sandbox_with_test_credentials(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    document = loopback_template(upstream)
    published = await app_client.post(f"{MARKETPLACE}/items", json=document, headers=ADMIN_HEADERS)
    assert published.status_code == 201, published.text
    upstream.reply("GET", "/tickets", Reply(json={"tickets": [{"id": 1}]}))
    created = await install(app_client, tenant, document["item_id"], test_mode=True)
    assert created["base_url"] == upstream.url
    result = await execute(app_client, tenant, created["integration_id"], "list_tickets")
    assert result["data"] == [{"id": 1}]
    assert upstream.seen[-1].headers["x-acme-key"] == "sandbox-key-123"


async def test_test_mode_is_refused_while_enable_test_mode_is_off(
    tmp_path: Path, backend: Backend
) -> None:
    app = create_app(make_settings(tmp_path, backend, enable_test_mode=False))
    async with serve_app(app) as client:
        tenant = await new_tenant(client)
        response = await client.post(
            f"{MARKETPLACE}/items/square/install",
            json={"test_mode": True, "credentials": {"token": "sq0-sandbox"}},
            headers=tenant.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "test_mode"]


async def test_rules_check_types_enums_and_ranges(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    document = loopback_template(upstream)
    await app_client.post(f"{MARKETPLACE}/items", json=document, headers=ADMIN_HEADERS)
    response = await app_client.post(
        f"{MARKETPLACE}/items/{document['item_id']}/install",
        json={
            "credentials": {"api_key": "k"},
            "config_overrides": {"region": "mars", "team_size": 900},
        },
        headers=tenant.headers,
    )
    errors = {e["loc"][-1]: e["msg"] for e in response.json()["errors"]}
    assert errors == {"region": "must be eu or us", "team_size": "must be between 1 and 500"}
    wrong_type = await app_client.post(
        f"{MARKETPLACE}/items/{document['item_id']}/install",
        json={"credentials": {"api_key": "k"}, "config_overrides": {"team_size": "ten"}},
        headers=tenant.headers,
    )
    assert wrong_type.json()["errors"] == [
        {"loc": ["body", "config_overrides", "team_size"], "msg": "must be a whole number"}
    ]


# ------------------------------------------------------------------------------ ratings, usage


async def test_a_new_rating_replaces_the_tenants_old_one(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    url = f"{MARKETPLACE}/items/notion/ratings"
    first = await app_client.post(url, json={"rating": 2}, headers=tenant.headers)
    assert first.json() == {"item_id": "notion", "rating": 2, "average": 2.0, "count": 1}
    await app_client.post(url, json={"rating": 4}, headers=other_tenant.headers)
    replaced = await app_client.post(url, json={"rating": 5}, headers=tenant.headers)
    assert replaced.json()["average"] == 4.5
    assert replaced.json()["count"] == 2
    item = (await app_client.get(f"{MARKETPLACE}/items/notion", headers=tenant.headers)).json()
    assert (item["rating"], item["rating_count"]) == (4.5, 2)
    bad = await app_client.post(url, json={"rating": 6}, headers=tenant.headers)
    assert bad.status_code == 422
    top = await app_client.get(
        f"{MARKETPLACE}/items", params={"sort": "rating"}, headers=tenant.headers
    )
    rated = [i for i in top.json()["items"] if i["rating"] is not None]
    assert rated[0]["rating"] >= rated[-1]["rating"]


async def test_analytics_after_executions(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, services: Any
) -> None:
    document = loopback_template(upstream)
    item_id = document["item_id"]
    await app_client.post(f"{MARKETPLACE}/items", json=document, headers=ADMIN_HEADERS)
    upstream.reply(
        "GET",
        "/tickets",
        Reply(json={"tickets": []}),
        Reply(json={"tickets": []}),
        Reply(500, {"error": {"message": "down"}}),
    )
    first = await install(app_client, tenant, item_id, test_mode=True)
    await install(app_client, tenant, item_id, test_mode=True, name="Unused")
    for _ in range(3):
        await execute(app_client, tenant, first["integration_id"], "list_tickets")
    await services.execution_logs.flush()

    tenant_view = await app_client.get(
        f"{MARKETPLACE}/items/{item_id}/analytics", headers=tenant.headers
    )
    assert tenant_view.status_code == 403
    analytics = await app_client.get(
        f"{MARKETPLACE}/items/{item_id}/analytics", headers=ADMIN_HEADERS
    )
    body = analytics.json()
    assert body["installs"] == 2
    assert body["active_installs"] == 1
    assert body["last_7_days"] == {"executions": 3, "success_rate": round(2 / 3, 4)}
    assert body["last_30_days"]["executions"] == 3
    assert body["p50_latency_ms"] is not None
    assert body["popularity"] == 2 * 10 + 3
    listed = await app_client.get(
        f"{MARKETPLACE}/items", params={"sort": "popularity"}, headers=tenant.headers
    )
    popularity = [i["popularity"] for i in listed.json()["items"]]
    assert popularity == sorted(popularity, reverse=True)
    assert next(i for i in listed.json()["items"] if i["item_id"] == item_id)["popularity"] == 23


# ------------------------------------------------------------------------------ publishing


async def test_publishing_checks_the_template_and_names_each_problem(
    app_client: httpx.AsyncClient, upstream: Upstream
) -> None:
    broken = loopback_template(upstream)
    broken["template"]["base_config"]["test_endpoint"] = "nowhere"
    broken["template"]["endpoints"][1]["response_mapping"]["data_path"] = "tickets["
    broken["template"]["wizard"][1]["fields"].append({"name": "unused", "label": "Unused"})
    response = await app_client.post(f"{MARKETPLACE}/items", json=broken, headers=ADMIN_HEADERS)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["body", "template", "wizard", 1, "fields", 2, "name"] in locs
    assert ["body", "template", "endpoints", 1, "response_mapping", "data_path"] in locs
    assert any(loc[:3] == ["body", "template", "base_config"] for loc in locs)


async def test_publishing_needs_admin_a_free_slug_and_put_for_new_versions(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    document = loopback_template(upstream)
    as_tenant = await app_client.post(f"{MARKETPLACE}/items", json=document, headers=tenant.headers)
    assert as_tenant.status_code == 403
    first = await app_client.post(f"{MARKETPLACE}/items", json=document, headers=ADMIN_HEADERS)
    assert first.json()["version"] == 1
    again = await app_client.post(f"{MARKETPLACE}/items", json=document, headers=ADMIN_HEADERS)
    assert again.status_code == 409
    builtin = await app_client.post(
        f"{MARKETPLACE}/items", json=template("stripe"), headers=ADMIN_HEADERS
    )
    assert builtin.status_code == 409
    unknown = await app_client.put(
        f"{MARKETPLACE}/items", json=loopback_template(upstream), headers=ADMIN_HEADERS
    )
    assert unknown.status_code == 404

    installed = await install(app_client, tenant, document["item_id"], test_mode=True)
    updated = copy.deepcopy(document)
    updated["template"]["base_config"]["timeout_ms"] = 7777
    second = await app_client.put(f"{MARKETPLACE}/items", json=updated, headers=ADMIN_HEADERS)
    assert second.status_code == 200
    assert second.json()["version"] == 2

    url = f"/api/v2/integrations/{installed['integration_id']}"
    kept = (await app_client.get(url, headers=tenant.headers)).json()
    assert kept["timeout_ms"] != 7777
    assert kept["metadata"]["marketplace"]["version"] == 1
    [entry] = (await app_client.get(f"{MARKETPLACE}/installs", headers=tenant.headers)).json()[
        "items"
    ]
    assert (entry["version"], entry["latest_version"]) == (1, 2)

    upgraded = await app_client.post(
        f"{MARKETPLACE}/installs/{installed['integration_id']}/upgrade", headers=tenant.headers
    )
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["timeout_ms"] == 7777
    assert upgraded.json()["metadata"]["marketplace"]["version"] == 2
    assert upgraded.json()["auth_config"]["credentials"]["api_key"] == "********"


async def test_a_builtin_template_gets_a_new_version_with_put(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = template("calendly")
    document["description"] = "Calendly, republished"
    response = await app_client.put(f"{MARKETPLACE}/items", json=document, headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    item = (await app_client.get(f"{MARKETPLACE}/items/calendly", headers=tenant.headers)).json()
    assert item["description"] == "Calendly, republished"
    assert item["source"] == "published"


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_a_broken_builtin_template_stops_start_up_in_development(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adaptor.marketplace import service as marketplace_service

    broken = tmp_path / "broken.json"
    document = template("stripe")
    document["template"]["endpoints"][0]["path"] = "/v1/customers/{missing}"
    broken.write_bytes(orjson.dumps(document))
    monkeypatch.setattr(marketplace_service, "builtin_template_files", lambda: [broken])
    from adaptor.marketplace.catalog import TemplateError

    with pytest.raises(TemplateError, match="placeholder"):
        async with serve_app(create_app(make_settings(tmp_path, backend))):
            pass


async def test_oauth_templates_install_with_their_client_credentials(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await install(
        app_client,
        tenant,
        "jira-oauth",
        credentials={"client_id": "atl-client", "client_secret": "atl-secret-value"},
        config_overrides={"cloud_id": "11223344-a1b2-3b33-c444-def123456789"},
    )
    assert created["base_url"] == (
        "https://api.atlassian.com/ex/jira/11223344-a1b2-3b33-c444-def123456789"
    )
    assert created["auth_config"]["oauth2_flow"] == "authorization_code"
    assert created["auth_config"]["credentials"] == {
        "client_id": "atl-client",
        "client_secret": "********",
    }
    bad = await app_client.post(
        f"{MARKETPLACE}/items/jira-oauth/install",
        json={
            "credentials": {"client_id": "a", "client_secret": "b"},
            "config_overrides": {"cloud_id": "acme"},
        },
        headers=tenant.headers,
    )
    assert bad.json()["errors"] == [
        {
            "loc": ["body", "config_overrides", "cloud_id"],
            "msg": "must be your site's cloud id (a UUID)",
        }
    ]
