"""`type: custom`: the adapter named by `custom_adapter`, found through an `adaptor.integrations`
entry point of an installed distribution."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Backend, Tenant


@pytest.fixture
def backend() -> Backend:
    return Backend("embedded", None, None)


@pytest.fixture(autouse=True)
def echo_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install a distribution that declares the `echo` adapter, the way an installer does: a
    `.dist-info` directory with `entry_points.txt` on `sys.path`."""
    site = tmp_path / "site-packages"
    info = site / "adaptor_echo_adapter-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: adaptor-echo-adapter\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[adaptor.integrations]\necho = tests.protocols.echo_adapter:EchoAdapterFactory\n"
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def custom(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Echo",
        "type": "custom",
        "category": "test",
        "custom_adapter": "echo",
        "metadata": {"greeting": "hello"},
        "endpoints": {
            "say": {
                "path": "/say",
                "method": "POST",
                "request_mapping": {"body": {"text": "variables.text"}},
            }
        },
    }
    document.update(overrides)
    return document


async def test_the_named_entry_point_adapter_runs_the_integration(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post("/api/v2/integrations", json=custom(), headers=tenant.headers)
    assert created.status_code == 201, created.text
    integration_id = created.json()["integration_id"]

    executed = await app_client.post(
        f"/api/v2/execute/{integration_id}/say",
        json={"input_data": {"variables": {"text": "hi"}}},
        headers=tenant.headers,
    )

    assert executed.status_code == 200, executed.text
    assert executed.json()["data"] == {
        "greeting": "hello",
        "endpoint": "/say",
        "body": {"text": "hi"},
    }


async def test_an_unknown_adapter_name_is_a_422_listing_the_installed_ones(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations", json=custom(custom_adapter="ldap"), headers=tenant.headers
    )

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "custom_adapter"]
    assert "no custom adapter named 'ldap' is installed" in error["msg"]
    assert "echo" in error["msg"]


async def test_a_custom_integration_must_name_its_adapter(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations", json=custom(custom_adapter=None), headers=tenant.headers
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "custom_adapter"]
    assert "is required for type custom" in response.json()["errors"][0]["msg"]


async def test_the_plugins_own_checks_run_at_save(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations", json=custom(metadata={}), headers=tenant.headers
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"loc": ["body", "metadata", "greeting"], "msg": "is required by the echo adapter"}
    ]


async def test_custom_adapter_is_refused_on_other_types(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = custom(type="rest_api", base_url="https://api.example.com")

    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"loc": ["body", "custom_adapter"], "msg": "is only for type custom"}
    ]
