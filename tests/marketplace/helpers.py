from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Tenant

MARKETPLACE = "/api/v2/marketplace"


async def install(
    client: httpx.AsyncClient, tenant: Tenant, item_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{MARKETPLACE}/items/{item_id}/install", json=body, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def execute(
    client: httpx.AsyncClient,
    tenant: Tenant,
    integration_id: str,
    endpoint: str,
    input_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v2/execute/{integration_id}/{endpoint}",
        json={"input_data": input_data or {}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
