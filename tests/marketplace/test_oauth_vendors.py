"""The OAuth 2.0 variants of Jira and HubSpot installed from their templates and run through
the OAuth2 handler: consent and code exchange at oauth2-mock-server (from npm), a refresh when
the token expires, and the API calls against Prism serving the vendors' own descriptions."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.conftest import Tenant
from tests.marketplace.helpers import execute, install
from tests.oauth.provider import Client, Provider


async def connect(
    client: httpx.AsyncClient, tenant: Tenant, provider: Provider, integration_id: str
) -> dict[str, Any]:
    """Point the installed integration at the provider, consent, finish at the callback."""
    url = f"/api/v2/integrations/{integration_id}"
    patched = await client.patch(
        url,
        json={
            "auth_config": {
                "authorization_url": provider.authorization_url,
                "token_url": provider.token_url,
            }
        },
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text
    before = await client.get(url, headers=tenant.headers)
    assert before.json()["auth_status"] == "needs_authorization"
    started = await client.post(f"{url}/oauth/authorize", headers=tenant.headers)
    assert started.status_code == 200, started.text
    callback = urlsplit(provider.consent(started.json()["authorization_url"]))
    back = await client.get(
        f"{callback.path}?{callback.query}", headers={"Accept": "application/json"}
    )
    assert back.status_code == 200, back.text
    shown = await client.get(url, headers=tenant.headers)
    assert shown.json()["auth_status"] == "ok"
    return dict(shown.json())


def credentials(client: Client) -> dict[str, str]:
    return {"client_id": client.client_id, "client_secret": client.client_secret}


async def test_jira_oauth_consents_then_searches_through_the_atlassian_gateway_shape(
    app_client: httpx.AsyncClient, tenant: Tenant, provider: Provider, jira_prism: str
) -> None:
    oauth_client = provider.client()
    created = await install(
        app_client,
        tenant,
        "jira-oauth",
        credentials=credentials(oauth_client),
        config_overrides={
            "cloud_id": "11223344-a1b2-3b33-c444-def123456789",
            "base_url": jira_prism,
        },
    )
    integration_id = created["integration_id"]
    shown = await connect(app_client, tenant, provider, integration_id)
    assert shown["oauth2_token"]["has_refresh_token"] is True

    found = await execute(
        app_client, tenant, integration_id, "search_issues", {"jql": "project = SUP"}
    )

    assert found["success"] is True, found
    assert found["metadata"]["pages"] >= 1
    assert provider.token_requests(oauth_client, "authorization_code") == 1
    assert provider.token_requests(oauth_client) == 1  # the consented token was used as is
    assert oauth_client.client_secret not in str(found) + str(shown)


async def test_hubspot_oauth_refreshes_an_expired_token_and_lists_contacts(
    app_client: httpx.AsyncClient, tenant: Tenant, provider: Provider, hubspot_prism: str
) -> None:
    oauth_client = provider.client(ttl_s=2)
    created = await install(
        app_client,
        tenant,
        "hubspot-oauth",
        credentials=credentials(oauth_client),
        config_overrides={"base_url": hubspot_prism},
    )
    integration_id = created["integration_id"]
    await connect(app_client, tenant, provider, integration_id)

    first = await execute(app_client, tenant, integration_id, "list_contacts", {"limit": 5})
    assert first["success"] is True, first
    await asyncio.sleep(2.2)  # the access token expired
    second = await execute(app_client, tenant, integration_id, "list_contacts", {"limit": 5})

    assert second["success"] is True, second
    assert {"id", "properties"} <= set(second["data"][0])
    assert provider.token_requests(oauth_client, "authorization_code") == 1
    assert provider.token_requests(oauth_client, "refresh_token") == 1
