"""Helpers for the data-protocol tests: the service on its embedded backend, and integration
documents created and executed through its HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from adaptor.app import create_app
from tests.conftest import Backend, Tenant, make_settings, new_tenant, serve_app


@asynccontextmanager
async def data_service(
    tmp_path: Path, *, retire_grace_s: float | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Tenant]]:
    """The app (SQLite + in-process store, private networks allowed) and a tenant of its own;
    `retire_grace_s` shortens how long a replaced adapter stays open."""
    settings = make_settings(tmp_path, Backend("embedded", None, None), **overrides)
    app = create_app(settings)
    async with serve_app(app) as client:
        if retire_grace_s is not None:
            app.state.services.runtimes.retire_grace_s = retire_grace_s
        yield client, await new_tenant(client)


async def create(client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]) -> str:
    response = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["integration_id"])


async def refused(
    client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]
) -> dict[str, str]:
    """The 422's problems of a document the service refuses to save, as location → message."""
    response = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422, response.text
    return {".".join(map(str, item["loc"])): item["msg"] for item in response.json()["errors"]}


async def execute(
    client: httpx.AsyncClient,
    tenant: Tenant,
    integration_id: str,
    endpoint: str,
    input_data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v2/execute/{integration_id}/{endpoint}",
        json={"input_data": input_data or {}, **extra},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
