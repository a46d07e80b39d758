"""OAuth2 end to end through the HTTP API, against oauth2-mock-server and a real upstream."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adaptor.services import Services
from tests.conftest import Tenant
from tests.executions.test_execute import create, execute
from tests.executions.upstream import Reply, Upstream
from tests.oauth.provider import Client, Provider


def oauth_integration(
    upstream: Upstream,
    provider: Provider,
    client: Client,
    flow: str,
    *,
    metadata: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": "CRM",
        "type": "rest_api",
        "category": "crm",
        "base_url": upstream.url,
        "auth_config": {
            "type": "oauth2",
            "oauth2_flow": flow,
            "token_url": provider.token_url,
            "authorization_url": provider.authorization_url,
            "scopes": ["contacts.read", "offline_access"],
            "credentials": credentials
            or {"client_id": client.client_id, "client_secret": client.client_secret},
        },
        "timeout_ms": 3000,
        "retry_config": {"max_retries": 0},
        "metadata": metadata or {},
        "endpoints": {"me": {"path": "/v1/me", "method": "GET"}},
    }


async def connect(
    app_client: httpx.AsyncClient, tenant: Tenant, provider: Provider, integration_id: str
) -> dict[str, Any]:
    """Authorize as a person would: the consent URL, the provider's redirect, our callback."""
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    callback = urlsplit(provider.consent(response.json()["authorization_url"]))
    answer = await app_client.get(
        f"{callback.path}?{callback.query}", headers={"Accept": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def bearer(seen_headers: dict[str, str]) -> str:
    value = seen_headers["authorization"]
    assert value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


async def test_client_credentials_token_is_fetched_once_and_sent(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "client_credentials")
    )
    for _ in range(3):
        result = (await execute(app_client, tenant, integration_id, "me")).json()
        assert result["success"] is True, result
    assert provider.token_requests(client, "client_credentials") == 1
    tokens = {bearer(seen.headers) for seen in upstream.seen}
    assert len(tokens) == 1
    read = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    document = read.json()
    assert document["auth_status"] == "ok"
    assert document["oauth2_token"]["scopes"] == ["contacts.read", "offline_access"]
    assert document["oauth2_token"]["expires_at"] is not None
    assert tokens.pop() not in read.text
    assert client.client_secret not in read.text
    metrics = (await app_client.get("/metrics")).text
    counted = f'adaptor_token_refreshes_total{{integration_id="{integration_id}",result="ok"}} 1.0'
    assert counted in metrics


async def test_client_secret_post_sends_the_secret_in_the_body(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    document = oauth_integration(
        upstream,
        provider,
        client,
        "client_credentials",
        metadata={"oauth2": {"client_auth_method": "client_secret_post"}},
    )
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    assert provider.token_requests(client, "client_credentials") == 1


async def test_wrong_client_secret_is_auth_failed_and_the_upstream_is_not_called(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    document = oauth_integration(upstream, provider, client, "client_credentials")
    document["auth_config"]["credentials"]["client_secret"] = "not-the-secret-42"
    integration_id = await create(app_client, tenant, document)
    response = await execute(app_client, tenant, integration_id, "me")
    result = response.json()
    assert result["success"] is False
    assert result["error"]["code"] == "auth_failed"
    assert "401" in result["error"]["message"]
    assert "invalid_client" in result["error"]["message"]
    assert "not-the-secret-42" not in response.text
    assert upstream.count("/v1/me") == 0


async def test_authorization_code_with_pkce_connects_and_executes(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    before = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert before.json()["auth_status"] == "needs_authorization"
    refused = (await execute(app_client, tenant, integration_id, "me")).json()
    assert refused["error"]["code"] == "auth_failed"
    assert "oauth/authorize" in refused["error"]["message"]

    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    started = response.json()
    query = parse_qs(urlsplit(started["authorization_url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [client.client_id]
    assert query["scope"] == ["contacts.read offline_access"]
    assert query["state"] == [started["state"]]
    assert query["redirect_uri"] == [started["redirect_uri"]]
    assert started["redirect_uri"].endswith("/api/v2/oauth/callback")
    assert "code_verifier" not in started

    callback = urlsplit(provider.consent(started["authorization_url"]))
    page = await app_client.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Connected" in page.text
    assert provider.token_requests(client, "authorization_code") == 1

    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    assert result["data"] == {"id": "u_1", "name": "Ada"}
    after = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert after.json()["auth_status"] == "ok"
    assert after.json()["oauth2_token"]["has_refresh_token"] is True
    assert bearer(upstream.seen[0].headers) not in after.text

    again = await app_client.get(
        f"{callback.path}?{callback.query}", headers={"Accept": "application/json"}
    )
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert "already used" in again.json()["detail"]
    assert provider.token_requests(client, "authorization_code") == 1


async def test_a_state_is_accepted_by_only_one_of_two_concurrent_callbacks(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    callback = urlsplit(provider.consent(response.json()["authorization_url"]))
    url = f"{callback.path}?{callback.query}"
    answers = await asyncio.gather(
        *(app_client.get(url, headers={"Accept": "application/json"}) for _ in range(2))
    )
    assert sorted(answer.status_code for answer in answers) == [200, 400]
    assert provider.token_requests(client, "authorization_code") == 1


async def test_unknown_state_and_access_denied_are_clear_problems(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    unknown = await app_client.get(
        "/api/v2/oauth/callback?code=abc&state=forged", headers={"Accept": "application/json"}
    )
    assert unknown.status_code == 400
    assert "unknown" in unknown.json()["detail"]

    client = provider.client()
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    state = response.json()["state"]
    denied = await app_client.get(
        f"/api/v2/oauth/callback?error=access_denied&error_description=The+user+said+no&state={state}"
    )
    assert denied.status_code == 400
    assert denied.headers["content-type"].startswith("text/html")
    assert "access_denied" in denied.text
    assert "The user said no" in denied.text
    assert provider.token_requests(client) == 0


async def test_authorize_is_refused_for_other_flows_and_other_tenants(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    upstream: Upstream,
    provider: Provider,
) -> None:
    client = provider.client()
    cc = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "client_credentials")
    )
    refused = await app_client.post(
        f"/api/v2/integrations/{cc}/oauth/authorize", headers=tenant.headers
    )
    assert refused.status_code == 409
    code = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    hidden = await app_client.post(
        f"/api/v2/integrations/{code}/oauth/authorize", headers=other_tenant.headers
    )
    assert hidden.status_code == 404
    anonymous = await app_client.post(f"/api/v2/integrations/{code}/oauth/authorize")
    assert anonymous.status_code == 401


async def test_an_expired_token_is_refreshed_once_for_eight_concurrent_executions(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client(ttl_s=1)
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    await connect(app_client, tenant, provider, integration_id)
    first = (await execute(app_client, tenant, integration_id, "me")).json()
    assert first["success"] is True, first
    old = bearer(upstream.seen[0].headers)
    await asyncio.sleep(1.2)

    results = await asyncio.gather(
        *(execute(app_client, tenant, integration_id, "me") for _ in range(8))
    )
    assert all(result.json()["success"] for result in results), [r.json() for r in results]
    assert provider.token_requests(client, "refresh_token") == 1
    assert provider.stats(client)["refused_refresh_tokens"] == 0
    carried = {bearer(seen.headers) for seen in upstream.seen[1:]}
    assert len(carried) == 1
    assert carried != {old}


async def test_a_refused_refresh_token_needs_reauthorization(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client(ttl_s=1)
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    await connect(app_client, tenant, provider, integration_id)
    provider.revoke_all(client)
    await asyncio.sleep(1.2)
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is False
    assert result["error"]["code"] == "auth_failed"
    assert "reconnect" in result["error"]["message"]
    assert upstream.count("/v1/me") == 0
    read = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert read.json()["auth_status"] == "needs_reauthorization"
    health = await app_client.get(
        f"/api/v2/integrations/{integration_id}/health", headers=tenant.headers
    )
    assert health.json()["auth_status"] == "needs_reauthorization"
    assert health.json()["status"] == "unhealthy"

    again = (await execute(app_client, tenant, integration_id, "me")).json()
    assert again["error"]["code"] == "auth_failed"
    assert provider.token_requests(client, "refresh_token") == 1  # not asked again

    await connect(app_client, tenant, provider, integration_id)
    read = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert read.json()["auth_status"] == "ok"
    assert (await execute(app_client, tenant, integration_id, "me")).json()["success"] is True


async def test_an_upstream_401_refreshes_once_and_retries_once(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    upstream.reply(
        "GET",
        "/v1/me",
        Reply(401, {"error": "invalid_token"}),
        Reply(200, {"id": "u_1", "name": "Ada"}),
    )
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "client_credentials")
    )
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    assert provider.token_requests(client, "client_credentials") == 2
    assert upstream.count("/v1/me") == 2


async def test_an_expiry_signalled_in_a_200_body_is_treated_as_a_401(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    upstream.reply(
        "GET",
        "/v1/me",
        Reply(200, {"ok": False, "error": {"code": "TOKEN_EXPIRED"}}),
        Reply(200, {"ok": True, "id": "u_1"}),
    )
    document = oauth_integration(
        upstream,
        provider,
        client,
        "client_credentials",
        metadata={"oauth2": {"expired_when": "error.code == 'TOKEN_EXPIRED'"}},
    )
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    assert result["data"]["id"] == "u_1"
    assert provider.token_requests(client, "client_credentials") == 2


async def test_refresh_token_flow_rotates_the_configured_refresh_token(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client(ttl_s=1)
    # A refresh token issued by the provider to this client, pasted by the tenant.
    seed = await _issue_refresh_token(app_client, tenant, upstream, provider, client)
    document = oauth_integration(
        upstream,
        provider,
        client,
        "refresh_token",
        credentials={
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": seed,
        },
    )
    integration_id = await create(app_client, tenant, document)
    for _ in range(2):
        result = (await execute(app_client, tenant, integration_id, "me")).json()
        assert result["success"] is True, result
        await asyncio.sleep(1.2)
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    # Each refresh used the token the previous one rotated in, never the pasted one again.
    assert provider.token_requests(client, "refresh_token") == 3
    assert provider.stats(client)["refused_refresh_tokens"] == 0


async def _issue_refresh_token(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    upstream: Upstream,
    provider: Provider,
    client: Client,
) -> str:
    response = httpx.get(
        provider.authorization_url,
        params={"response_type": "code", "redirect_uri": "http://127.0.0.1:9/cb", "state": "x"},
    )
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    tokens = httpx.post(
        provider.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9/cb",
        },
        auth=(client.client_id, client.client_secret),
    ).json()
    return str(tokens["refresh_token"])


async def test_jwt_bearer_flow_signs_an_assertion(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    document = oauth_integration(
        upstream,
        provider,
        client,
        "jwt_bearer",
        credentials={
            "client_id": client.client_id,
            "private_key": pem,
            "claims": {"sub": "integration-user@example.com"},
        },
    )
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    assert provider.token_requests(client, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 1
    read = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert "PRIVATE KEY" not in read.text


@pytest.mark.parametrize("status", [503, 500])
async def test_a_failing_token_endpoint_is_auth_failed_with_its_status(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, status: int
) -> None:
    upstream.reply("POST", "/oauth/token", Reply(status, {"error": "temporarily_unavailable"}))
    document = {
        "name": "CRM",
        "type": "rest_api",
        "category": "crm",
        "base_url": upstream.url,
        "auth_config": {
            "type": "oauth2",
            "oauth2_flow": "client_credentials",
            "token_url": f"{upstream.url}/oauth/token",
            "credentials": {"client_id": "c", "client_secret": "s3cr3t-value"},
        },
        "retry_config": {"max_retries": 0},
        "endpoints": {"me": {"path": "/v1/me", "method": "GET"}},
    }
    integration_id = await create(app_client, tenant, document)
    response = await execute(app_client, tenant, integration_id, "me")
    result = response.json()
    assert result["error"]["code"] == "auth_failed"
    assert str(status) in result["error"]["message"]
    assert upstream.count("/v1/me") == 0
    assert "s3cr3t-value" not in response.text


async def test_a_slow_token_endpoint_is_auth_failed(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("POST", "/oauth/token", Reply(200, {"access_token": "x"}, delay_s=2))
    document = {
        "name": "CRM",
        "type": "rest_api",
        "category": "crm",
        "base_url": upstream.url,
        "timeout_ms": 300,
        "auth_config": {
            "type": "oauth2",
            "oauth2_flow": "client_credentials",
            "token_url": f"{upstream.url}/oauth/token",
            "credentials": {"client_id": "c", "client_secret": "s"},
        },
        "retry_config": {"max_retries": 0},
        "endpoints": {"me": {"path": "/v1/me", "method": "GET"}},
    }
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["error"]["code"] == "auth_failed"
    assert "token endpoint" in result["error"]["message"]
    assert upstream.count("/v1/me") == 0


async def test_deleting_the_integration_deletes_its_tokens(
    app_client: httpx.AsyncClient,
    services: Services,
    tenant: Tenant,
    upstream: Upstream,
    provider: Provider,
) -> None:
    client = provider.client()
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "client_credentials")
    )
    assert (await execute(app_client, tenant, integration_id, "me")).json()["success"] is True
    store = services.oauth.token_store(tenant.tenant_id, integration_id)
    assert await store.load(fresh=True) is not None
    deleted = await app_client.delete(
        f"/api/v2/integrations/{integration_id}", headers=tenant.headers
    )
    assert deleted.status_code == 204
    assert await store.load() is None
    assert await store.load(fresh=True) is None


async def test_an_expired_state_is_refused_and_exchanges_nothing(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    upstream: Upstream,
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("adaptor.oauth.service.STATE_TTL_S", 0.3)  # ten minutes in production
    client = provider.client()
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    callback = urlsplit(provider.consent(response.json()["authorization_url"]))
    await asyncio.sleep(0.5)
    late = await app_client.get(
        f"{callback.path}?{callback.query}", headers={"Accept": "application/json"}
    )
    assert late.status_code == 400
    assert "expired" in late.json()["detail"]
    assert provider.token_requests(client) == 0
