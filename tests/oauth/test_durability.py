"""Tokens across a crash, and secrets kept out of every response, log line and trace."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from adaptor.app import create_app
from adaptor.services import Services
from tests.conftest import Backend, Tenant, make_settings, new_tenant, serve_app
from tests.executions.test_execute import create, execute
from tests.executions.upstream import Reply, Upstream
from tests.oauth.provider import Provider
from tests.oauth.test_flows import connect, oauth_integration


async def test_a_rotated_refresh_token_survives_a_crash_after_the_refresh(
    tmp_path: Path, backend: Backend, upstream: Upstream, provider: Provider
) -> None:
    client = provider.client(ttl_s=1)
    settings = make_settings(tmp_path, backend)
    first: FastAPI = create_app(settings)
    async with serve_app(first) as app_client:
        tenant = await new_tenant(app_client)
        integration_id = await create(
            app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
        )
        await connect(app_client, tenant, provider, integration_id)
        await asyncio.sleep(1.2)
        # The refresh happens, then the process dies while the upstream call is under way.
        upstream.reply("GET", "/v1/me", Reply(200, {"id": "u_1"}, delay_s=2))
        call = asyncio.ensure_future(execute(app_client, tenant, integration_id, "me"))
        while upstream.count("/v1/me") == 0:
            await asyncio.sleep(0.02)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
    assert provider.token_requests(client, "refresh_token") == 1

    upstream.reply("GET", "/v1/me", Reply(200, {"id": "u_1"}))
    await asyncio.sleep(1.2)
    second: FastAPI = create_app(settings)
    async with serve_app(second) as app_client:
        result = (await execute(app_client, tenant, integration_id, "me")).json()
    assert result["success"] is True, result
    assert provider.token_requests(client, "refresh_token") == 2
    assert provider.stats(client)["refused_refresh_tokens"] == 0  # the old one was never reused


async def test_tokens_and_secrets_never_reach_responses_logs_or_traces(
    app_client: httpx.AsyncClient,
    services: Services,
    tenant: Tenant,
    upstream: Upstream,
    provider: Provider,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = provider.client(ttl_s=1)
    integration_id = await create(
        app_client, tenant, oauth_integration(upstream, provider, client, "authorization_code")
    )
    started = await app_client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    connected = await connect(app_client, tenant, provider, integration_id)
    upstream.reply(
        "GET",
        "/v1/me",
        Reply(401, {"error": "invalid_token"}),
        Reply(200, {"id": "u_1"}),
    )
    answers = [started.text, str(connected)]
    await asyncio.sleep(1.2)
    for _ in range(2):
        response = await execute(
            app_client, tenant, integration_id, "me", options={"debug_mode": True}
        )
        answers.append(response.text)
        assert "trace" in response.json()["metadata"]
    answers.append(
        (
            await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
        ).text
    )
    tokens = await services.oauth.token_store(tenant.tenant_id, integration_id).load(fresh=True)
    assert tokens is not None
    assert tokens.refresh_token is not None
    secrets = {client.client_secret, tokens.access_token, tokens.refresh_token}
    secrets |= {seen.headers["authorization"].removeprefix("Bearer ") for seen in upstream.seen}
    captured = capsys.readouterr()
    for secret in secrets:
        for text in [*answers, captured.out, captured.err]:
            assert secret not in text
    assert "auth.oauth2.token_refreshed" in captured.out
