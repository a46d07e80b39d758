"""The execute route is answered directly by the request middleware; every answer must be the
one the documented FastAPI route gives. A body sent without Content-Length (chunked) always
takes the FastAPI route, so each case is sent both ways and the answers compared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from adaptor.domain import ExecutionResult
from adaptor.services import Services
from tests.conftest import ADMIN_HEADERS, Tenant
from tests.executions.test_execute import SECRET, create, integration
from tests.executions.upstream import Upstream

VOLATILE = ("request_id", "execution_time_ms")


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def both_ways(
    client: httpx.AsyncClient, path: str, body: bytes, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    direct = await client.post(path, content=body, headers=headers)
    routed = await client.post(path, content=_chunked(body), headers=headers)
    assert "content-length" in direct.request.headers
    assert "content-length" not in routed.request.headers
    return direct, routed


def comparable(response: httpx.Response) -> dict[str, Any]:
    document = orjson.loads(response.content)
    if isinstance(document, dict):
        for key in VOLATILE:
            document.pop(key, None)
    return {
        "status": response.status_code,
        "content_type": response.headers["content-type"],
        "has_request_id": bool(response.headers.get("x-request-id")),
        "body": document,
    }


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("case", "body", "headers"),
    [
        ("success", b'{"input_data": {"variables": {"limit": 2}}}', {}),
        ("empty object", b"{}", {}),
        ("charset in content type", b"{}", {"Content-Type": "application/json; charset=utf-8"}),
        ("invalid json", b'{"input_data": ', {}),
        ("empty body", b"", {}),
        ("wrong shape", b'{"input_data": [1, 2]}', {}),
        ("unknown field", b'{"input_data": {}, "extra": 1}', {}),
        ("bad option", b'{"options": {"timeout_override_ms": 5}}', {}),
        ("no auth", b"{}", {"Authorization": ""}),
        ("not bearer", b"{}", {"Authorization": "Basic abc"}),
        ("unknown key", b"{}", {"Authorization": "Bearer nope"}),
        ("other tenant", b"{}", {"X-Tenant-ID": "someone-else"}),
        ("bad tenant id", b"{}", {"X-Tenant-ID": "no spaces allowed"}),
        ("text body", b"{}", {"Content-Type": "text/plain"}),
    ],
)
async def test_direct_answers_match_the_fastapi_route(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    upstream: Upstream,
    case: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    sent = {**tenant.headers, **JSON, **headers}
    sent = {name: value for name, value in sent.items() if value}
    direct, routed = await both_ways(
        app_client, f"/api/v2/execute/{integration_id}/list_customers", body, sent
    )
    assert comparable(direct) == comparable(routed), case
    assert direct.status_code != 500, direct.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/execute/{id}/nope",
        "/api/v2/execute/00000000-0000-0000-0000-000000000000/list_customers",
        "/api/v2/execute/{id}/list_customers/extra",
        "/api/v2/execute/{id}/",
        "/api/v2/execute/{id}",
    ],
)
async def test_paths_answer_as_the_fastapi_route(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, path: str
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    direct, routed = await both_ways(
        app_client, path.format(id=integration_id), b"{}", {**tenant.headers, **JSON}
    )
    assert direct.status_code == routed.status_code
    assert direct.status_code in (404, 405, 307), direct.text
    if direct.status_code != 307:
        assert comparable(direct) == comparable(routed)


async def test_admin_key_needs_a_tenant_on_both_routes(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    path = f"/api/v2/execute/{integration_id}/list_customers"
    direct, routed = await both_ways(app_client, path, b"{}", {**ADMIN_HEADERS, **JSON})
    assert direct.status_code == 422
    assert comparable(direct) == comparable(routed)
    acting, routed = await both_ways(
        app_client, path, b"{}", {**ADMIN_HEADERS, **JSON, "X-Tenant-ID": tenant.tenant_id}
    )
    assert acting.status_code == 200
    assert comparable(acting) == comparable(routed)
    assert upstream.count() == 2


async def test_request_id_is_echoed_and_used_as_the_result_id(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await app_client.post(
        f"/api/v2/execute/{integration_id}/list_customers",
        content=b"{}",
        headers={**tenant.headers, **JSON, "X-Request-ID": "conv-42-turn-7"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "conv-42-turn-7"
    assert response.json()["request_id"] == "conv-42-turn-7"


async def test_oversized_body_is_413_on_the_direct_route(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    filler = "x" * (11 * 1024 * 1024)
    response = await app_client.post(
        f"/api/v2/execute/{integration_id}/list_customers",
        content=orjson.dumps({"input_data": {"filler": filler}}),
        headers={**tenant.headers, **JSON},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert upstream.count() == 0


async def test_a_defect_is_a_bare_500_on_both_routes(
    app: FastAPI,
    app_client: httpx.AsyncClient,
    services: Services,
    tenant: Tenant,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))

    async def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError(f"defect holding {SECRET}")

    monkeypatch.setattr(services.executions, "execute_serialised", broken)
    # Starlette re-raises to the server after answering a 500; only the answer counts here.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://adaptor.test") as client:
        direct, routed = await both_ways(
            client,
            f"/api/v2/execute/{integration_id}/list_customers",
            b"{}",
            {**tenant.headers, **JSON},
        )
    assert direct.status_code == 500
    assert comparable(direct) == comparable(routed)
    assert SECRET not in direct.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"input_data": {"variables": {"limit": 2}}}',
        b'{"input_data": {}, "options": {"debug_mode": true}}',
        b'{"input_data": {}, "options": {"mock_response": {"error": {"message": "no"}}}}',
    ],
)
async def test_the_result_is_exactly_an_execution_result_document(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, body: bytes
) -> None:
    """The route builds the JSON without the model; it must be what the model would give."""
    document = integration(upstream)
    document["endpoints"]["list_customers"]["response_mapping"]["error_path"] = "error.message"
    integration_id = await create(app_client, tenant, document)
    response = await app_client.post(
        f"/api/v2/execute/{integration_id}/list_customers",
        content=body,
        headers={**tenant.headers, **JSON},
    )
    assert response.status_code == 200
    sent = orjson.loads(response.content)
    assert list(sent) == list(ExecutionResult.model_fields)
    assert ExecutionResult.model_validate(sent).model_dump(mode="json") == sent
