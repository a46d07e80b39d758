"""`DEFAULT_TIMEOUT_MS` is the `timeout_ms` of an integration saved without one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adaptor.config import Settings
from tests.conftest import Backend, Tenant, make_settings
from tests.integrations.payloads import rest_integration


@pytest.fixture
def settings(tmp_path: Path, backend: Backend) -> Settings:
    return make_settings(tmp_path, backend, default_timeout_ms=7000)


def without_timeout() -> dict[str, object]:
    document = rest_integration()
    del document["timeout_ms"]
    return document


async def test_an_integration_without_timeout_ms_gets_the_setting(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=without_timeout(), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["timeout_ms"] == 7000
    integration_id = created.json()["integration_id"]
    read = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert read.json()["timeout_ms"] == 7000

    replaced = await app_client.put(
        f"/api/v2/integrations/{integration_id}",
        json=without_timeout(),
        headers={**tenant.headers, "If-Match": '"1"'},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["timeout_ms"] == 7000


async def test_a_timeout_ms_of_its_own_is_kept(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["timeout_ms"] == 3000
