"""Cross-cutting HTTP behaviour: request ids, problem JSON, limits, health, OpenAPI, logs."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from adaptor.app import GC_THRESHOLDS
from adaptor.services import Services
from tests.conftest import ADMIN_KEY, Tenant
from tests.integrations.payloads import rest_integration


async def test_request_id_is_echoed_or_generated(app_client: httpx.AsyncClient) -> None:
    echoed = await app_client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    generated = await app_client.get("/health/live")
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) >= 16


async def test_errors_carry_request_id_too(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/v2/integrations", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "r-1"


async def test_a_defect_is_a_500_problem_with_the_request_id_and_no_detail(
    app_client: httpx.AsyncClient,
    services: Services,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("defect holding sk_live_DO_NOT_SHOW")

    monkeypatch.setattr(services.integrations, "page", broken)
    response = await app_client.get(
        "/api/v2/integrations", headers={**tenant.headers, "X-Request-ID": "r-500"}
    )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "r-500"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "An unexpected error occurred"
    assert "DO_NOT_SHOW" not in response.text


async def test_malformed_json_is_422_located_at_body(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        content=b'{"name": "x",',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["loc"][0] == "body"
    assert "JSON" in error["msg"]


async def test_oversized_body_is_413(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    document = rest_integration(description="x" * 70_000)
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "65536" in response.json()["detail"]


async def test_oversized_chunked_body_is_413(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 8192

    response = await app_client.post(
        "/api/v2/integrations",
        content=chunks(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_unknown_route_is_problem_json(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/v2/nothing-here")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


async def test_health_live_and_ready(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/health/live")).json() == {"status": "ok"}
    ready = await app_client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "cache": "ok", "encryption": "ok"}


async def test_ready_names_the_failing_dependency(
    services: Services, app_client: httpx.AsyncClient
) -> None:
    await services.database.engine.dispose()
    original = services.database.ping

    async def broken() -> bool:
        return False

    services.database.ping = broken
    try:
        response = await app_client.get("/health/ready")
    finally:
        services.database.ping = original
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"
    assert "database" in response.json()["detail"]


async def test_openapi_describes_every_route(app_client: httpx.AsyncClient) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description") or operation.get("summary"), (method, path)
            assert operation.get("description"), f"{method.upper()} {path} has no description"


@pytest.fixture
def json_logs() -> Iterator[None]:
    """JSON logs at debug level for one test, then the defaults again."""
    import logging

    import structlog

    from adaptor.observability.logging import configure_logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("debug")
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("json_logs")
async def test_no_secret_reaches_logs_or_responses(
    app_client: httpx.AsyncClient, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk_live_SECRET_1234567890"
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    url = f"/api/v2/integrations/{created.json()['integration_id']}"
    responses = [
        created,
        await app_client.get(url, headers=tenant.headers),
        await app_client.get("/api/v2/integrations", headers=tenant.headers),
        await app_client.patch(url, json={"timeout_ms": 1}, headers=tenant.headers),
    ]
    captured = capsys.readouterr()
    for response in responses:
        assert secret not in response.text
    assert secret not in captured.out + captured.err
    assert ADMIN_KEY not in captured.out + captured.err
    assert tenant.key not in captured.out + captured.err


def test_log_redaction_masks_sensitive_keys_and_tokens() -> None:
    from adaptor.observability.logging import redact

    redacted = redact(
        {
            "headers": {"Authorization": "Bearer abc.def", "X-Ok": "1"},
            "note": "called with Bearer abc.def and adk_0123456789abcdef",
            "client_secret": "zzz",
        }
    )
    text = json.dumps(redacted)
    assert "abc.def" not in text
    assert "zzz" not in text
    assert "adk_0123456789abcdef" not in text
    assert redacted["headers"]["X-Ok"] == "1"


async def test_openapi_describes_errors_as_problem_json(app_client: httpx.AsyncClient) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    operation = spec["paths"]["/api/v2/integrations"]["post"]
    schema = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}
    assert "4XX" in operation["responses"]


async def test_the_collector_runs_less_often_while_the_service_runs(app: FastAPI) -> None:
    before = gc.get_threshold()
    async with LifespanManager(app):
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
    assert gc.get_threshold() == before
