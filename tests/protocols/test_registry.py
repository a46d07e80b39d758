"""The adapter registry: one adapter per integration type, refused types at save time, and the
runtime cache building and closing adapters whatever their protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from adaptor.auth_handlers.base import BaseAuthHandler
from adaptor.domain import (
    IntegrationResponse,
    IntegrationSpec,
    IntegrationType,
    RetryConfig,
)
from adaptor.errors import ValidationFailed
from adaptor.integrations.service import IntegrationService
from adaptor.protocols.base import BaseIntegration, CallContext
from adaptor.protocols.registry import (
    AdapterContext,
    AdapterOptions,
    AdapterRegistry,
    Problem,
    default_registry,
)
from adaptor.protocols.rest import RESTAdapterFactory, RESTIntegration
from adaptor.services import Services
from tests.conftest import Tenant


def spec(**overrides: Any) -> IntegrationSpec:
    document: dict[str, Any] = {
        "name": "Echo",
        "type": "custom",
        "category": "test",
        "endpoints": {"echo": {"path": "/echo", "method": "POST"}},
    }
    document.update(overrides)
    return IntegrationSpec.model_validate(document)


class EchoIntegration(BaseIntegration):
    """Answers with what the pipeline handed it, so a test sees the adapter's inputs."""

    def __init__(self, config: IntegrationSpec, closed: list[str]) -> None:
        super().__init__(config)
        self.closed = closed

    async def execute(
        self,
        endpoint: str,
        method: str,
        request_data: Mapping[str, Any] | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = None,
        *,
        deadline: float | None = None,
        call: CallContext | None = None,
    ) -> IntegrationResponse:
        assert call is not None
        return IntegrationResponse(
            success=True,
            status_code=None,
            data={
                "endpoint": endpoint,
                "method": method,
                "body": (request_data or {}).get("body"),
                "request_id": call.request_id,
                "endpoint_name": call.endpoint.name,
                "version": self.config.description,
            },
        )

    async def close(self) -> None:
        self.closed.append(self.config.description or "")


class EchoFactory:
    def __init__(self) -> None:
        self.closed: list[str] = []
        self.created = 0

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        if "echo" not in spec.endpoints:
            return [(("endpoints",), "an echo integration needs an `echo` endpoint")]
        return []

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> BaseIntegration:
        self.created += 1
        return EchoIntegration(spec, self.closed)


def test_a_type_without_an_adapter_is_a_problem_at_type_naming_the_supported_ones() -> None:
    registry = AdapterRegistry()
    registry.register(IntegrationType.REST_API, RESTAdapterFactory())

    problems = registry.validate(spec())

    assert problems == [
        (
            ("type",),
            "integration type 'custom' cannot be executed by this service (supported: rest_api)",
        )
    ]


def test_the_factory_of_the_type_checks_the_configuration() -> None:
    registry = AdapterRegistry()
    registry.register(IntegrationType.CUSTOM, EchoFactory())

    assert registry.validate(spec()) == []
    assert registry.validate(spec(endpoints={"other": {"path": "/x"}})) == [
        (("endpoints",), "an echo integration needs an `echo` endpoint")
    ]


def test_the_default_registry_runs_rest() -> None:
    registry = default_registry()

    assert IntegrationType.REST_API in registry.supported()
    assert registry.validate(spec(type="rest_api", base_url="https://api.example.com")) == []
    assert registry.validate(spec(type="rest_api")) == [
        (("base_url",), "is required for type rest_api with relative endpoint paths")
    ]


async def test_an_unsupported_type_is_refused_at_save_and_nothing_is_stored(
    services: Services, tenant: Tenant
) -> None:
    only_rest = AdapterRegistry()
    only_rest.register(IntegrationType.REST_API, RESTAdapterFactory())
    integrations = IntegrationService(
        services.database, services.secret_box, services.mapping, adapters=only_rest
    )

    with pytest.raises(ValidationFailed) as refused:
        await integrations.create(tenant.tenant_id, spec())

    assert [error["loc"] for error in refused.value.errors] == [["body", "type"]]
    page = await integrations.page(tenant.tenant_id, filters={}, cursor=None, limit=10)
    assert page.items == []


async def test_rest_integrations_get_the_rest_adapter(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post(
        "/api/v2/integrations",
        json=spec(type="rest_api", base_url="https://api.example.com").model_dump(
            mode="json", exclude_none=True
        ),
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text

    runtime = await services.runtimes.get(tenant.tenant_id, created.json()["integration_id"])

    assert isinstance(runtime.adapter, RESTIntegration)


async def test_the_pipeline_runs_any_registered_adapter_and_closes_replaced_ones(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    factory = EchoFactory()
    services.integrations.adapters.register(IntegrationType.CUSTOM, factory)
    services.runtimes.retire_grace_s = 0.0
    document = spec(
        description="v1",
        endpoints={
            "echo": {
                "path": "/echo",
                "method": "POST",
                "request_mapping": {"body": {"text": "variables.text"}},
            }
        },
    ).model_dump(mode="json", exclude_none=True)
    created = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert created.status_code == 201, created.text
    integration_id = created.json()["integration_id"]

    executed = await app_client.post(
        f"/api/v2/execute/{integration_id}/echo",
        json={"input_data": {"variables": {"text": "hi"}}},
        headers={**tenant.headers, "X-Request-ID": "turn-7"},
    )

    assert executed.status_code == 200, executed.text
    result = executed.json()
    assert result["success"] is True
    assert result["data"] == {
        "endpoint": "/echo",
        "method": "POST",
        "body": {"text": "hi"},
        "request_id": "turn-7",
        "endpoint_name": "echo",
        "version": "v1",
    }

    changed = await app_client.patch(
        f"/api/v2/integrations/{integration_id}",
        json={"description": "v2"},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    for _ in range(100):
        if factory.closed:
            break
        await asyncio.sleep(0.01)
    assert factory.closed == ["v1"]

    again = await app_client.post(
        f"/api/v2/execute/{integration_id}/echo",
        json={"input_data": {"variables": {"text": "hi"}}},
        headers=tenant.headers,
    )
    assert again.json()["data"]["version"] == "v2"
    assert factory.created == 2

    await services.runtimes.close()
    assert factory.closed == ["v1", "v2"]
